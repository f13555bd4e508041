import Foundation
import WardenCore
import WardenSandbox

/// What `warden run --explain` prints: the sandbox a run would get, without starting it.
struct SandboxExplanation: Encodable {
    var identity: String
    var workspace: String
    var workspaceOwner: String
    var view: String
    var readable: [String]
    var hidden: [String]
    var writable: [String]
    var landlockReadable: [String]
    var network: String
    var environment: [String: String]
    var command: [String]
    var bubblewrap: [String]

    init(plan: RunPlan) {
        let command = BubblewrapCommand(
            plan: plan, seccomp: true, infoFD: 3, statusFD: 4, goFD: 5, applyLandlock: true,
            accountFDs: plan.identity == nil ? nil : (6, 7))
        let range = AgentIdentity.perRunRange
        identity =
            plan.identity.map {
                (plan.identityPerRun
                    ? "a host uid of its own, the lowest of \(range.lowerBound)-\(range.upperBound) no live run has (uid = gid),"
                    : "host uid \($0)")
                    + " in its own user namespace (not root)"
                    + (plan.workspaceOwner == $0 ? "" : "; workspace files of \(plan.workspaceOwner) appear as its own")
            } ?? "host root (uid 0), every capability dropped: --allow-degraded root"
        workspace = plan.workspace
        workspaceOwner = plan.workspaceOwner.description
        view = plan.view.rawValue
        readable =
            plan.view == .host
            ? ["/ (the whole host, read-only)"]
            : plan.viewLayout.entries.map(\.description) + plan.read
                + [plan.host.wardenExecutable + " (the inner shim)"]
        hidden = plan.hiddenPaths()
        writable = [plan.workspace, "/tmp (private, \(ByteSize(bytes: command.temporarySize)))", "/dev (private)"]
        landlockReadable = command.shim.readOnly
        switch plan.network {
        case .none: network = "none (loopback only; TCP denied by Landlock)"
        case .host: network = "host (unsafe)"
        case .proxy:
            let policies =
                plan.egress.policies.isEmpty
                ? "no policy: every connection denied" : plan.egress.policies.joined(separator: ", ")
            network =
                "proxy (loopback only; out through the egress door: HTTP proxy 127.0.0.1:3128, SOCKS5 :1080, DNS :53; \(policies))"
        }
        environment = Dictionary(plan.environment.map { ($0.name, $0.value) }) { $1 }
        self.command = plan.command
        bubblewrap = command.arguments
    }

    var text: String {
        var lines = [
            "identity:   \(identity)", "workspace:  \(workspace) (read-write; owner \(workspaceOwner))",
            "view:       \(view)",
        ]
        lines += readable.map { "  read:     \($0)" }
        lines += hidden.map { "  hidden:   \($0)" }
        lines += writable.dropFirst().map { "  write:    \($0)" }
        lines.append(
            "landlock:   read+exec \(landlockReadable.joined(separator: " ")); list /; write \(workspace) /tmp /dev")
        lines.append("network:    \(network)")
        lines += environment.sorted { $0.key < $1.key }.map { "  env:      \($0.key)=\($0.value)" }
        lines.append("command:    \(command.joined(separator: " "))")
        lines.append("bubblewrap: \(bubblewrap.joined(separator: " "))")
        return lines.joined(separator: "\n")
    }
}
