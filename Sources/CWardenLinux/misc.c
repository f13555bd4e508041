#define _GNU_SOURCE
#include "CWardenLinux.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

int warden_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int warden_is_cgroup2(const char *path) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -1;
    return fs.f_type == CGROUP2_SUPER_MAGIC ? 1 : 0;
}

int warden_open_path(const char *path) { return open(path, O_PATH | O_CLOEXEC); }

int warden_seccomp_available(void) { return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0; }

int warden_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
