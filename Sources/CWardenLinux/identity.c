#define _GNU_SOURCE
#include "CWardenLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

struct warden_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/// The helper inside the new user namespace: it only waits for the parent to let it go.
static int userns_helper(void *arg) {
    int *go = (int *)arg;
    char byte;
    // Its descriptor table is a copy: close its own write end, or the read below never sees EOF.
    close(go[1]);
    ssize_t ignored = read(go[0], &byte, 1);
    (void)ignored;
    return 0;
}

int warden_userns_create(const char *uid_map, const char *gid_map) {
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) return -1;
    // clone(CLONE_NEWUSER | CLONE_VM): the helper is born in the new namespace and shares our memory,
    // so nothing of this (large, multi-threaded) process's page tables is copied, as fork would.
    static __thread char stack[16384] __attribute__((aligned(16)));
    pid_t pid = clone(userns_helper, stack + sizeof(stack), CLONE_NEWUSER | CLONE_VM | SIGCHLD, go);
    if (pid < 0) {
        int saved = errno;
        close(go[0]);
        close(go[1]);
        errno = saved;
        return -1;
    }
    char path[64];
    int result = -1, saved = 0;
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    if (write_file(path, uid_map) != 0) goto done;
    snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
    if (write_file(path, gid_map) != 0) goto done;
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
    result = open(path, O_RDONLY | O_CLOEXEC);
done:
    saved = errno;
    close(go[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    close(go[0]);
    errno = saved;
    return result;
}

int warden_idmapped_tree(const char *path, int userns_fd) {
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | O_CLOEXEC);
    if (tree < 0) return -1;
    struct warden_mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = (uint64_t)userns_fd;
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
        int saved = errno;
        close(tree);
        errno = saved;
        return -1;
    }
    return tree;
}

int warden_private_mount(int tree_fd, const char *target) {
    if (unshare(CLONE_NEWNS) != 0) return -1;
    // Host mounts still propagate in; nothing made here propagates out.
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) return -1;
    return (int)syscall(SYS_move_mount, tree_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

int warden_become(uid_t uid, gid_t gid) {
    if (setgroups(0, NULL) != 0) return -1;
    if (setresgid(gid, gid, gid) != 0) return -1;
    if (setresuid(uid, uid, uid) != 0) return -1;
    return 0;
}

int warden_own_userns(uid_t uid, gid_t gid) {
    char map[64];
    if (unshare(CLONE_NEWUSER) != 0) return -1;
    // The uid change made the process non-dumpable, which gives its /proc files to root: the maps
    // could not be written. The agent's exec recomputes dumpability anyway.
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return -2;
    if (write_file("/proc/self/setgroups", "deny") != 0) return -2;
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) != 0) return -2;
    snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) != 0) return -2;
    return 0;
}
