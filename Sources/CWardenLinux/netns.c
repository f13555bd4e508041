#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "CWardenLinux.h"

int warden_netns_listen(int netns_fd, int type, uint32_t address_be, uint16_t port, int backlog) {
    int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0) return -1;
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
        int saved = errno;
        close(own);
        errno = saved;
        return -1;
    }
    int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int saved = errno;
    if (setns(own, CLONE_NEWNET) != 0) abort();
    close(own);
    if (fd < 0) {
        errno = saved;
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = address_be;
    sin.sin_port = htons(port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || (type == SOCK_STREAM && listen(fd, backlog) != 0)) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

#include <signal.h>
#include <sys/prctl.h>

int warden_die_with_parent(pid_t expected_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -1;
    return getppid() == expected_parent ? 0 : -1;
}
