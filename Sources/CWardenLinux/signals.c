#define _GNU_SOURCE
#include "CWardenLinux.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/// The write end of each signal's pipe: each call of warden_signal_pipe makes a pipe of its own.
static int warden_signal_write_fds[NSIG] = {0};

static void warden_signal_handler(int sig) {
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(warden_signal_write_fds[sig] - 1, &byte, 1);
    (void)ignored;
    errno = saved;
}

int warden_signal_pipe(const int *signals, int count) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    // Stored +1 so that the zero-initialised table means "no pipe".
    for (int i = 0; i < count; i++) {
        if (signals[i] > 0 && signals[i] < NSIG) warden_signal_write_fds[signals[i]] = fds[1] + 1;
    }
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = warden_signal_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) return -1;
        sigaddset(&unblock, signals[i]);
    }
    // A parent may have started us with these blocked (posix_spawn inherits the mask); we must hear them.
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    return fds[0];
}

void warden_signal_default(const int *signals, int count) {
    for (int i = 0; i < count; i++) signal(signals[i], SIG_DFL);
}
