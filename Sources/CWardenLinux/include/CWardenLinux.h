#ifndef C_WARDEN_LINUX_H
#define C_WARDEN_LINUX_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/ioctl.h>
#include <termios.h>

/// Result of warden_spawn. On failure pid is -1, err is the errno and stage names the step.
typedef struct {
    pid_t pid;
    int pidfd;
    int err;
    int stage;
} warden_spawn_result;

enum {
    WARDEN_STAGE_NONE = 0,
    WARDEN_STAGE_FORK = 1,
    WARDEN_STAGE_MOUNT = 9,
    WARDEN_STAGE_CGROUP = 2,
    WARDEN_STAGE_SETPGID = 3,
    WARDEN_STAGE_STDIO = 4,
    WARDEN_STAGE_FDS = 5,
    WARDEN_STAGE_EXEC = 6,
    WARDEN_STAGE_PIDFD = 7,
    WARDEN_STAGE_SETSID = 8,
};

/// Forks; the child starts in the v2 cgroup `cgroup_dir_fd` (clone3 CLONE_INTO_CGROUP; -1 for none),
/// joins every cgroup whose `cgroup.procs` descriptor is given (writing "0" moves the writer itself;
/// with a `cgroup_dir_fd`, `cgroup_fds[0]` must be that cgroup's `cgroup.procs`, written only when
/// clone3 is unavailable), optionally starts a new process group or session,
/// wires stdio, marks every descriptor but 0-2 and `keep_fds` close-on-exec, resets signals, and execs
/// `path`. With `loginuid` the child first writes it to /proc/self/loginuid, which starts a new audit
/// session (its id is in /proc/PID/sessionid) that all descendants inherit and cannot leave without
/// CAP_AUDIT_CONTROL. Only async-signal-safe calls run between fork and exec.
/// With `mount_tree_fd` >= 0 the child first moves that detached mount (an idmapped workspace) onto
/// `mount_target` in a private mount namespace of its own (see warden_private_mount).
warden_spawn_result warden_spawn(const char *path, char *const argv[], char *const envp[], const char *loginuid,
                                 int cgroup_dir_fd,
                                 const int *cgroup_fds, int n_cgroup_fds, const int *keep_fds, int n_keep_fds,
                                 int stdin_fd, int stdout_fd, int stderr_fd, int new_pgrp, int new_session,
                                 int mount_tree_fd, const char *mount_target);

/* The agent's identity (identity.c). */

/// A new user namespace with the given maps ("INSIDE OUTSIDE COUNT\n" each), as an O_RDONLY descriptor
/// of /proc/PID/ns/user (close-on-exec); -1 with errno. The helper process is gone when this returns.
int warden_userns_create(const char *uid_map, const char *gid_map);
/// A detached copy of the mount at `path` whose ownership is mapped through `userns_fd`
/// (open_tree + mount_setattr MOUNT_ATTR_IDMAP); -1 with errno (EINVAL: the filesystem cannot).
int warden_idmapped_tree(const char *path, int userns_fd);
/// In a single-threaded child: a private mount namespace (host mounts still propagate in, none out)
/// with the detached tree moved onto `target`. 0, or -1 with errno.
int warden_private_mount(int tree_fd, const char *target);
/// setgroups({}), setresgid(gid), setresuid(uid): needs CAP_SETUID and CAP_SETGID; drops every capability.
int warden_become(uid_t uid, gid_t gid);
/// unshare(CLONE_NEWUSER) mapping the caller's uid and gid to themselves (setgroups denied). 0; -1 with
/// errno when the namespace could not be made (EPERM/EACCES where unprivileged user namespaces are
/// restricted: nothing changed); -2 with errno when it was made but could not be mapped (fatal).
int warden_own_userns(uid_t uid, gid_t gid);

int warden_pidfd_open(pid_t pid);
int warden_pidfd_send_signal(int pidfd, int sig);
int warden_close_range_cloexec(unsigned int first);
int warden_memfd_create(const char *name);

/* Landlock (uapi, defined here because Debian 12's headers predate ABI 4-7). */
#define WARDEN_LANDLOCK_CREATE_RULESET_VERSION (1U << 0)

#define WARDEN_LL_FS_EXECUTE (1ULL << 0)
#define WARDEN_LL_FS_WRITE_FILE (1ULL << 1)
#define WARDEN_LL_FS_READ_FILE (1ULL << 2)
#define WARDEN_LL_FS_READ_DIR (1ULL << 3)
#define WARDEN_LL_FS_REMOVE_DIR (1ULL << 4)
#define WARDEN_LL_FS_REMOVE_FILE (1ULL << 5)
#define WARDEN_LL_FS_MAKE_CHAR (1ULL << 6)
#define WARDEN_LL_FS_MAKE_DIR (1ULL << 7)
#define WARDEN_LL_FS_MAKE_REG (1ULL << 8)
#define WARDEN_LL_FS_MAKE_SOCK (1ULL << 9)
#define WARDEN_LL_FS_MAKE_FIFO (1ULL << 10)
#define WARDEN_LL_FS_MAKE_BLOCK (1ULL << 11)
#define WARDEN_LL_FS_MAKE_SYM (1ULL << 12)
#define WARDEN_LL_FS_REFER (1ULL << 13)
#define WARDEN_LL_FS_TRUNCATE (1ULL << 14)
#define WARDEN_LL_FS_IOCTL_DEV (1ULL << 15)

#define WARDEN_LL_NET_BIND_TCP (1ULL << 0)
#define WARDEN_LL_NET_CONNECT_TCP (1ULL << 1)

#define WARDEN_LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define WARDEN_LL_SCOPE_SIGNAL (1ULL << 1)

/// Returns the Landlock ABI version, or -1 with errno set (ENOSYS: not built; EOPNOTSUPP: disabled).
int warden_landlock_abi(void);
/// Creates a ruleset; fields the ABI does not know must be 0.
int warden_landlock_create_ruleset(uint64_t handled_fs, uint64_t handled_net, uint64_t scoped);
/// Adds a path-beneath rule for the already opened O_PATH descriptor.
int warden_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed);
/// Adds a TCP port rule (ABI 4): `allowed` (bind and/or connect) on `port`.
int warden_landlock_add_net_port_rule(int ruleset_fd, uint64_t allowed, uint16_t port);
/// ABI 7: also log denials after the next exec (the agent's, not only the shim's).
#define WARDEN_LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON (1U << 1)

/// Restricts the calling thread (and its future children) to the ruleset.
int warden_landlock_restrict_self(int ruleset_fd, uint32_t flags);
/// Installs a classic-BPF seccomp program with SECCOMP_FILTER_FLAG_LOG, so that every non-allow action
/// it takes is written to the kernel's audit log (and from there to /dev/kmsg), where the supervisor
/// reads it. Needs no_new_privs.
int warden_seccomp_install_logged(const void *program, unsigned short instructions);
/// The same without the log flag (the enforcing copy: its clone3 → ENOSYS would flood the log).
int warden_seccomp_install(const void *program, unsigned short instructions);
int warden_set_no_new_privs(void);
/// Drops every capability: the bounding and ambient sets, then effective, permitted and inheritable
/// (checked with capget). A root process keeps its uid but loses what root could do beyond an owner.
int warden_drop_all_capabilities(void);
/// How many threads the calling process has (from /proc/self/task), or -1.
int warden_thread_count(void);

#endif

/// Installs handlers for `signals` that write the signal number as one byte to a non-blocking pipe,
/// and returns the pipe's read end (or -1). The self-pipe turns signals into poll()-able events. Each
/// call makes a pipe of its own for its signals (SIGWINCH apart from the stop signals).
int warden_signal_pipe(const int *signals, int count);
/// Restores the default disposition of `signals`.
void warden_signal_default(const int *signals, int count);

/// pipe2(O_CLOEXEC); glibc declares pipe2 only under _GNU_SOURCE, which Swift does not define.
int warden_pipe_cloexec(int fds[2]);
/// 1 if `path` is on a cgroup2 filesystem, 0 if not, -1 with errno on error.
int warden_is_cgroup2(const char *path);
/// open(path, O_PATH | O_CLOEXEC).
int warden_open_path(const char *path);
/// Whether the kernel supports seccomp filters (prctl(PR_GET_SECCOMP) works).
int warden_seccomp_available(void);
/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to (and reaped by) the caller.
int warden_set_child_subreaper(void);
/// prctl(PR_SET_DUMPABLE, value): 0 keeps same-uid processes out of the caller's /proc/PID/fd and mem.
int warden_set_dumpable(int value);
/// A listening stream socket in the abstract namespace (`name` without the leading NUL), close-on-exec;
/// -1 with errno on failure. Abstract names need no file and vanish with the network namespace.
int warden_abstract_listen(const char *name);
/// Connects to an abstract stream socket; the descriptor (close-on-exec) or -1 with errno.
int warden_abstract_connect(const char *name);
/// The same for a socket file at `path` (ENAMETOOLONG when it does not fit a sockaddr_un).
int warden_unix_listen(const char *path, int backlog);
int warden_unix_connect(const char *path);
/// A non-blocking NETLINK_AUDIT socket joined to the read-only multicast group (AUDIT_NLGRP_READLOG):
/// every audit record the kernel emits, without /dev/kmsg's printk rate limit. Needs CAP_AUDIT_READ;
/// -1 with errno when unavailable.
int warden_audit_multicast_open(void);

// MARK: - Terminals (a foreground run's relayed pty)

/// A new pseudo-terminal pair, both ends close-on-exec, neither made a controlling terminal; the slave
/// starts with `settings` and `size` when given. 0, or -1 with errno.
int warden_pty_open(int *master, int *slave, const struct termios *settings, const struct winsize *size);
/// Saves `fd`'s terminal settings into `saved` and puts it in raw mode (no echo, no line editing, no
/// signals from keys, no output processing). 0, or -1 with errno.
int warden_tty_make_raw(int fd, struct termios *saved);
/// Forks a guardian that restores `saved` on `tty_fd` (and writes a short reset of cursor, colours and
/// mouse modes) once the returned descriptor's other end closes without a byte written first: it
/// restores the operator's terminal when the supervisor dies, even by SIGKILL. It is in a session of its
/// own, ignores every signal it can, and holds nothing else. Returns the pipe's write end (close-on-exec)
/// and stores the guardian's pid, or -1 with errno.
int warden_terminal_guard(int tty_fd, const struct termios *saved, pid_t *guardian);
/// Makes `fd`'s terminal the caller's controlling terminal (the caller is a session leader without one).
int warden_set_controlling_tty(int fd);

// MARK: - The egress door's listeners (inside a run's network namespace)

/// A socket created inside the network namespace `netns_fd` refers to, bound to `address_be:port`
/// (IPv4, network byte order) and, for SOCK_STREAM, listening; close-on-exec and non-blocking. The
/// calling thread enters the namespace only for the socket's creation and returns to its own (the
/// process aborts if it cannot return, rather than stay inside the sandbox's network). -1 with errno.
int warden_netns_listen(int netns_fd, int type, uint32_t address_be, uint16_t port, int backlog);
/// Asks for SIGKILL when the parent dies; -1 when the parent is already not `expected_parent`.
int warden_die_with_parent(pid_t expected_parent);
