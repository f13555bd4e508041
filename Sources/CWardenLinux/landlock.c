#define _GNU_SOURCE
#include "CWardenLinux.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

struct warden_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct warden_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#define WARDEN_LANDLOCK_RULE_PATH_BENEATH 1

int warden_landlock_abi(void) {
    return (int)syscall(SYS_landlock_create_ruleset, NULL, 0, WARDEN_LANDLOCK_CREATE_RULESET_VERSION);
}

int warden_landlock_create_ruleset(uint64_t handled_fs, uint64_t handled_net, uint64_t scoped) {
    struct warden_landlock_ruleset_attr attr = {handled_fs, handled_net, scoped};
    size_t size = sizeof(attr);
    // Older ABIs reject unknown trailing fields unless they are zero; trim to the smallest size that fits.
    if (scoped == 0) size = handled_net == 0 ? sizeof(uint64_t) : 2 * sizeof(uint64_t);
    return (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
}

int warden_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed) {
    struct warden_landlock_path_beneath_attr attr = {allowed, parent_fd};
    return (int)syscall(SYS_landlock_add_rule, ruleset_fd, WARDEN_LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
}

struct warden_landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
} __attribute__((packed));

#define WARDEN_LANDLOCK_RULE_NET_PORT 2

int warden_landlock_add_net_port_rule(int ruleset_fd, uint64_t allowed, uint16_t port) {
    struct warden_landlock_net_port_attr attr = {allowed, port};
    return (int)syscall(SYS_landlock_add_rule, ruleset_fd, WARDEN_LANDLOCK_RULE_NET_PORT, &attr, 0);
}

int warden_landlock_restrict_self(int ruleset_fd, uint32_t flags) {
    return (int)syscall(SYS_landlock_restrict_self, ruleset_fd, flags);
}

int warden_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

int warden_seccomp_install(const void *program, unsigned short instructions) {
    struct sock_fprog fprog = {instructions, (struct sock_filter *)program};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

int warden_seccomp_install_logged(const void *program, unsigned short instructions) {
    struct sock_fprog fprog = {instructions, (struct sock_filter *)program};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &fprog);
}
