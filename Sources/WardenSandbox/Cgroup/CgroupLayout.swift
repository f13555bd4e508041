import Foundation
import WardenCore

/// Where the cgroup hierarchies are and where this process sits in each.
///
/// Two layouts are supported: fully unified v2 (the systemd default), where pids, memory and cpu are v2
/// controllers; and hybrid, where the v2 tree provides `cgroup.kill` and `cgroup.events` and the
/// controllers are v1 hierarchies. Runs are always created beneath the caller's own cgroup, never at a
/// hierarchy's root.
public struct CgroupLayout: Sendable, Equatable {
    public enum Mode: String, Sendable, Codable { case unified, hybrid }

    /// A v1 hierarchy holding one controller.
    public struct Hierarchy: Sendable, Equatable {
        public var mountPoint: String
        /// This process's cgroup in that hierarchy, as a filesystem path.
        public var ownPath: String
    }

    public var mode: Mode
    /// The v2 mount point and this process's v2 cgroup directory.
    public var unified: Hierarchy
    /// v1 hierarchies by controller name (`pids`, `memory`, `cpu`), hybrid layout only.
    public var v1: [String: Hierarchy]
    /// Controllers the v2 tree offers at this process's cgroup.
    public var unifiedControllers: Set<String>

    public static let limitControllers = ["pids", "memory", "cpu"]

    /// Works the layout out from `/proc/self/cgroup` and `/proc/self/mountinfo`.
    ///
    /// - Parameters:
    ///   - rootOverride: a v2 mount point to use instead of the one in mountinfo (`WARDEN_CGROUP_ROOT`),
    ///     for hosts with unusual mounts and for tests of the fail-closed path.
    /// - Throws: ``WardenError`` with code `layerUnavailable` when there is no usable v2 tree.
    public static func detect(
        procSelfCgroup: String, mountInfo: String, rootOverride: String? = nil,
        readControllers: (String) -> String?
    ) throws -> CgroupLayout {
        var ownV2: String?
        var ownV1: [String: String] = [:]
        for line in procSelfCgroup.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[0] == "0" && parts[1].isEmpty {
                ownV2 = String(parts[2])
            } else {
                for controller in parts[1].split(separator: ",") { ownV1[String(controller)] = String(parts[2]) }
            }
        }
        var v2Mount: (point: String, root: String)?
        var v1Mounts: [String: (point: String, root: String)] = [:]
        for line in mountInfo.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            let tail = halves[1].split(separator: " ")
            guard fields.count >= 5, tail.count >= 3 else { continue }
            let root = unescapeMountPath(String(fields[3]))
            let point = unescapeMountPath(String(fields[4]))
            if tail[0] == "cgroup2", v2Mount == nil {
                v2Mount = (point, root)
            } else if tail[0] == "cgroup" {
                for option in tail[2].split(separator: ",") where limitControllers.contains(String(option)) {
                    v1Mounts[String(option)] = (point, root)
                }
            }
        }
        if let rootOverride { v2Mount = (rootOverride, "/") }
        guard let v2Mount else {
            throw WardenError(
                code: .layerUnavailable,
                message: "cgroup: no cgroup v2 filesystem is mounted; Warden's off-switch needs cgroup v2 "
                    + "(mount it with `mount -t cgroup2 none /sys/fs/cgroup/unified`, or boot with systemd.unified_cgroup_hierarchy=1)"
            )
        }
        let unified = Hierarchy(mountPoint: v2Mount.point, ownPath: join(v2Mount, ownV2 ?? "/"))
        let controllers = Set(
            (readControllers(unified.ownPath + "/cgroup.controllers") ?? "").split(whereSeparator: \.isWhitespace)
                .map(String.init)
        )
        var v1: [String: Hierarchy] = [:]
        for controller in limitControllers {
            if let mount = v1Mounts[controller], let own = ownV1[controller] {
                v1[controller] = Hierarchy(mountPoint: mount.point, ownPath: join(mount, own))
            }
        }
        let isUnified = v1.isEmpty
        return CgroupLayout(
            mode: isUnified ? .unified : .hybrid, unified: unified, v1: isUnified ? [:] : v1,
            unifiedControllers: controllers)
    }

    /// Reads the layout of the calling process.
    public static func current(rootOverride: String?) throws -> CgroupLayout {
        let cgroup = (try? FileIO.readString("/proc/self/cgroup")) ?? ""
        let mountInfo = (try? FileIO.readString("/proc/self/mountinfo")) ?? ""
        return try detect(
            procSelfCgroup: cgroup, mountInfo: mountInfo, rootOverride: rootOverride,
            readControllers: { try? FileIO.readString($0) })
    }

    /// The filesystem path of a cgroup, given the mount (point and the cgroup it shows as root).
    private static func join(_ mount: (point: String, root: String), _ cgroupPath: String) -> String {
        var relative = cgroupPath
        if mount.root != "/" && relative.hasPrefix(mount.root) {
            relative = String(relative.dropFirst(mount.root.count))
        }
        let trimmed = relative.split(separator: "/").joined(separator: "/")
        return trimmed.isEmpty ? mount.point : mount.point + "/" + trimmed
    }

    private static func unescapeMountPath(_ text: String) -> String {
        // mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134.
        var result = ""
        var iterator = Array(text).makeIterator()
        while let c = iterator.next() {
            if c == "\\" {
                let digits = String([iterator.next(), iterator.next(), iterator.next()].compactMap { $0 })
                if let code = UInt8(digits, radix: 8) { result.append(Character(Unicode.Scalar(code))) }
            } else {
                result.append(c)
            }
        }
        return result
    }
}
