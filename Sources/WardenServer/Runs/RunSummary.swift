import Foundation
import WardenCore
import WardenSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// A run as the API lists it: the registry's record in brief, and what the kernel says it uses now.
public struct RunSummary: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    public var state: String
    public var command: [String]
    public var network: String
    public var createdAtNanoseconds: Int64
    public var endedAtNanoseconds: Int64?
    public var usage: ResourceUsage?
    public var stop: Stop?
    public var exitCode: Int32?

    public struct Stop: Sendable, Codable, Equatable {
        public var reason: String
        public var actor: String
        public var latencyMilliseconds: Double
        public var remainingProcesses: Int

        enum CodingKeys: String, CodingKey {
            case reason, actor
            case latencyMilliseconds = "latency_ms"
            case remainingProcesses = "remaining_processes"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, state, command, network, usage, stop
        case createdAtNanoseconds = "created_ns"
        case endedAtNanoseconds = "ended_ns"
        case exitCode = "exit_code"
    }

    public init(record: RunRecord) {
        id = record.id.rawValue
        name = record.name
        state = record.isOrphaned ? "exited?" : record.state.rawValue
        command = record.command
        network = record.network.rawValue
        createdAtNanoseconds = record.createdAtNanoseconds
        endedAtNanoseconds = record.endedAtNanoseconds
        exitCode = record.exitCode
        if record.state.isActive, let cgroup = record.cgroup { usage = ResourceUsage(cgroup: cgroup) }
        stop = record.stop.map {
            Stop(
                reason: $0.reason, actor: $0.actor.rawValue, latencyMilliseconds: $0.latencyMilliseconds,
                remainingProcesses: $0.remainingProcesses)
        }
    }
}

/// What a run's processes use now, read from its cgroup (or, where this host's cgroups keep no such
/// counter, summed over the processes in it from `/proc`).
public struct ResourceUsage: Sendable, Codable, Equatable {
    public var processes: Int
    public var memoryBytes: UInt64?
    public var cpuSeconds: Double?
    /// Where the memory and CPU figures come from: "cgroup" or "proc" (the processes now alive).
    public var source: String

    enum CodingKeys: String, CodingKey {
        case processes, source
        case memoryBytes = "memory_bytes"
        case cpuSeconds = "cpu_seconds"
    }

    public init(processes: Int, memoryBytes: UInt64?, cpuSeconds: Double?, source: String) {
        self.processes = processes
        self.memoryBytes = memoryBytes
        self.cpuSeconds = cpuSeconds
        self.source = source
    }

    public init(cgroup: RunCgroup) {
        let pids = cgroup.processIDs()
        processes = pids.count
        let memory =
            Self.number(cgroup.unified + "/memory.current")
            ?? cgroup.v1["memory"].flatMap { Self.number($0 + "/memory.usage_in_bytes") }
        let cpu =
            Self.field(cgroup.unified + "/cpu.stat", "usage_usec").map { Double($0) / 1e6 }
            ?? cgroup.v1["cpu"].flatMap { Self.number($0 + "/cpuacct.usage") }.map { Double($0) / 1e9 }
        if let memory, let cpu {
            memoryBytes = memory
            cpuSeconds = cpu
            source = "cgroup"
            return
        }
        // Hybrid hosts keep memory and CPU accounting in v1 hierarchies only for limited runs.
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        var rss: UInt64 = 0
        var time: Double = 0
        for pid in pids {
            if let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8),
                let resident = statm.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) })
            {
                rss += resident * page
            }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command.
                if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) {
                    time += (user + system) / ticks
                }
            }
        }
        memoryBytes = memory ?? rss
        cpuSeconds = cpu ?? time
        source = memory != nil || cpu != nil ? "cgroup+proc" : "proc"
    }

    private static func number(_ path: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func field(_ path: String, _ key: String) -> UInt64? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }
}
