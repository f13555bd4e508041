#define _GNU_SOURCE
#include "CWardenLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

int warden_pty_open(int *master, int *slave, const struct termios *settings, const struct winsize *size) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    char name[128];
    if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof(name)) != 0) {
        int saved = errno;
        close(m);
        errno = saved;
        return -1;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int saved = errno;
        close(m);
        errno = saved;
        return -1;
    }
    if (settings != NULL) tcsetattr(s, TCSANOW, settings);
    if (size != NULL) ioctl(m, TIOCSWINSZ, size);
    *master = m;
    *slave = s;
    return 0;
}

int warden_tty_make_raw(int fd, struct termios *saved) {
    if (tcgetattr(fd, saved) != 0) return -1;
    struct termios raw = *saved;
    cfmakeraw(&raw);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    return tcsetattr(fd, TCSANOW, &raw);
}

int warden_terminal_guard(int tty_fd, const struct termios *saved, pid_t *guardian) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    struct termios copy = *saved;
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(fds[0]);
        close(fds[1]);
        errno = error;
        return -1;
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here: the parent has threads.
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD) continue;
            signal(sig, SIG_IGN);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        close(fds[1]);
        int keep_low = tty_fd < fds[0] ? tty_fd : fds[0];
        int keep_high = tty_fd < fds[0] ? fds[0] : tty_fd;
        for (int fd = 0; fd < keep_low; fd++) close(fd);
        for (int fd = keep_low + 1; fd < keep_high; fd++) close(fd);
        syscall(SYS_close_range, (unsigned)keep_high + 1, ~0U, 0);
        char byte;
        ssize_t n;
        do {
            n = read(fds[0], &byte, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1) _exit(0);  // the supervisor restored the terminal itself
        static const char reset[] =
            "\033[0m\033[?25h\033[?1000l\033[?1002l\033[?1003l\033[?1006l\033[?2004l\033[?1l\033>\r\n";
        ssize_t ignored = write(tty_fd, reset, sizeof(reset) - 1);
        (void)ignored;
        tcsetattr(tty_fd, TCSANOW, &copy);
        _exit(0);
    }
    close(fds[0]);
    *guardian = pid;
    return fds[1];
}

int warden_set_controlling_tty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
