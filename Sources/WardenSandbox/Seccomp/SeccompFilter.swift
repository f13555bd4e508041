import WardenCore

/// A classic-BPF seccomp program: a deny-list of syscalls an agent has no business making.
///
/// The program checks the architecture first and kills the process on any other (a 32-bit or x32
/// syscall table would otherwise bypass the numbers below). Denied calls fail with `EPERM`, so
/// well-behaved programs see an ordinary error; `clone3` fails with `ENOSYS` so libc falls back to
/// `clone`, whose namespace flags the filter can inspect.
public struct SeccompFilter: Sendable {
    /// One `struct sock_filter`.
    public struct Instruction: Equatable, Sendable {
        public var code: UInt16
        public var jt: UInt8
        public var jf: UInt8
        public var k: UInt32
    }

    /// Syscalls denied outright, by name, with their x86_64 numbers.
    public static let deniedX86_64: [(name: String, number: UInt32)] = [
        ("ptrace", 101), ("process_vm_readv", 310), ("process_vm_writev", 311), ("kcmp", 312),
        ("pidfd_getfd", 438), ("io_uring_setup", 425), ("io_uring_enter", 426), ("io_uring_register", 427),
        ("mount", 165), ("umount2", 166), ("pivot_root", 155), ("chroot", 161), ("open_tree", 428),
        ("move_mount", 429), ("fsopen", 430), ("fsconfig", 431), ("fsmount", 432), ("fspick", 433),
        ("mount_setattr", 442), ("open_tree_attr", 467), ("unshare", 272), ("setns", 308), ("bpf", 321),
        ("perf_event_open", 298), ("kexec_load", 246), ("kexec_file_load", 320), ("init_module", 175),
        ("finit_module", 313), ("delete_module", 176), ("keyctl", 250), ("add_key", 248), ("request_key", 249),
        ("userfaultfd", 323), ("acct", 163), ("swapon", 167), ("swapoff", 168), ("reboot", 169), ("syslog", 103),
        ("open_by_handle_at", 304), ("name_to_handle_at", 303), ("quotactl", 179), ("settimeofday", 164),
        ("clock_settime", 227), ("adjtimex", 159), ("clock_adjtime", 305), ("iopl", 172), ("ioperm", 173),
        ("vhangup", 153), ("fanotify_init", 300), ("lookup_dcookie", 212),
    ]

    /// Names for the numbers the filter inspects beyond the deny-list, for reports.
    public static func name(ofX86_64 number: UInt32) -> String {
        if let entry = deniedX86_64.first(where: { $0.number == number }) { return entry.name }
        if let call = modeCalls.first(where: { $0.number == number }) { return call.name }
        switch number {
        case cloneNumber: return "clone (namespace flags)"
        case clone3Number: return "clone3"
        case ioctlNumber: return "ioctl (TIOCSTI/TIOCLINUX)"
        case socketNumber: return "socket (address family)"
        case openat2Number: return "openat2"
        case fcntlNumber: return "fcntl (F_SETLEASE)"
        case seccompNumber: return "seccomp (a filter of its own)"
        case prctlNumber: return "prctl (PR_SET_SECCOMP)"
        case landlockRestrictNumber: return "landlock_restrict_self"
        case socketpairNumber: return "socketpair (address family)"
        default: return "syscall \(number)"
        }
    }

    static let auditArchX86_64: UInt32 = 0xC000_003E
    static let cloneNumber: UInt32 = 56
    static let clone3Number: UInt32 = 435
    static let ioctlNumber: UInt32 = 16
    static let socketNumber: UInt32 = 41
    static let openat2Number: UInt32 = 437
    static let fcntlNumber: UInt32 = 72
    static let seccompNumber: UInt32 = 317
    static let prctlNumber: UInt32 = 157
    static let landlockRestrictNumber: UInt32 = 446
    /// SECCOMP_SET_MODE_FILTER (seccomp's op) and PR_SET_SECCOMP (prctl's option).
    static let setModeFilter: UInt32 = 1
    static let prSetSeccomp: UInt32 = 22
    /// F_SETLEASE: a lease on a file makes every other opener (the operator's editor, a host daemon)
    /// wait up to lease-break-time (45 s) for the agent.
    static let fSetLease: UInt32 = 1024
    /// S_ISUID | S_ISGID: a file the agent marks so would run as its host owner (through the idmapped
    /// workspace, the workspace's owner, possibly root) for whoever starts it later.
    static let setIDBits: UInt32 = 0o6000
    static let oCreat: UInt32 = 0o100
    /// Calls whose mode argument may carry the set-id bits: (number, mode argument, flags argument
    /// that must contain O_CREAT for the mode to matter).
    static let modeCalls: [(number: UInt32, mode: UInt32, creatFlags: UInt32?, name: String)] = [
        (90, 1, nil, "chmod (setuid/setgid)"), (91, 1, nil, "chmod (setuid/setgid)"),  // chmod, fchmod
        (268, 2, nil, "chmod (setuid/setgid)"), (452, 2, nil, "chmod (setuid/setgid)"),  // fchmodat(2)
        (85, 1, nil, "open (setuid/setgid mode)"), (2, 2, 1, "open (setuid/setgid mode)"),  // creat, open
        (257, 3, 2, "open (setuid/setgid mode)"),  // openat
        (133, 1, nil, "mknod (setuid/setgid mode)"), (259, 2, nil, "mknod (setuid/setgid mode)"),  // mknod(at)
    ]
    static let socketpairNumber: UInt32 = 53
    /// AF_UNIX, AF_INET, AF_INET6 (an empty network namespace has only loopback) and AF_NETLINK.
    static let localFamilies: [UInt32] = [1, 2, 10]
    static let netlinkFamily: UInt32 = 16
    /// NETLINK_ROUTE: addresses and routes of the (empty) namespace, which libc's getaddrinfo asks for.
    static let netlinkRoute: UInt32 = 0
    /// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME.
    static let namespaceCloneFlags: UInt32 =
        0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000
        | 0x2000_0000 | 0x4000_0000 | 0x0000_0080
    /// TIOCSTI (push input into a terminal) and TIOCLINUX (its console cousin).
    static let deniedIoctls: [UInt32] = [0x5412, 0x541C]

    static let retKillProcess: UInt32 = 0x8000_0000
    static let retAllow: UInt32 = 0x7fff_0000
    static func retErrno(_ code: UInt32) -> UInt32 { 0x0005_0000 | (code & 0xffff) }
    static let eperm: UInt32 = 1
    static let enosys: UInt32 = 38

    public let instructions: [Instruction]

    /// Builds the filter for the machine's architecture.
    ///
    /// - Throws: ``WardenError`` (`layerUnavailable`) on an architecture without a syscall table here.
    /// - Parameter forAuditLog: the copy the shim installs with `SECCOMP_FILTER_FLAG_LOG`, where every
    ///   non-allow action is logged; it lets `clone3` through (the enforcing copy still answers ENOSYS),
    ///   since libc tries `clone3` for every thread and the log would drown in that expected refusal.
    /// - Parameter localSocketsOnly: under `--network none`, `socket` may make only the families a
    ///   program needs on an empty network namespace (AF_UNIX, AF_INET, AF_INET6, NETLINK_ROUTE);
    ///   AF_VSOCK (not namespaced: a channel to the hypervisor), NETLINK_KOBJECT_UEVENT (the host's
    ///   device events), AF_PACKET and the rest are refused, and logged.
    public static func makeDefault(forAuditLog: Bool = false, localSocketsOnly: Bool = false) throws -> SeccompFilter {
        #if arch(x86_64)
            return SeccompFilter(
                instructions: buildX86_64(forAuditLog: forAuditLog, localSocketsOnly: localSocketsOnly))
        #else
            throw WardenError(
                code: .layerUnavailable,
                message:
                    "seccomp: Warden has no syscall table for this architecture yet; pass --allow-degraded seccomp to run without it"
            )
        #endif
    }

    init(instructions: [Instruction]) { self.instructions = instructions }

    static func buildX86_64(forAuditLog: Bool = false, localSocketsOnly: Bool = false) -> [Instruction] {
        let ldW: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
        let jeq: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
        let jge: UInt16 = 0x35  // BPF_JMP | BPF_JGE | BPF_K
        let jset: UInt16 = 0x45  // BPF_JMP | BPF_JSET | BPF_K
        let ret: UInt16 = 0x06  // BPF_RET | BPF_K
        func op(_ code: UInt16, _ k: UInt32, _ jt: UInt8 = 0, _ jf: UInt8 = 0) -> Instruction {
            Instruction(code: code, jt: jt, jf: jf, k: k)
        }
        var program: [Instruction] = [
            op(ldW, 4),  // seccomp_data.arch
            op(jeq, auditArchX86_64, 1, 0),
            op(ret, retKillProcess),
            op(ldW, 0),  // seccomp_data.nr
            op(jge, 0x4000_0000, 0, 1),  // x32 ABI
            op(ret, retKillProcess),
        ]
        for entry in deniedX86_64 {
            program += [op(jeq, entry.number, 0, 1), op(ret, retErrno(eperm))]
        }
        if !forAuditLog { program += [op(jeq, clone3Number, 0, 1), op(ret, retErrno(enosys))] }
        // clone: deny namespace flags in args[0] (low word; every CLONE_NEW* bit is below 2^32).
        program += [
            op(jeq, cloneNumber, 0, 4),
            op(ldW, 16),
            op(jset, namespaceCloneFlags, 0, 1),
            op(ret, retErrno(eperm)),
            op(ret, retAllow),
        ]
        // ioctl: deny terminal injection in args[1] (low word).
        var ioctlBody: [Instruction] = [op(ldW, 24)]
        for request in deniedIoctls { ioctlBody += [op(jeq, request, 0, 1), op(ret, retErrno(eperm))] }
        ioctlBody.append(op(ret, retAllow))
        program.append(op(jeq, ioctlNumber, 0, UInt8(ioctlBody.count)))
        program += ioctlBody
        // The set-id bits may not be set: chmod family, and the mode of a file being created.
        for call in modeCalls {
            var body: [Instruction] = []
            if let flags = call.creatFlags {
                // Without O_CREAT the mode argument is unused: on to the last instruction (allow).
                body += [op(ldW, 16 + 8 * flags), op(jset, oCreat, 0, 3)]
            }
            body += [
                op(ldW, 16 + 8 * call.mode), op(jset, setIDBits, 0, 1), op(ret, retErrno(eperm)), op(ret, retAllow),
            ]
            program.append(op(jeq, call.number, 0, UInt8(body.count)))
            program += body
        }
        // fcntl: no leases (args[1] is the command).
        program += [
            op(jeq, fcntlNumber, 0, 4), op(ldW, 24), op(jeq, fSetLease, 0, 1), op(ret, retErrno(eperm)),
            op(ret, retAllow),
        ]
        // openat2 passes its mode in a struct seccomp cannot read: ENOSYS, and libc's callers fall back.
        program += [op(jeq, openat2Number, 0, 1), op(ret, retErrno(enosys))]
        if forAuditLog {
            // No filter or Landlock layer of the agent's own on top of Warden's: for equal answers the
            // newest filter decides, so one returning EPERM without the log flag would make Warden's
            // denials silent (and a nested Landlock layer could switch its logging off). Only in the
            // logged copy, which the shim installs last: the enforcing copy must let that install through.
            program += [
                op(jeq, seccompNumber, 0, 4), op(ldW, 16), op(jeq, setModeFilter, 0, 1), op(ret, retErrno(eperm)),
                op(ret, retAllow),
                op(jeq, prctlNumber, 0, 4), op(ldW, 16), op(jeq, prSetSeccomp, 0, 1), op(ret, retErrno(eperm)),
                op(ret, retAllow),
                op(jeq, landlockRestrictNumber, 0, 1), op(ret, retErrno(eperm)),
            ]
        }
        if localSocketsOnly {
            // socket: args[0] is the family, args[2] the protocol (low words). Jumps count forward
            // from the next instruction: allow is the last instruction, deny the one before it.
            let socketBody: [Instruction] = [
                op(ldW, 16),
                op(jeq, localFamilies[0], 6, 0), op(jeq, localFamilies[1], 5, 0), op(jeq, localFamilies[2], 4, 0),
                op(jeq, netlinkFamily, 0, 2),
                op(ldW, 32), op(jeq, netlinkRoute, 1, 0),
                op(ret, retErrno(eperm)), op(ret, retAllow),
            ]
            program.append(op(jeq, socketNumber, 0, UInt8(socketBody.count)))
            program += socketBody
            // socketpair: only AF_UNIX makes sense (and is all the kernel supports but for AF_TIPC).
            let pairBody: [Instruction] = [
                op(ldW, 16), op(jeq, localFamilies[0], 1, 0), op(ret, retErrno(eperm)), op(ret, retAllow),
            ]
            program.append(op(jeq, socketpairNumber, 0, UInt8(pairBody.count)))
            program += pairBody
        }
        program.append(op(ret, retAllow))
        return program
    }

    /// The program as the bytes of a `struct sock_filter` array, which is what bubblewrap reads from `--seccomp FD`.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(instructions.count * 8)
        for instruction in instructions {
            withUnsafeBytes(of: instruction.code.littleEndian) { result += $0 }
            result += [instruction.jt, instruction.jf]
            withUnsafeBytes(of: instruction.k.littleEndian) { result += $0 }
        }
        return result
    }
}
