import Foundation
import Testing
import WardenCore

@testable import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

struct CgroupLayoutTests {
    static let hybridCgroup = """
        9:name=systemd:/
        8:pids:/
        4:memory:/process_api/fe03
        1:cpu:/
        0::/
        """
    static let hybridMounts = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """

    @Test func hybridUsesV1ControllersBeneathTheCallersCgroups() throws {
        let layout = try CgroupLayout.detect(
            procSelfCgroup: Self.hybridCgroup, mountInfo: Self.hybridMounts, readControllers: { _ in "hugetlb" })
        #expect(layout.mode == .hybrid)
        #expect(layout.unified.ownPath == "/sys/fs/cgroup/unified")
        #expect(layout.v1["memory"]?.ownPath == "/sys/fs/cgroup/memory/process_api/fe03")
        #expect(layout.v1["pids"]?.ownPath == "/sys/fs/cgroup/pids")
        #expect(layout.v1["cpu"]?.ownPath == "/sys/fs/cgroup/cpu")
    }

    @Test func unifiedUsesTheV2TreeOnly() throws {
        let layout = try CgroupLayout.detect(
            procSelfCgroup: "0::/user.slice/user-1000.slice/session-2.scope\n",
            mountInfo: "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            readControllers: { path in
                path == "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/cgroup.controllers"
                    ? "cpu memory pids" : nil
            })
        #expect(layout.mode == .unified)
        #expect(layout.unified.ownPath == "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")
        #expect(layout.unifiedControllers == ["cpu", "memory", "pids"])
        #expect(layout.v1.isEmpty)
    }

    @Test func mountRootAndEscapesAreHonoured() throws {
        let layout = try CgroupLayout.detect(
            procSelfCgroup: "0::/a b/c\n",
            mountInfo: "30 23 0:26 /a\\040b /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n", readControllers: { _ in nil })
        #expect(layout.unified.ownPath == "/mnt/my cg/c")
    }

    @Test func noCgroup2IsAClearRefusal() {
        #expect(throws: WardenError.self) {
            try CgroupLayout.detect(
                procSelfCgroup: "1:cpu:/\n", mountInfo: "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
                readControllers: { _ in nil })
        }
    }
}

struct SeccompFilterTests {
    let program = SeccompFilter.buildX86_64()

    @Test func checksTheArchitectureFirstAndKillsOnMismatch() {
        #expect(program[0] == .init(code: 0x20, jt: 0, jf: 0, k: 4))
        #expect(program[1].k == SeccompFilter.auditArchX86_64)
        #expect(program[2] == .init(code: 0x06, jt: 0, jf: 0, k: SeccompFilter.retKillProcess))
    }

    @Test func everyDeniedSyscallReturnsEPERM() {
        for (name, number) in SeccompFilter.deniedX86_64 {
            let index = program.firstIndex { $0.code == 0x15 && $0.k == number && $0.jt == 0 && $0.jf == 1 }
            #expect(index != nil, "\(name) is in the filter")
            if let index { #expect(program[index + 1].k == SeccompFilter.retErrno(1), "\(name) fails with EPERM") }
        }
    }

    @Test func requiredSyscallsAreDenied() {
        let names = Set(SeccompFilter.deniedX86_64.map(\.name))
        for required in [
            "ptrace", "process_vm_readv", "process_vm_writev", "io_uring_setup", "io_uring_enter", "io_uring_register",
            "mount", "umount2", "pivot_root", "move_mount", "fsopen", "unshare", "setns", "bpf", "perf_event_open",
            "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "keyctl", "add_key",
            "request_key", "userfaultfd",
        ] {
            #expect(names.contains(required), "\(required) denied")
        }
    }

    @Test func jumpsStayInsideTheProgram() {
        for (index, instruction) in program.enumerated() where instruction.code & 0x07 == 0x05 {
            #expect(index + 1 + Int(instruction.jt) < program.count)
            #expect(index + 1 + Int(instruction.jf) < program.count)
        }
        #expect(program.last?.k == SeccompFilter.retAllow)
        #expect(SeccompFilter(instructions: program).bytes.count == program.count * 8)
    }
}

struct BubblewrapCommandTests {
    func plan(network: NetworkMode = .none) throws -> RunPlan {
        var profile = RunProfile()
        profile.workspace = "/var/tmp"
        profile.command = ["/bin/true"]
        profile.network = network
        profile.protect = ["/etc/hostname"]
        profile.hide = ["/root", "/etc/os-release"]
        let host = HostConfiguration(
            stateDirectory: "/var/lib/warden-test-state", hiddenPaths: [], bubblewrap: "/usr/bin/bwrap",
            wardenExecutable: "/usr/bin/warden", cgroupRoot: nil)
        return try RunPlan.make(
            profile: profile, host: host, callerEnvironment: ["SECRET": "x", "LANG": "C"], workingDirectory: "/")
    }

    @Test func isolatesAndOrdersMounts() throws {
        let args = BubblewrapCommand(plan: try plan(), seccomp: true, infoFD: 8, statusFD: 9, applyLandlock: true)
            .arguments
        for flag in [
            "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        ] {
            #expect(args.contains(flag), "\(flag)")
        }
        #expect(args.joined(separator: " ").contains("--cap-drop ALL"))
        // The shim installs the filter (after it has become the agent's identity), not bubblewrap.
        #expect(args.contains("--seccomp-log"))
        #expect(!args.contains("--seccomp"))
        #expect(args.joined(separator: " ").contains("--user 2000000000:2000000000"))
        let workspaceBind = try #require(args.firstIndex(of: "--bind"))
        let tmp = try #require(args.firstIndex(of: "/tmp"))
        #expect(tmp < workspaceBind, "the private /tmp comes before the workspace bind")
        let protect = try #require(args.lastIndex(of: "/etc/hostname"))
        #expect(protect > workspaceBind, "protected paths come after the workspace")
        #expect(args.contains("/etc/os-release"), "a hidden path inside the view is mounted over")
        #expect(!args.contains("/root"), "the minimal view has no /root: nothing to hide, nothing bound")
        let joined = args.joined(separator: " ")
        #expect(!args.contains("/home") && !joined.contains("--ro-bind /var /var"), "neither /home nor /var is bound")
        #expect(args.contains("/etc/shadow") || !FileManager.default.fileExists(atPath: "/etc/shadow"))
        #expect(!args.contains("SECRET"), "only allowlisted environment passes")
        #expect(args.contains("--clearenv"))
    }

    @Test func hostNetworkKeepsTheNetworkNamespace() throws {
        let args = BubblewrapCommand(
            plan: try plan(network: .host), seccomp: false, infoFD: 8, statusFD: 9, applyLandlock: true
        ).arguments
        #expect(!args.contains("--unshare-net"))
        #expect(!args.contains("--deny-tcp"))
        #expect(!args.contains("--seccomp-log"))
    }
}

struct TripwireTests {
    /// Makes a watched file, applies `change`, and returns what the watcher reports (live and final).
    func observe(_ change: (String) throws -> Void) throws -> Set<String> {
        let directory = "/var/tmp/warden-tests/tripwire-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/shutdown.sh"
        try "kill -s TERM 1\n".write(toFile: path, atomically: false, encoding: .utf8)
        Glibc.chmod(path, 0o755)
        usleep(20_000)
        let watcher = TripwireWatcher(baselines: [TripwireBaseline.capture(path)])
        try change(path)
        usleep(20_000)
        return Set((watcher.drainNotifications() + watcher.finalCheck()).map(\.change))
    }

    @Test func write() throws {
        #expect(
            try observe { try "echo skipped\n".write(toFile: $0, atomically: false, encoding: .utf8) }.contains("write")
        )
    }

    @Test func writeThroughMmapIsCaughtByContent() throws {
        let changes = try observe { path in
            let fd = open(path, O_RDWR)
            defer { close(fd) }
            let map = mmap(nil, 4, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            let bytes = try #require(map).assumingMemoryBound(to: UInt8.self)
            bytes[0] = UInt8(ascii: "#")
            msync(map, 4, MS_SYNC)
            munmap(map, 4)
        }
        #expect(changes.contains("write"), "\(changes)")
    }

    @Test func permissionChange() throws {
        #expect(try observe { _ = Glibc.chmod($0, 0o644) }.contains("chmod"))
    }

    @Test func renameAndRestore() throws {
        let changes = try observe { path in
            rename(path, path + ".disabled")
            rename(path + ".disabled", path)
        }
        #expect(changes.contains("rename"), "\(changes)")
        #expect(changes.contains("replace") || changes.contains("changed-and-restored"), "\(changes)")
    }

    @Test func replaceWithIdenticalContent() throws {
        let changes = try observe { path in
            try "kill -s TERM 1\n".write(toFile: path + ".new", atomically: false, encoding: .utf8)
            Glibc.chmod(path + ".new", 0o755)
            rename(path + ".new", path)
        }
        #expect(changes.contains("replace"), "\(changes)")
    }

    @Test func delete() throws {
        #expect(try observe { unlink($0) }.contains("delete"))
    }

    @Test func hardLink() throws {
        #expect(try observe { link($0, $0 + ".link") }.contains("hard-link"))
    }

    @Test func untouchedFileReportsNothing() throws {
        #expect(try observe { _ = try String(contentsOfFile: $0, encoding: .utf8) }.isEmpty)
    }
}

struct LandlockProbeTests {
    @Test(.enabled(if: (try? LandlockRules.probeABI()) != nil, "this kernel has no Landlock"))
    func abiIsReported() throws {
        #expect(try LandlockRules.probeABI() >= 1)
    }
}

struct DenialWatcherTests {
    @Test func parsesSeccompAuditRecords() throws {
        let record =
            "6,1234,5439075732,-;audit: type=1326 audit(1795915299.290:6): auid=0 uid=0 gid=0 ses=2 pid=23640 "
            + "comm=\"unshare\" exe=\"/usr/bin/unshare\" sig=0 arch=c000003e syscall=272 compat=0 ip=0x7fa1 code=0x50000"
        let denial = try #require(DenialWatcher.parse(record))
        #expect(denial == Denial(mechanism: "seccomp", pid: 23640, what: "unshare", command: "unshare", session: 2))
    }

    @Test func namesInspectedCallsBeyondTheDenyList() {
        #expect(SeccompFilter.name(ofX86_64: 16) == "ioctl (TIOCSTI/TIOCLINUX)")
        #expect(SeccompFilter.name(ofX86_64: 56) == "clone (namespace flags)")
        #expect(SeccompFilter.name(ofX86_64: 101) == "ptrace")
        #expect(SeccompFilter.name(ofX86_64: 9999) == "syscall 9999")
    }

    @Test(arguments: [
        "6,1,1,-;cgroup: fork rejected by pids controller in /warden/x",
        "4,2,2,-;audit: type=1300 audit(1:2): arch=c000003e syscall=59 success=yes",
        "garbage",
    ])
    func ignoresOtherRecords(record: String) {
        #expect(DenialWatcher.parse(record) == nil)
    }

    @Test func theAuditCopyOfTheFilterLetsClone3Through() {
        let enforcing = SeccompFilter.buildX86_64()
        let logged = SeccompFilter.buildX86_64(forAuditLog: true)
        #expect(enforcing.contains { $0.k == SeccompFilter.clone3Number })
        #expect(!logged.contains { $0.k == SeccompFilter.clone3Number })
        // Only the logged copy (installed last) refuses a filter of the agent's own: the enforcing copy
        // must let the shim install the logged one.
        #expect(!enforcing.contains { $0.k == SeccompFilter.seccompNumber })
        #expect(logged.contains { $0.k == SeccompFilter.seccompNumber })
    }
}
