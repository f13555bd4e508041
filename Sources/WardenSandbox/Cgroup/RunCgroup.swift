import CWardenLinux
import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The cgroups of one run: the v2 cgroup that holds the off-switch (`cgroup.kill`, `cgroup.events`)
/// and, on hybrid hosts, the v1 cgroups that hold the limits.
public struct RunCgroup: Codable, Sendable, Equatable {
    /// The v2 cgroup directory.
    public var unified: String
    /// v1 cgroup directories by controller (hybrid layout).
    public var v1: [String: String]

    public init(unified: String, v1: [String: String]) {
        self.unified = unified
        self.v1 = v1
    }

    /// Every `cgroup.procs` file a process of the run must be written into, v2 first.
    public var procsFiles: [String] {
        [unified + "/cgroup.procs"] + v1.keys.sorted().compactMap { v1[$0].map { $0 + "/cgroup.procs" } }
    }

    /// What limits to apply.
    public struct Limits: Sendable, Equatable {
        public var pidsMax: Int?
        public var memoryMax: UInt64?
        public var cpuMax: Double?

        public init(pidsMax: Int?, memoryMax: UInt64?, cpuMax: Double?) {
            self.pidsMax = pidsMax
            self.memoryMax = memoryMax
            self.cpuMax = cpuMax
        }

        var controllers: [String] {
            (pidsMax != nil ? ["pids"] : []) + (memoryMax != nil ? ["memory"] : []) + (cpuMax != nil ? ["cpu"] : [])
        }
    }

    /// Creates the run's cgroups beneath the caller's own, in every hierarchy, and applies the limits.
    ///
    /// - Returns: the cgroup and the limits that could not be applied (empty when all held). The caller
    ///   decides whether missing limits are fatal (fail closed) or degraded.
    /// - Throws: ``WardenError`` (`layerUnavailable`) when the off-switch cgroup itself cannot be made.
    public static func create(id: RunID, layout: CgroupLayout, limits: Limits) throws -> (RunCgroup, [String]) {
        var statBuffer = stat()
        guard warden_is_cgroup2(layout.unified.mountPoint) == 1 else {
            throw WardenError(
                code: .layerUnavailable,
                message: "cgroup: \(layout.unified.mountPoint) is not a cgroup v2 filesystem; "
                    + "mount cgroup2 there or unset WARDEN_CGROUP_ROOT"
            )
        }
        var missing: [String] = []
        var needed = limits.controllers
        let parentV2 = layout.unified.ownPath + "/warden"
        if layout.mode == .unified {
            needed = needed.filter { controller in
                guard layout.unifiedControllers.contains(controller) else {
                    missing.append(
                        "\(controller): the \(controller) controller is not available in \(layout.unified.ownPath)")
                    return false
                }
                return true
            }
        }
        do {
            try FileIO.makeDirectory(parentV2, mode: 0o755)
        } catch {
            throw WardenError(
                code: .layerUnavailable,
                message: "cgroup: cannot create \(parentV2) (\(error)); run warden as root or from a delegated cgroup "
                    + "(systemd-run --scope -p Delegate=yes warden run …)"
            )
        }
        if layout.mode == .unified && !needed.isEmpty {
            do {
                try enableControllers(needed, own: layout.unified.ownPath)
            } catch {
                missing.append(contentsOf: needed.map { "\($0): \(error)" })
                needed = []
            }
        }
        let path = parentV2 + "/" + id.rawValue
        guard mkdir(path, 0o755) == 0 else {
            throw WardenError(
                code: .layerUnavailable, message: "cgroup: cannot create \(path): \(String(cString: strerror(errno)))")
        }
        var cgroup = RunCgroup(unified: path, v1: [:])
        guard stat(path + "/cgroup.kill", &statBuffer) == 0 else {
            cgroup.remove()
            throw WardenError(
                code: .layerUnavailable,
                message: "cgroup: this kernel has no cgroup.kill (Linux 5.14 or newer is needed for the off-switch)")
        }
        if layout.mode == .hybrid {
            for controller in needed {
                guard let hierarchy = layout.v1[controller] else {
                    missing.append("\(controller): no v1 \(controller) hierarchy is mounted")
                    continue
                }
                let directory = hierarchy.ownPath + "/warden/" + id.rawValue
                do {
                    try FileIO.makeDirectory(hierarchy.ownPath + "/warden", mode: 0o755)
                    try FileIO.makeDirectory(directory, mode: 0o755)
                    cgroup.v1[controller] = directory
                } catch {
                    missing.append("\(controller): \(error)")
                }
            }
        }
        missing.append(contentsOf: cgroup.apply(limits, layout: layout))
        return (cgroup, missing)
    }

    /// Turns controllers on for `own/warden`; on EBUSY ("no internal processes") moves this process into
    /// a leaf first when it is alone in its cgroup, as a delegated `systemd-run --scope` is.
    private static func enableControllers(_ controllers: [String], own: String) throws {
        let value = controllers.map { "+" + $0 }.joined(separator: " ")
        do {
            try FileIO.writeValue(value, to: own + "/cgroup.subtree_control")
        } catch {
            guard errno == EBUSY else { throw error }
            let members = ((try? FileIO.readString(own + "/cgroup.procs")) ?? "").split(separator: "\n")
            guard members == ["\(getpid())"] else {
                throw WardenError(
                    code: .layerUnavailable,
                    message:
                        "cannot enable controllers under \(own): it holds other processes; start warden in its own "
                        + "delegated cgroup (systemd-run --scope -p Delegate=yes warden run …)")
            }
            try FileIO.makeDirectory(own + "/supervisor", mode: 0o755)
            try FileIO.writeValue("0", to: own + "/supervisor/cgroup.procs")
            try FileIO.writeValue(value, to: own + "/cgroup.subtree_control")
        }
        try FileIO.writeValue(value, to: own + "/warden/cgroup.subtree_control")
    }

    /// Writes the limits; returns the ones that did not hold.
    func apply(_ limits: Limits, layout: CgroupLayout) -> [String] {
        var missing: [String] = []
        func attempt(_ controller: String, _ writes: [(file: String, value: String, required: Bool)]) {
            let directory = layout.mode == .unified ? unified : v1[controller]
            guard let directory else { return }
            for write in writes {
                let file = directory + "/" + write.file
                do {
                    try FileIO.writeValue(write.value, to: file)
                } catch  where write.required {
                    missing.append("\(controller): \(error)")
                } catch {
                    continue
                }
            }
        }
        if let pids = limits.pidsMax { attempt("pids", [("pids.max", String(pids), true)]) }
        if let memory = limits.memoryMax {
            if layout.mode == .unified {
                attempt("memory", [("memory.max", String(memory), true), ("memory.swap.max", "0", false)])
            } else {
                attempt(
                    "memory",
                    [
                        ("memory.limit_in_bytes", String(memory), true),
                        ("memory.memsw.limit_in_bytes", String(memory), false),
                    ])
            }
        }
        if let cpu = limits.cpuMax {
            let quota = max(1000, Int((cpu * 100_000).rounded()))
            if layout.mode == .unified {
                attempt("cpu", [("cpu.max", "\(quota) 100000", true)])
            } else {
                attempt("cpu", [("cpu.cfs_period_us", "100000", true), ("cpu.cfs_quota_us", String(quota), true)])
            }
        }
        return missing
    }

    /// Kills every process in the run at once (`cgroup.kill`); races with fork are the kernel's problem.
    public func kill() throws {
        try FileIO.writeValue("1", to: unified + "/cgroup.kill")
    }

    /// Whether any process of the run is alive (`cgroup.events`: `populated`). A missing cgroup is empty.
    public func isPopulated() -> Bool {
        guard let events = try? FileIO.readString(unified + "/cgroup.events") else { return false }
        return events.contains("populated 1")
    }

    /// The processes in the run's v2 cgroup.
    public func processIDs() -> [Int32] {
        guard let text = try? FileIO.readString(unified + "/cgroup.procs") else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Waits until `cgroup.events` says `populated 0`, waking on the kernel's notification.
    ///
    /// - Parameters:
    ///   - interruptFD: a descriptor whose readability ends the wait early (the supervisor's signal
    ///     pipe: a second Ctrl-C cuts the grace period short); -1 for none.
    /// - Returns: true when empty, false at the deadline or on interruption.
    public func waitUntilEmpty(
        timeout: Duration, interruptFD: Int32 = -1, observer: StopProtocol.Observer? = nil
    ) -> Bool {
        let deadline = monotonicNanoseconds() + timeout.nanoseconds
        let fd = open(unified + "/cgroup.events", O_RDONLY | O_CLOEXEC)
        if fd < 0 { return true }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let observed = observer?.fileDescriptors ?? []
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            if n > 0, String(decoding: buffer[0..<n], as: UTF8.self).contains("populated 0") { return true }
            let remaining = deadline - monotonicNanoseconds()
            if remaining <= 0 { return false }
            var fds = [
                pollfd(fd: fd, events: Int16(POLLPRI), revents: 0),
                pollfd(fd: interruptFD, events: Int16(POLLIN), revents: 0),
            ]
            fds += observed.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // The kernel delivers the change notification from a workqueue, which a loaded machine can
            // delay; re-reading every 2 ms bounds what a late or lost edge costs.
            _ = poll(&fds, nfds_t(fds.count), Int32(min(remaining / 1_000_000 + 1, 2)))
            if fds[1].revents != 0 { return false }
            if let observer, fds.dropFirst(2).contains(where: { $0.revents != 0 }) { observer.onReadable() }
        }
    }

    /// Counters of limits the run ran into (`pids.events` max, memory OOM kills or failcnt).
    public func limitEvents() -> [String: String] {
        var result: [String: String] = [:]
        func counter(_ file: String, _ key: String) -> Int? {
            guard let text = try? FileIO.readString(file) else { return nil }
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, parts[0] == key { return Int(parts[1]) }
            }
            return nil
        }
        let pidsDirectory = v1["pids"] ?? unified
        if let n = counter(pidsDirectory + "/pids.events", "max"), n > 0 { result["pids_max_hits"] = String(n) }
        if let memory = v1["memory"] {
            if let text = try? FileIO.readString(memory + "/memory.failcnt"),
                let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), n > 0
            {
                result["memory_limit_hits"] = String(n)
            }
            if let n = counter(memory + "/memory.oom_control", "oom_kill"), n > 0 { result["oom_kills"] = String(n) }
        } else {
            if let n = counter(unified + "/memory.events", "max"), n > 0 { result["memory_limit_hits"] = String(n) }
            if let n = counter(unified + "/memory.events", "oom_kill"), n > 0 { result["oom_kills"] = String(n) }
        }
        if let cpu = v1["cpu"] ?? (FileIO.exists(unified + "/cpu.stat") ? unified : nil),
            let n = counter(cpu + "/cpu.stat", "nr_throttled"), n > 0
        {
            result["cpu_throttled_periods"] = String(n)
        }
        return result
    }

    /// Removes the cgroup directories (only possible once empty); missing ones are fine.
    ///
    /// Exited tasks can hold a cgroup busy for a moment after `populated 0` (until they are reaped), so
    /// EBUSY is retried for up to 200 ms.
    public func remove() {
        for directory in Array(v1.values) + [unified] {
            for _ in 0..<40 {
                if rmdir(directory) == 0 || errno != EBUSY { break }
                usleep(5_000)
            }
        }
    }
}
