#define _GNU_SOURCE
#include "CWardenLinux.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int warden_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int warden_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int warden_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}

int warden_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

struct warden_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

/// clone3 into a v2 cgroup: the child starts life in the cgroup, with no migration (which costs an RCU
/// grace period). Returns -1 with errno when the kernel cannot (the caller falls back to fork).
static pid_t clone_into_cgroup(int cgroup_dir_fd, int *pidfd) {
    struct warden_clone_args args;
    memset(&args, 0, sizeof(args));
    args.flags = CLONE_PIDFD | CLONE_INTO_CGROUP;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_dir_fd;
    return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static void child_fail(int report_fd, int stage) {
    int payload[2] = {stage, errno};
    ssize_t ignored = write(report_fd, payload, sizeof(payload));
    (void)ignored;
    _exit(127);
}

warden_spawn_result warden_spawn(const char *path, char *const argv[], char *const envp[], const char *loginuid,
                                 int cgroup_dir_fd,
                                 const int *cgroup_fds, int n_cgroup_fds, const int *keep_fds, int n_keep_fds,
                                 int stdin_fd, int stdout_fd, int stderr_fd, int new_pgrp, int new_session,
                                 int mount_tree_fd, const char *mount_target) {
    warden_spawn_result result = {-1, -1, 0, WARDEN_STAGE_NONE};
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        result.err = errno;
        result.stage = WARDEN_STAGE_FORK;
        return result;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int clone_pidfd = -1;
    pid_t pid = -1;
    int placed_by_clone = 0;
    if (cgroup_dir_fd >= 0) {
        placed_by_clone = 1;
        pid = clone_into_cgroup(cgroup_dir_fd, &clone_pidfd);
    }
    if (cgroup_dir_fd < 0 || (pid < 0 && (errno == ENOSYS || errno == EINVAL || errno == E2BIG))) {
        placed_by_clone = 0;
        pid = fork();
    }
    if (pid == 0) {
        close(report[0]);
        if (loginuid != NULL) {
            // A fresh audit session for the run: every audit record of its processes carries it.
            int fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                ssize_t ignored = write(fd, loginuid, strlen(loginuid));
                (void)ignored;
                close(fd);
            }
        }
        // cgroup_fds[0] is the v2 cgroup.procs: already joined when clone3 placed us there.
        for (int i = placed_by_clone ? 1 : 0; i < n_cgroup_fds; i++) {
            if (write(cgroup_fds[i], "0", 1) != 1) child_fail(report[1], WARDEN_STAGE_CGROUP);
        }
        if (mount_tree_fd >= 0 && warden_private_mount(mount_tree_fd, mount_target) != 0)
            child_fail(report[1], WARDEN_STAGE_MOUNT);
        if (new_session) {
            if (setsid() < 0) child_fail(report[1], WARDEN_STAGE_SETSID);
        } else if (new_pgrp) {
            if (setpgid(0, 0) != 0) child_fail(report[1], WARDEN_STAGE_SETPGID);
        }
        int stdio[3] = {stdin_fd, stdout_fd, stderr_fd};
        for (int i = 0; i < 3; i++) {
            if (stdio[i] >= 0 && stdio[i] != i) {
                if (dup2(stdio[i], i) < 0) child_fail(report[1], WARDEN_STAGE_STDIO);
            } else if (stdio[i] == i) {
                int flags = fcntl(i, F_GETFD);
                if (flags >= 0) fcntl(i, F_SETFD, flags & ~FD_CLOEXEC);
            }
        }
        if (warden_close_range_cloexec(3) != 0) child_fail(report[1], WARDEN_STAGE_FDS);
        for (int i = 0; i < n_keep_fds; i++) {
            int flags = fcntl(keep_fds[i], F_GETFD);
            if (flags < 0 || fcntl(keep_fds[i], F_SETFD, flags & ~FD_CLOEXEC) != 0)
                child_fail(report[1], WARDEN_STAGE_FDS);
        }
        // close_range marked the report pipe close-on-exec too, which is what tells the parent exec worked.
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) continue;
            signal(sig, SIG_DFL);
        }
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        child_fail(report[1], WARDEN_STAGE_EXEC);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        if (clone_pidfd >= 0) close(clone_pidfd);
        close(report[0]);
        result.err = fork_errno;
        result.stage = WARDEN_STAGE_FORK;
        return result;
    }
    int payload[2] = {0, 0};
    ssize_t n;
    do {
        n = read(report[0], payload, sizeof(payload));
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof(payload)) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        result.stage = payload[0];
        result.err = payload[1];
        return result;
    }
    result.pid = pid;
    result.pidfd = clone_pidfd >= 0 ? clone_pidfd : warden_pidfd_open(pid);
    if (result.pidfd < 0) {
        result.err = errno;
        result.stage = WARDEN_STAGE_PIDFD;
    }
    return result;
}
