/// Benchmark workloads: policy text, entity JSON and requests, identical for Warden and cedarpy.
public struct PolicyWorkload: Sendable {
    public struct Group: Sendable {
        public var policies: String
        public var entitiesJSON: String
        /// Each request as Cedar JSON: principal, action, resource ({"type", "id"}) and context.
        public var requestsJSON: [String]
    }

    public var name: String
    public var groups: [Group]
    /// Policies per set, as shown in the table ("10", or "1–12" for the corpus).
    public var policyCount: String

    public var requestCount: Int { groups.reduce(0) { $0 + $1.requestsJSON.count } }

    public struct Random: RandomNumberGenerator {
        public var state: UInt64
        public init(state: UInt64) { self.state = state }
        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { Int.random(in: 0..<n, using: &self) }
    }

    static func uid(_ type: String, _ id: String) -> String { "{\"type\": \"\(type)\", \"id\": \"\(id)\"}" }

    static func entity(_ type: String, _ id: String, attrs: String = "{}", parents: [(String, String)] = []) -> String {
        "{\"uid\": \(uid(type, id)), \"attrs\": \(attrs), \"parents\": ["
            + parents.map { uid($0.0, $0.1) }.joined(separator: ", ") + "]}"
    }

    static func request(_ p: (String, String), _ a: String, _ r: (String, String), context: String) -> String {
        "{\"principal\": \(uid(p.0, p.1)), \"action\": \(uid("Action", a)), \"resource\": \(uid(r.0, r.1)), \"context\": \(context)}"
    }

    /// Ten policies an agent operator might write: tool calls, approvals, network egress, limits.
    public static func tenPolicies(requests: Int = 1000) -> PolicyWorkload {
        let policies = """
            @id("read-workspace") permit(principal is Agent, action == Action::"call", resource in Toolset::"read-only");
            @id("write-workspace") @ask("writes change the workspace")
            permit(principal is Agent, action == Action::"call", resource in Toolset::"write") when { context.path like "/workspace/*" };
            @id("no-writes-outside") forbid(principal, action == Action::"call", resource in Toolset::"write")
            unless { context.path like "/workspace/*" };
            @id("fetch-allowlisted") permit(principal is Agent, action == Action::"connect", resource is Host)
            when { resource.allowlisted && context.port == 443 };
            @id("no-private-networks") forbid(principal, action == Action::"connect", resource)
            when { context has ip && context.ip.isInRange(ip("10.0.0.0/8")) };
            @id("no-shell-for-untrusted") forbid(principal, action == Action::"call", resource == Tool::"shell.exec")
            when { principal.trust < 3 };
            @id("trusted-shell") @ask("shell commands") permit(principal, action == Action::"call", resource == Tool::"shell.exec")
            when { principal.trust >= 3 };
            @id("budget") forbid(principal, action, resource) when { context.tokens > principal.budget };
            @id("office-hours") forbid(principal in Team::"interns", action, resource)
            unless { context.hour >= 9 && context.hour < 18 };
            @id("exec-allowlist") permit(principal, action == Action::"exec", resource is Program)
            when { ["git", "python3", "ls", "cat"].contains(resource.name) };
            """
        var entities: [String] = [
            entity("Toolset", "read-only"), entity("Toolset", "write"), entity("Team", "interns"),
        ]
        let tools = [("fs.read", "read-only"), ("fs.list", "read-only"), ("fs.write", "write"), ("fs.delete", "write")]
        for (tool, set) in tools { entities.append(entity("Tool", tool, parents: [("Toolset", set)])) }
        entities.append(entity("Tool", "shell.exec"))
        for i in 0..<4 {
            entities.append(
                entity(
                    "Agent", "a\(i)", attrs: "{\"trust\": \(i + 1), \"budget\": \(10_000 * (i + 1))}",
                    parents: i == 0 ? [("Team", "interns")] : []))
        }
        for (i, host) in ["api.github.com", "pypi.org", "evil.example"].enumerated() {
            entities.append(entity("Host", host, attrs: "{\"allowlisted\": \(i < 2)}"))
        }
        for program in ["git", "python3", "curl"] {
            entities.append(entity("Program", program, attrs: "{\"name\": \"\(program)\"}"))
        }
        var rng = Random(state: 10)
        var list: [String] = []
        for _ in 0..<requests {
            let agent = ("Agent", "a\(rng.int(4))")
            let context =
                "{\"path\": \"\(rng.int(2) == 0 ? "/workspace/src/x.py" : "/etc/passwd")\", \"port\": \(rng.int(2) == 0 ? 443 : 80), "
                + "\"tokens\": \(rng.int(40_000)), \"hour\": \(rng.int(24)), "
                + "\"ip\": {\"__extn\": {\"fn\": \"ip\", \"arg\": \"\(rng.int(2) == 0 ? "10.1.2.3" : "140.82.112.3")\"}}}"
            switch rng.int(3) {
            case 0:
                let tool = (tools.map(\.0) + ["shell.exec"])[rng.int(5)]
                list.append(request(agent, "call", ("Tool", tool), context: context))
            case 1:
                let host = ["api.github.com", "pypi.org", "evil.example"][rng.int(3)]
                list.append(request(agent, "connect", ("Host", host), context: context))
            default:
                list.append(
                    request(agent, "exec", ("Program", ["git", "python3", "curl"][rng.int(3)]), context: context))
            }
        }
        return PolicyWorkload(
            name: "10 policies",
            groups: [
                Group(
                    policies: policies, entitiesJSON: "[" + entities.joined(separator: ",\n") + "]", requestsJSON: list)
            ],
            policyCount: "10")
    }

    /// 1,000 generated policies over 100 entities in 5-level hierarchies (users in group chains, documents
    /// in folder chains), scoped to specific principals, groups, actions and resources.
    public static func thousandPolicies(requests: Int = 1000) -> PolicyWorkload {
        var rng = Random(state: 1000)
        var entities: [String] = []
        // 5 chains of 5 groups (g<c>_<level>, level 0 innermost) and 5 chains of 5 folders: 50 entities.
        for c in 0..<5 {
            for level in 0..<5 {
                let parent = level < 4 ? [("Group", "g\(c)_\(level + 1)")] : []
                entities.append(entity("Group", "g\(c)_\(level)", parents: parent))
                let folderParent = level < 4 ? [("Folder", "f\(c)_\(level + 1)")] : []
                entities.append(entity("Folder", "f\(c)_\(level)", parents: folderParent))
            }
        }
        // 30 users and 20 documents: 100 entities in all.
        for u in 0..<30 {
            entities.append(
                entity(
                    "User", "u\(u)", attrs: "{\"level\": \(rng.int(10)), \"department\": \"d\(rng.int(5))\"}",
                    parents: [("Group", "g\(rng.int(5))_\(rng.int(2))")]))
        }
        for d in 0..<20 {
            entities.append(
                entity(
                    "Document", "doc\(d)",
                    attrs:
                        "{\"owner\": {\"__entity\": \(uid("User", "u\(rng.int(30))"))}, \"classification\": \(rng.int(4))}",
                    parents: [("Folder", "f\(rng.int(5))_0")]))
        }
        let actions = (0..<10).map { "act\($0)" }
        var policies: [String] = []
        for i in 0..<1000 {
            let effect = i % 10 == 9 ? "forbid" : "permit"
            let principal: String
            switch rng.int(3) {
            case 0: principal = "principal == User::\"u\(rng.int(30))\""
            case 1: principal = "principal in Group::\"g\(rng.int(5))_\(rng.int(5))\""
            default: principal = "principal"
            }
            let action =
                principal == "principal" || rng.int(2) == 0
                ? "action == Action::\"\(actions[rng.int(10)])\""
                : "action in [Action::\"\(actions[rng.int(10)])\", Action::\"\(actions[rng.int(10)])\"]"
            let resource =
                rng.int(2) == 0
                ? "resource in Folder::\"f\(rng.int(5))_\(rng.int(5))\"" : "resource == Document::\"doc\(rng.int(20))\""
            let condition: String
            switch rng.int(4) {
            case 0: condition = " when { principal.level >= \(rng.int(10)) }"
            case 1: condition = " when { resource.owner == principal || context.urgent }"
            case 2:
                condition = " when { resource.classification <= principal.level && context.hour < \(8 + rng.int(12)) }"
            default: condition = ""
            }
            policies.append("\(effect)(\(principal), \(action), \(resource))\(condition);")
        }
        var list: [String] = []
        for _ in 0..<requests {
            list.append(
                request(
                    ("User", "u\(rng.int(30))"), actions[rng.int(10)], ("Document", "doc\(rng.int(20))"),
                    context: "{\"urgent\": \(rng.int(4) == 0), \"hour\": \(rng.int(24))}"))
        }
        return PolicyWorkload(
            name: "1,000 policies / 100 entities",
            groups: [
                Group(
                    policies: policies.joined(separator: "\n"),
                    entitiesJSON: "[" + entities.joined(separator: ",\n") + "]", requestsJSON: list)
            ],
            policyCount: "1000")
    }
}
