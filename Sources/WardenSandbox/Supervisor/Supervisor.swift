import CWardenLinux
import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The supervisor of one run: applies the outer layers, starts bubblewrap inside the run's cgroup,
/// then watches the run (exit, tripwires, lease, operator signals) until it ends.
///
/// State machine: `starting` (layers being applied; any failure refuses the run and removes what was
/// made) → `running` → `stopping` → `stopped`, or `running` → `exited` when the agent ends by itself.
public final class Supervisor {
    /// The plan; its identity is filled in at start when the run claims one of its own.
    public private(set) var plan: RunPlan
    public let registry: RunRegistry
    public private(set) var id: RunID?
    private var cgroup: RunCgroup?
    private var bubblewrapPID: pid_t = -1
    private var bubblewrapPIDFD: Int32 = -1
    private var watcher: TripwireWatcher?
    private var denials: DenialWatcher?
    private var ledger: RunLedger?
    private var signalFD: Int32 = -1
    /// A detached run's output, relayed into the bounded `output.log`.
    private var output: OutputLog?
    /// A foreground run's own pty, relayed to the operator's terminal.
    private var terminal: TerminalRelay?
    /// The process behind the doors (`--network proxy`); nil once it is gone.
    private var mediator: MediatorProcess?
    /// The tools door's gateway (`[mcp.servers]`); nil once it is gone.
    private var toolsGateway: ToolsGatewayProcess?
    /// The inline prompt for held requests (a foreground run whose keys are relayed, given a desk).
    private var inline: InlineApprovals?
    /// Where the operator at this run's terminal answers held requests; set after ``start(detached:)``
    /// and before ``superviseUntilExit()``. Without it (or without a terminal) `warden approve` answers.
    public var approvals: (any ApprovalDesk)? {
        didSet { inline = approvals.map { InlineApprovals(desk: $0) } }
    }
    /// Messages for the operator's terminal (warnings about degraded layers, `--network host`).
    public private(set) var warnings: [String] = []
    /// Whether the operator's keys go to the agent's pty: ``TerminalRelay/stopKeyName`` then stops the run.
    public var relaysKeys: Bool { terminal?.takesKeys == true }
    /// The key that stops a foreground run on a terminal.
    public static let stopKeyName = TerminalRelay.stopKeyName

    static let handledSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    public init(plan: RunPlan, registry: RunRegistry) {
        self.plan = plan
        self.registry = registry
    }

    /// The layers that will be applied and those the operator allowed to degrade, checked before
    /// anything is created.
    struct LayerPlan {
        var layout: CgroupLayout
        var seccomp: SeccompFilter?
        var landlock: Bool
        var degraded: [(Layer, String)]
    }

    func checkLayers() throws -> LayerPlan {
        guard FileIO.isExecutable(plan.host.bubblewrap) else {
            throw WardenError(
                code: .layerUnavailable,
                message: "bubblewrap: \(plan.host.bubblewrap) is missing or not executable; install it "
                    + "(apt-get install bubblewrap) or point WARDEN_BWRAP at it")
        }
        let layout = try CgroupLayout.current(rootOverride: plan.host.cgroupRoot)
        var degraded: [(Layer, String)] = []
        var seccomp: SeccompFilter?
        do {
            guard warden_seccomp_available() != 0 else {
                throw WardenError(
                    code: .layerUnavailable,
                    message:
                        "seccomp: this kernel has no seccomp (CONFIG_SECCOMP_FILTER); pass --allow-degraded seccomp to run without it"
                )
            }
            seccomp = try SeccompFilter.makeDefault()
        } catch let error as WardenError {
            guard plan.allowDegraded.contains(.seccomp) else { throw error }
            degraded.append((.seccomp, error.message))
        }
        var landlock = true
        do {
            let abi = try LandlockRules.probeABI()
            if abi < LandlockRules.fullABI {
                throw WardenError(
                    code: .layerUnavailable,
                    message:
                        "landlock: this kernel's Landlock ABI is \(abi); signal and socket scoping need ABI \(LandlockRules.fullABI) (Linux 6.12+); pass --allow-degraded landlock to run with what it has"
                )
            }
        } catch let error as WardenError {
            guard plan.allowDegraded.contains(.landlock) else { throw error }
            degraded.append((.landlock, error.message))
            landlock = (try? LandlockRules.probeABI()) != nil
        }
        return LayerPlan(layout: layout, seccomp: seccomp, landlock: landlock, degraded: degraded)
    }

    /// Applies every layer and starts the agent; returns once the agent is running.
    ///
    /// - Parameters:
    ///   - detached: the agent's output goes to `output.log` in the run's directory, its input is empty;
    ///     otherwise it has the supervisor's standard descriptors, except that those that are a terminal
    ///     are replaced by a pty of the run's own, relayed (``TerminalRelay``).
    /// - Throws: ``WardenError``; on any error nothing of the run is left behind except its failed record.
    public func start(detached: Bool) throws -> RunID {
        let layers = try checkLayers()
        try registry.prepare()
        // The sandbox's init is orphaned when bubblewrap's outer process dies first; as a subreaper the
        // supervisor inherits and reaps it, rather than leaving a zombie to a host init that may not.
        _ = warden_set_child_subreaper()
        let id = RunID.random()
        var record = RunRecord(id: id, plan: plan)
        record.supervisorPID = getpid()
        record.supervisorStartTime = ProcessIdentity.startTime(of: getpid())
        let ledger = try RunLedger.create(&record, in: registry, claimingIdentity: plan.identityPerRun)
        plan.identity = record.identity
        self.id = id
        self.ledger = ledger
        // Operator signals are caught from before the agent exists: one that arrives while the run
        // starts is handled (as a stop) as soon as supervision begins, instead of killing the supervisor.
        signalFD = Self.handledSignals.withUnsafeBufferPointer {
            warden_signal_pipe($0.baseAddress, Int32($0.count))
        }
        // A write to a door that died, or to an output pipe whose reader left, fails with EPIPE instead
        // of ending the supervisor (the sandbox gets every signal back to its default: warden_spawn).
        signal(SIGPIPE, SIG_IGN)
        do {
            var stdio: (Int32, Int32, Int32) = (0, 1, 2)
            if detached {
                let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard null >= 0 else { throw FileIO.systemError("open /dev/null") }
                let log = try OutputLog(directory: registry.directory(for: id), maximum: plan.outputMax)
                output = log
                stdio = (null, log.writeFD, log.writeFD)
            } else if let relay = try TerminalRelay.attachIfTerminal() {
                terminal = relay
                stdio = relay.stdio
            }
            defer { if detached { close(stdio.0); close(stdio.1) } }
            try launch(id: id, layers: layers, ledger: ledger, stdio: stdio)
        } catch {
            cleanUpFailedStart(id: id, error: error)
            throw error
        }
        return id
    }

    private func event(
        _ kind: EventKind, _ details: [String: String], actor: EventActor = .supervisor, subject: String = ""
    ) throws {
        try ledger?.record(kind, actor: actor, subject: subject, details: details)
    }

    private func launch(id: RunID, layers: LayerPlan, ledger: RunLedger, stdio: (Int32, Int32, Int32)) throws {
        // 1. cgroup and limits.
        let (cgroup, missingLimits) = try RunCgroup.create(id: id, layout: layers.layout, limits: plan.limits)
        self.cgroup = cgroup
        try ledger.attach(cgroup: cgroup)
        var statuses: [RunRecord.LayerStatus] = [
            .init(layer: .cgroup, status: .applied, detail: "\(layers.layout.mode.rawValue): \(cgroup.unified)")
        ]
        if !missingLimits.isEmpty {
            let message = missingLimits.joined(separator: "; ")
            guard plan.allowDegraded.contains(.limits) else {
                throw WardenError(
                    code: .layerUnavailable,
                    message: "limits: \(message); pass --allow-degraded limits to run without them")
            }
            statuses.append(.init(layer: .limits, status: .degraded, detail: message))
        } else {
            let limits = plan.limits
            statuses.append(
                .init(
                    layer: .limits, status: .applied,
                    detail:
                        "pids.max=\(limits.pidsMax.map(String.init) ?? "max") memory.max=\(ByteSize(bytes: limits.memoryMax)) cpu.max=\(limits.cpuMax.map { String($0) } ?? "max")"
                ))
        }
        statuses.append(
            .init(
                layer: .bubblewrap, status: .applied,
                detail:
                    "pid, mount, ipc, uts, cgroup\(plan.network != .host ? ", net" : "") namespaces; read-only root; cap-drop ALL"
            ))
        var warningEvents: [RunEvent] = []
        func warn(_ warning: String, subject: String, _ details: [String: String]) {
            warnings.append(warning)
            warningEvents.append(
                RunEvent(
                    run: id, kind: .warning, actor: .supervisor, subject: subject,
                    details: details.merging(["warning": warning]) { $1 }))
        }
        switch plan.view {
        case .minimal:
            let shown = plan.viewLayout.entries.map(\.description)
            statuses.append(
                .init(
                    layer: .view, status: .applied,
                    detail:
                        "minimal: \((shown + plan.read).joined(separator: ", ")), the workspace; \(plan.viewLayout.secrets.count) secrets hidden in /etc"
                ))
        case .host:
            let warning = "--view host: the agent can read the whole host filesystem (read-only)"
            statuses.append(.init(layer: .view, status: .degraded, detail: warning))
            warn(warning, subject: "view", ["view": "host"])
        }
        if plan.identity == nil {
            let warning = "--allow-degraded root: the agent runs as host root (uid 0), with every capability dropped"
            statuses.append(.init(layer: .identity, status: .degraded, detail: warning))
            warn(warning, subject: "identity", ["identity": "root"])
        }
        for (layer, reason) in layers.degraded where layer == .seccomp {
            statuses.append(.init(layer: layer, status: .degraded, detail: reason))
        }
        if layers.seccomp != nil {
            statuses.append(
                .init(
                    layer: .seccomp, status: .applied,
                    detail:
                        "\(SeccompFilter.deniedX86_64.count) syscalls denied, namespace clone flags, TIOCSTI"
                        + (plan.network != .host ? ", socket families but AF_UNIX/INET/INET6/NETLINK_ROUTE" : "")
                        + "; arch checked"
                ))
        }
        if plan.network == .host {
            warn(
                "--network host: the agent shares the host's network; nothing stops it sending data out",
                subject: "network", ["network": "host"])
        }

        // Denials the kernel logs from here on are the agent's attempts; read them from the start.
        denials = DenialWatcher(runID: id)
        if denials == nil {
            warnings.append(
                "neither the audit multicast group nor /dev/kmsg is readable: denied operations are enforced but not recorded"
            )
        }

        // 2. Tripwire baselines, taken before the agent can touch anything.
        let baselines = plan.tripwires.map { TripwireBaseline.capture($0) }
        let watcher = TripwireWatcher(baselines: baselines)
        self.watcher = watcher
        if let reason = watcher.degraded {
            // A kernel resource another user exhausted does not refuse this run: the files are compared
            // on every tick (200 ms) instead of notified at once.
            warn(
                "tripwires: watched by polling every 200 ms, not notified at once (\(reason))",
                subject: "tripwire", ["tripwires": "polling", "reason": reason])
        }

        // 3. Descriptors for bubblewrap and the shim.
        var toClose: [Int32] = []
        defer { for fd in toClose { close(fd) } }
        // The agent's identity: its account in /etc/passwd and /etc/group, and the workspace idmapped so
        // that the agent owns its owner's files and what it writes belongs to that owner on the host.
        var accountFDs: (passwd: Int32, group: Int32)?
        var workspaceTree: Int32 = -1
        var identityDetail = ""
        if let identity = plan.identity {
            let fds = try makeAccountFiles(identity)
            toClose += [fds.passwd, fds.group]
            accountFDs = fds
            if plan.workspaceOwner != identity {
                workspaceTree = try idmappedWorkspace(owner: plan.workspaceOwner, agent: identity)
                toClose.append(workspaceTree)
                identityDetail = "; the workspace (owner \(plan.workspaceOwner)) is idmapped to it"
            }
        }
        var resolverFD: Int32?
        if plan.network == .proxy {
            let fd = try Self.memfd(
                "warden-resolv", text: "# Warden's egress door\nnameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
            toClose.append(fd)
            resolverFD = fd
        }
        let info = try makePipe()
        let status = try makePipe()
        let go = try makePipe()
        toClose += [info.write, status.write, go.read]
        defer {
            close(info.read)
            close(status.read)
        }
        let procsFDs = try cgroup.procsFiles.map { path in
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileIO.systemError("open \(path)") }
            toClose.append(fd)
            return fd
        }
        // The agent's first ancestor is created inside the v2 cgroup (clone3); see warden_spawn.
        let cgroupDirectory = open(cgroup.unified, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroupDirectory >= 0 else { throw FileIO.systemError("open \(cgroup.unified)") }
        toClose.append(cgroupDirectory)
        var command = BubblewrapCommand(
            plan: plan, seccomp: layers.seccomp != nil, infoFD: info.write, statusFD: status.write, goFD: go.read,
            applyLandlock: layers.landlock, accountFDs: accountFDs, controllingTerminal: terminal != nil)
        command.resolverFD = resolverFD
        // The tools door: its gateway (and each server's own sandbox) runs before the agent does.
        if plan.hasGateway {
            let gateway = try ToolsGatewayProcess.start(plan: plan, id: id, runDirectory: registry.directory(for: id))
            self.toolsGateway = gateway
            command.toolsSocketDirectory = gateway.socketDirectory
            if !plan.tools.isEmpty {
                statuses.append(
                    .init(
                        layer: .tools, status: .applied,
                        detail:
                            "gateway pid \(gateway.pid): MCP at \(ToolsGatewayConfiguration.socketInSandbox) (warden mcp connect); servers: \(plan.tools.map(\.name).joined(separator: ", ")), each in its own sandbox"
                    ))
            }
            if !plan.models.upstreams.isEmpty {
                let budget = [
                    plan.models.tokensMax.map { "model_tokens_max \($0)" },
                    plan.models.requestsMax.map { "model_requests_max \($0)" },
                ].compactMap { $0 }
                statuses.append(
                    .init(
                        layer: .model, status: .applied,
                        detail:
                            "gateway pid \(gateway.pid): models \(plan.models.upstreams.map { "\($0.name) (\($0.api.rawValue), \(URL(string: $0.url)?.host ?? $0.url))" }.joined(separator: ", ")); keys injected outside the sandbox, the agent holds a dummy; budgets: \(budget.isEmpty ? "none" : budget.joined(separator: ", ")) (on_budget \(plan.models.onBudget.rawValue)); bodies \(plan.models.logBodies ? "recorded (secrets redacted)" : "not recorded (digests only)")"
                    ))
            }
        }
        let argv = command.arguments
        let keep = [accountFDs?.passwd, accountFDs?.group, resolverFD, info.write, status.write, go.read].compactMap {
            $0
        }

        // 4. Spawn: the child joins the run's cgroups before it execs bubblewrap.
        let result = WardenProcess.spawn(
            argv: argv, loginUID: String(getuid()), cgroupDirectoryFD: cgroupDirectory, cgroupFDs: procsFDs,
            keepFDs: keep, stdio: stdio,
            newProcessGroup: true, mountTree: workspaceTree >= 0 ? (workspaceTree, plan.workspace) : nil)
        guard result.pid > 0 else {
            throw WardenError(
                code: .systemCall,
                message:
                    "starting bubblewrap failed at \(Self.stageName(result.stage)): \(String(cString: strerror(result.err)))"
            )
        }
        bubblewrapPID = result.pid
        bubblewrapPIDFD = result.pidfd
        // The agent's side of its pty is the agent's alone now.
        terminal?.closeSlave()
        if let text = try? FileIO.readString("/proc/\(result.pid)/sessionid"), let session = UInt32(text),
            session != UInt32.max
        {
            denials?.session = session
        }
        for fd in toClose { close(fd) }
        toClose = [go.write]

        // 5. Learn the namespace init's pid, then the shim's report on Landlock.
        guard let object = readJSONObject(info.read), let childPID = object["child-pid"] as? Int
        else {
            throw WardenError(
                code: .layerUnavailable,
                message:
                    "bubblewrap: the sandbox did not start (\(reapBubblewrapFailure())); check that user namespaces and bubblewrap work: bwrap --ro-bind / / true"
            )
        }
        let statusLine = WardenProcess.readLine(status.read)
        guard let statusData = statusLine.data(using: .utf8),
            let report = try? JSONSerialization.jsonObject(with: statusData) as? [String: Any],
            report["error"] == nil
        else {
            let reason =
                (statusLine.data(using: .utf8).flatMap {
                    try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
                }?[
                    "error"] as? String) ?? "the inner shim did not report (\(reapBubblewrapFailure()))"
            throw WardenError(code: .layerUnavailable, message: "\(reason)")
        }
        let landlockDetail = report["landlock"] as? String ?? "not applied"
        if layers.landlock, landlockDetail.hasPrefix("applied") {
            // Enforced, but the kernel writes Landlock's denial records only with the audit subsystem
            // enabled, and then without the pid they would be attributed by: the layer says so (inspect)
            // and the record has it, rather than let an empty list of denials pass for "nothing refused".
            let unrecorded = "its denials are enforced but not recorded (logging degraded)"
            statuses.append(.init(layer: .landlock, status: .applied, detail: landlockDetail + "; " + unrecorded))
            warningEvents.append(
                RunEvent(
                    run: id, kind: .warning, actor: .supervisor, subject: "landlock",
                    details: ["layer": "landlock", "logging": "degraded", "warning": "landlock: " + unrecorded]))
        } else {
            let reason = layers.degraded.first { $0.0 == .landlock }?.1 ?? landlockDetail
            statuses.append(.init(layer: .landlock, status: .degraded, detail: reason))
        }
        if let identity = plan.identity {
            let detail = (report["identity"] as? String ?? "uid \(identity)") + identityDetail
            statuses.append(.init(layer: .identity, status: .applied, detail: "host " + detail))
        }
        let agentPID = findChild(of: pid_t(childPID)) ?? pid_t(childPID)

        // The doors: the mediator listens inside the sandbox's network namespace before the agent runs.
        var doorEvents: [RunEvent] = []
        if plan.network == .proxy {
            let configuration = MediatorConfiguration(
                run: id, name: plan.name, profile: plan.profilePath, command: plan.command,
                stateDirectory: registry.stateDirectory, auditStore: plan.auditStore, egress: plan.egress)
            let mediator = try MediatorProcess.start(
                configuration: configuration, runDirectory: registry.directory(for: id), initPID: pid_t(childPID),
                executable: plan.host.wardenExecutable)
            self.mediator = mediator
            let transparent = (mediator.ready["transparent"] as? [Int] ?? []).map(String.init).joined(separator: ",")
            let confinement = (mediator.ready["confinement"] as? [String] ?? []).joined(separator: "; ")
            let policies =
                plan.egress.policies.isEmpty
                ? "none (every connection is denied)" : plan.egress.policies.joined(separator: ", ")
            statuses.append(
                .init(
                    layer: .egress, status: .applied,
                    detail:
                        "mediator pid \(mediator.pid): HTTP proxy 127.0.0.1:\(MediatorConfiguration.httpProxyPort), SOCKS5 :\(MediatorConfiguration.socksPort), DNS :\(MediatorConfiguration.dnsPort), transparent ports \(transparent); policies: \(policies); decision records: \(plan.egress.decisionRecords.rawValue); mediator confined: \(confinement)"
                ))
            doorEvents.append(
                RunEvent(
                    run: id, kind: .mediatorStarted, actor: .supervisor, subject: "egress",
                    details: [
                        "pid": String(mediator.pid), "transparent_ports": transparent,
                        "policies": plan.egress.policies.joined(separator: ","),
                        "on_mediator_loss": plan.egress.onMediatorLoss.rawValue,
                        "decision_records": plan.egress.decisionRecords.rawValue, "confinement": confinement,
                    ]))
            if plan.egress.policies.isEmpty {
                warn(
                    "--network proxy without --policy: every connection is denied", subject: "egress",
                    ["policies": "none"])
            }
        }

        // The tools door's Streamable HTTP endpoint on the sandbox's own loopback (its network
        // namespace exists now); fails closed like the gateway itself.
        if let toolsGateway, plan.network != .host {
            let urls = try toolsGateway.openHTTP(
                initPID: pid_t(childPID), mcp: !plan.tools.isEmpty, model: !plan.models.upstreams.isEmpty)
            if let url = urls.mcp, let index = statuses.firstIndex(where: { $0.layer == .tools }) {
                statuses[index].detail += "; Streamable HTTP at \(url) (WARDEN_MCP_URL)"
            }
            if let url = urls.model, let index = statuses.firstIndex(where: { $0.layer == .model }) {
                statuses[index].detail += "; endpoint \(url) (OPENAI_BASE_URL, ANTHROPIC_BASE_URL)"
            }
        }

        // 6. Record, then let the agent run: nothing it does happens before this is durable. The
        // layers, any warning and the start are one commit (one fsync on the start path).
        let layerEvents = statuses.map { status in
            RunEvent(
                run: id, kind: status.status == .applied ? .layerApplied : .layerDegraded, actor: .supervisor,
                subject: status.layer.rawValue, details: ["layer": status.layer.rawValue, "detail": status.detail])
        }
        let started = RunEvent(
            run: id, kind: .started, actor: .supervisor,
            details: [
                "command": plan.command.joined(separator: " "), "agent_pid": String(agentPID),
                "init_pid": String(childPID), "workspace": plan.workspace, "network": plan.network.rawValue,
                "terminal": terminal == nil ? "none" : "relayed pty (\(Self.stopKeyName) stops the run)",
            ])
        try ledger.markRunning(
            RunLedger.Started(
                bubblewrapPID: result.pid, initPID: pid_t(childPID), agentPID: agentPID, layers: statuses,
                tripwires: baselines, warnings: warnings),
            events: layerEvents + warningEvents + doorEvents + [started])
        var byte: UInt8 = 1
        guard write(go.write, &byte, 1) == 1 else { throw FileIO.systemError("release the agent") }
    }

    /// A sealed-in-spirit memfd holding `text`, rewound, for bubblewrap's `--ro-bind-data`.
    static func memfd(_ name: String, text: String) throws -> Int32 {
        let fd = warden_memfd_create(name)
        guard fd >= 0 else { throw FileIO.systemError("memfd_create") }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, lseek(fd, 0, SEEK_SET) == 0
        else {
            close(fd)
            throw FileIO.systemError("write \(name)")
        }
        return fd
    }

    /// `/etc/passwd` and `/etc/group` as the agent sees them: the host's, plus the agent's own entry
    /// (home: the workspace), so `id`, `whoami`, git and Python find a user name. Memfds for bubblewrap.
    private func makeAccountFiles(_ identity: AgentIdentity) throws -> (passwd: Int32, group: Int32) {
        /// The host's file plus `line`, unless an entry with the same numeric id (third field) exists.
        func memfd(_ name: String, host: String, id: UInt32, line: String) throws -> Int32 {
            let existing = (try? FileIO.readString(host)) ?? ""
            let taken = existing.split(separator: "\n").contains {
                $0.split(separator: ":").dropFirst(2).first == "\(id)"
            }
            let text =
                existing + (existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n") + (taken ? "" : line + "\n")
            return try Self.memfd(name, text: text)
        }
        let passwd = try memfd(
            "warden-passwd", host: "/etc/passwd", id: identity.uid,
            line: "warden-agent:x:\(identity.uid):\(identity.gid):Warden agent:\(plan.workspace):/bin/bash")
        do {
            return (
                passwd,
                try memfd("warden-group", host: "/etc/group", id: identity.gid, line: "warden-agent:x:\(identity.gid):")
            )
        } catch {
            close(passwd)
            throw error
        }
    }

    /// A detached copy of the workspace mount in which files of `owner` appear as `agent`'s (and what
    /// `agent` creates is written as `owner`'s); the spawn child mounts it over the workspace.
    private func idmappedWorkspace(owner: AgentIdentity, agent: AgentIdentity) throws -> Int32 {
        let namespace = warden_userns_create("\(owner.uid) \(agent.uid) 1\n", "\(owner.gid) \(agent.gid) 1\n")
        guard namespace >= 0 else { throw FileIO.systemError("identity: user namespace for the workspace mapping") }
        defer { close(namespace) }
        let tree = warden_idmapped_tree(plan.workspace, namespace)
        guard tree >= 0 else {
            let reason = String(cString: strerror(errno))
            throw WardenError(
                code: .layerUnavailable,
                message:
                    "identity: the workspace \(plan.workspace) cannot be idmapped (\(reason); its filesystem may not support idmapped mounts); run the agent as the workspace's owner with --user \(owner), or pass --allow-degraded root"
            )
        }
        return tree
    }

    private func cleanUpFailedStart(id: RunID, error: any Error) {
        Self.handledSignals.withUnsafeBufferPointer { warden_signal_default($0.baseAddress, Int32($0.count)) }
        terminal?.finish()
        mediator?.terminate()
        mediator = nil
        toolsGateway?.terminate()
        toolsGateway = nil
        if bubblewrapPIDFD >= 0 {
            try? cgroup?.kill()
            _ = cgroup?.waitUntilEmpty(timeout: .seconds(5))
            var status: Int32 = 0
            waitpid(bubblewrapPID, &status, 0)
            close(bubblewrapPIDFD)
            bubblewrapPIDFD = -1
        }
        // The ledger removes the (now empty) cgroup with the transition to failed; one it never learned
        // of, or when the transition could not be recorded, is removed here.
        let failed = (try? ledger?.markFailed(error)) != nil
        if !failed || (try? registry.load(id))?.cgroup == nil { cgroup?.remove() }
    }

    private func reapBubblewrapFailure() -> String {
        guard bubblewrapPID > 0 else { return "not started" }
        var status: Int32 = 0
        let reaped = waitpid(bubblewrapPID, &status, 0) == bubblewrapPID
        close(bubblewrapPIDFD)
        bubblewrapPIDFD = -1
        bubblewrapPID = -1
        return reaped ? "bubblewrap exited with status \(Self.exitCode(status))" : "bubblewrap vanished"
    }

    /// Watches the run until it ends; returns the agent's exit code (128+N when killed by signal N).
    public func superviseUntilExit() -> Int32 {
        guard let id, let cgroup else { return 125 }
        defer {
            Self.handledSignals.withUnsafeBufferPointer { warden_signal_default($0.baseAddress, Int32($0.count)) }
        }
        var exitStatus: Int32 = 0
        var stopping = false
        var leaseTracker = LeaseTracker()
        // The operator's keys are the agent's from here (raw mode); warnings were printed before.
        do {
            try terminal?.takeKeys()
        } catch {
            try? event(.warning, ["warning": "\(error)"], subject: "terminal")
        }
        loop: while true {
            var fds = [
                pollfd(fd: bubblewrapPIDFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: watcher?.fileDescriptor ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: denials?.fileDescriptor ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: output?.readFD ?? -1, events: Int16(POLLIN), revents: 0),
            ]
            let doorBase = fds.count
            fds += [
                pollfd(fd: mediator?.pidfd ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: mediator?.control ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: toolsGateway?.messages ?? -1, events: Int16(POLLIN), revents: 0),
            ]
            let terminalBase = fds.count
            fds += terminal?.pollDescriptors ?? []
            _ = poll(&fds, nfds_t(fds.count), 200)
            if fds[doorBase + 1].revents != 0, let mediator {
                for message in mediator.drainMessages() {
                    if let held = message["ask"] as? String, relaysKeys { inline?.enqueue(held) }
                    guard let reason = message["stop"] as? String, !stopping else { continue }
                    stopping = true
                    runStop(actor: .gateway, reason: reason, grace: plan.grace)
                }
            }
            if fds[doorBase + 2].revents != 0, let toolsGateway {
                for held in toolsGateway.drainAsks() where relaysKeys { inline?.enqueue(held) }
                if toolsGateway.ended && !stopping {
                    // Its socket and endpoint went with it: tool calls fail, none goes undecided.
                    self.toolsGateway = nil
                    let pid = toolsGateway.pid
                    toolsGateway.terminate()
                    recoverDecisionJournal(door: "tools")
                    try? event(
                        .warning,
                        [
                            "pid": String(pid), "layer": "tools",
                            "warning":
                                "the tools gateway exited; the agent's tool calls and model requests fail from now on (its servers ended with it)",
                        ], actor: .warden, subject: "tools")
                }
            }
            if let inline, let terminal, relaysKeys, !stopping { inline.service(terminal) }
            if fds[doorBase].revents != 0, let mediator, let how = mediator.exitIfDead() {
                self.mediator = nil
                mediator.terminate()
                recoverDecisionJournal()
                let action = plan.egress.onMediatorLoss
                try? event(
                    .mediatorLost,
                    [
                        "pid": String(mediator.pid), "how": how, "action": action.rawValue,
                        "detail": "every door is closed: the sandbox has only loopback",
                    ], actor: .warden, subject: "egress")
                if action == .stop && !stopping {
                    stopping = true
                    runStop(actor: .warden, reason: "mediator lost (\(how))", grace: plan.grace)
                }
            }
            if fds[4].revents != 0 { drainOutput() }
            if let terminal, fds[terminalBase...].contains(where: { $0.revents != 0 }), terminal.service() > 0 {
                if !stopping {
                    stopping = true
                    runStop(
                        actor: .operator, reason: "operator interrupt (\(Self.stopKeyName))", grace: plan.grace)
                } else {
                    try? cgroup.kill()
                }
            }
            if fds[0].revents != 0 {
                var status: Int32 = 0
                if waitpid(bubblewrapPID, &status, WNOHANG) == bubblewrapPID {
                    exitStatus = status
                    break loop
                }
            }
            if let watcher {
                let incidents = fds[1].revents != 0 ? watcher.drainNotifications() : watcher.compareWithLastSeen()
                recordIncidents(incidents)
                if !incidents.isEmpty && plan.onTamper == .stop && !stopping {
                    stopping = true
                    let what = incidents.map { "\($0.change) \($0.path)" }.joined(separator: ", ")
                    runStop(actor: .tripwire, reason: "tamper: \(what)", grace: .zero)
                }
            }
            if fds[3].revents != 0 { recordDenials() }
            if fds[2].revents != 0 {
                var byte: UInt8 = 0
                var received: [String] = []
                while read(signalFD, &byte, 1) == 1 { received.append(Self.signalName(Int32(byte))) }
                if !stopping {
                    stopping = true
                    runStop(
                        actor: .operator, reason: "operator interrupt (\(received.first ?? "signal"))",
                        grace: plan.grace)
                } else {
                    // A second interrupt skips what is left of the grace period.
                    try? cgroup.kill()
                }
            }
            if !stopping, plan.lease != nil, let lease = leaseTracker.current(registry: registry, id: id),
                RunEvent.now() >= lease.expiresAtNanoseconds
            {
                stopping = true
                try? event(.leaseExpired, ["expired_at_ns": String(lease.expiresAtNanoseconds)], actor: .lease)
                runStop(actor: .lease, reason: "lease-expired", grace: plan.grace)
            }
        }
        return finish(id: id, cgroup: cgroup, status: exitStatus)
    }

    /// The run's lease as `warden renew` (through the run's ledger) last wrote it. The record is read
    /// again only when run.json has changed, so the 200 ms tick costs one `stat`, not a JSON decode.
    struct LeaseTracker {
        // run.json is replaced by rename, so a new inode (or mtime) means a new version.
        private var stamp: (inode: UInt64, seconds: Int, nanoseconds: Int)?
        private var lease: RunRecord.Lease?

        mutating func current(registry: RunRegistry, id: RunID) -> RunRecord.Lease? {
            var st = stat()
            guard stat(registry.directory(for: id) + "/run.json", &st) == 0 else { return lease }
            let now = (UInt64(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec))
            if stamp.map({ $0 != now }) ?? true, let record = try? registry.load(id) {
                stamp = now
                lease = record.lease
            }
            return lease
        }
    }

    /// Runs the stop protocol from the supervisor's loop; tripwires and kernel denials are still read
    /// and recorded while the grace period runs.
    private func runStop(actor: EventActor, reason: String, grace: Duration) {
        guard let ledger else { return }
        // A question still on the terminal is moot (the door's request ends with the run); the agent's
        // output is relayed again during the grace period.
        terminal?.endPrompt("\r\u{1B}[K  → the run is stopping; not answered\r\n")
        // Only operator interrupts may cut the grace short; the signal pipe is drained by the loop after.
        // The model goes first: open streams end and no request is answered during the grace period.
        if !plan.models.upstreams.isEmpty { toolsGateway?.cutModel(reason: "the run is stopping: \(reason)") }
        let interrupt = actor == .operator ? signalFD : -1
        let observer = StopProtocol.Observer(
            fileDescriptors: [watcher?.fileDescriptor, denials?.fileDescriptor, output?.readFD].compactMap { $0 }
                + (terminal?.pollDescriptors.map(\.fd) ?? [])
        ) { [self] in
            if let watcher { recordIncidents(watcher.drainNotifications()) }
            recordDenials()
            drainOutput()
            // The agent's output is still relayed during the grace period; the stop key again kills now.
            if let terminal, terminal.service() > 0 { try? cgroup?.kill() }
        }
        let outcome = try? StopProtocol(ledger: ledger, actor: actor, interruptFD: interrupt)
            .run(grace: grace, reason: reason, observer: observer)
        if outcome?.stopped != true { try? cgroup?.kill() }
    }

    /// Commits what a dead mediator wrote to its decision journal and had not committed yet.
    private func recoverDecisionJournal(door: String = "egress") {
        guard let id, let ledger, plan.egress.decisionRecords == .journal else { return }
        let directory = registry.directory(for: id)
        let path: String
        if door == "tools" {
            guard plan.hasGateway else { return }
            path = ToolsGatewayConfiguration.journalPath(runDirectory: directory)
        } else {
            guard plan.network == .proxy else { return }
            path = MediatorConfiguration.journalPath(runDirectory: directory)
        }
        do {
            let recovered = try EventJournal.recover(path: path, into: ledger.sink, run: id)
            if recovered > 0 {
                try? event(
                    .warning,
                    [
                        "warning":
                            "\(recovered) decision records the \(door == "tools" ? "tools gateway" : "mediator") had journaled were committed after it ended"
                    ],
                    actor: .warden, subject: door)
            }
        } catch {
            try? event(
                .warning, ["warning": "the decision journal \(path) could not be committed: \(error); it is kept"],
                actor: .warden, subject: door)
        }
    }

    /// Copies the agent's output into `output.log`; the first time the cap is reached is recorded.
    private func drainOutput() {
        guard let output, output.drain(), let maximum = output.maximum else { return }
        try? event(
            .limitHit,
            [
                "limit": "output_max", "output_max": String(maximum),
                "kept": "the latest \(ByteSize(bytes: maximum)) in output.log and output.log.1",
            ],
            actor: .supervisor, subject: "output")
    }

    private func recordDenials() {
        guard let denials else { return }
        for denial in denials.drain() {
            try? event(
                .denied,
                [
                    "mechanism": denial.mechanism, "what": denial.what, "pid": String(denial.pid),
                    "command": denial.command,
                ],
                actor: .kernel, subject: denial.what)
        }
    }

    private func recordIncidents(_ incidents: [TripwireIncident]) {
        for incident in incidents {
            try? event(
                .tripwire, ["path": incident.path, "change": incident.change, "detail": incident.detail],
                actor: .tripwire, subject: incident.path)
        }
    }

    private func finish(id: RunID, cgroup: RunCgroup, status: Int32) -> Int32 {
        close(bubblewrapPIDFD)
        bubblewrapPIDFD = -1
        reapOrphans()
        // The namespace init is gone, so the kernel has killed the namespace; make sure of it anyway.
        if cgroup.isPopulated() {
            try? cgroup.kill()
            _ = cgroup.waitUntilEmpty(timeout: .seconds(5))
        }
        if let watcher { recordIncidents(watcher.finalCheck()) }
        recordDenials()
        // Every writer is gone with the cgroup: this reads the pipe to its end, and the pty's.
        drainOutput()
        if let terminal { inline?.conclude(terminal) }
        terminal?.finish()
        // The agent is gone: the doors close (the mediator records the connections it ends). A mediator
        // already lost had its journal recovered then.
        if let mediator {
            mediator.terminate()
            self.mediator = nil
            recoverDecisionJournal()
        }
        if let toolsGateway {
            toolsGateway.terminate()
            self.toolsGateway = nil
            recoverDecisionJournal(door: "tools")
        }
        let code = Self.exitCode(status)
        let record = try? registry.load(id)
        let wasStopped = record?.stop != nil || record?.state == .stopping || record?.state == .stopped
        if !wasStopped {
            let limits = cgroup.limitEvents()
            if !limits.isEmpty { try? event(.limitHit, limits, actor: .kernel, subject: "cgroup") }
        }
        var details = ["stopped": String(wasStopped)]
        if let denials, !denials.summary.isEmpty { details["denials"] = denials.summary }
        if let lost = denials?.lost, lost > 0 { details["denial_records_lost"] = String(lost) }
        if let dropped = terminal?.filter.summary, !dropped.isEmpty { details["terminal_dropped"] = dropped }
        // Nothing of the run is left to change the workspace: review what the host might execute.
        try? ledger?.recordReview(WorkspaceReview.review(plan.workspace))
        // The ledger removes the cgroup when this ends the run; a stop in progress elsewhere still reads
        // its counters and removes it when it finishes.
        try? ledger?.recordExit(code: code, details: details)
        reapOrphans()
        return code
    }

    /// Reaps descendants reparented to the supervisor (it is a child subreaper).
    private func reapOrphans() {
        var status: Int32 = 0
        while waitpid(-1, &status, WNOHANG) > 0 {}
    }

    // MARK: - helpers

    /// A `waitpid` status as a shell reports it: the exit code, or 128+N when killed by signal N.
    public static func exitCode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(signal)"
        }
    }

    static func stageName(_ stage: Int32) -> String {
        switch stage {
        case Int32(WARDEN_STAGE_FORK): "fork"
        case Int32(WARDEN_STAGE_CGROUP): "joining the run's cgroup"
        case Int32(WARDEN_STAGE_STDIO), Int32(WARDEN_STAGE_FDS): "setting up descriptors"
        case Int32(WARDEN_STAGE_EXEC): "exec of bubblewrap"
        case Int32(WARDEN_STAGE_MOUNT): "mounting the idmapped workspace"
        default: "start"
        }
    }

    private func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard warden_pipe_cloexec(&fds) == 0 else { throw FileIO.systemError("pipe2") }
        return (fds[0], fds[1])
    }

    /// Reads until the bytes so far parse as one JSON object, or EOF.
    private func readJSONObject(_ fd: Int32) -> [String: Any]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
            if bytes.contains(UInt8(ascii: "}")),
                let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            {
                return object
            }
        }
        return nil
    }

    private func findChild(of pid: pid_t) -> pid_t? {
        guard let text = try? FileIO.readString("/proc/\(pid)/task/\(pid)/children") else { return nil }
        return text.split(separator: " ").first.flatMap { pid_t($0) }
    }
}

/// Process creation through the C helper (fork, join cgroups, exec), for the supervisor and the CLI.
public enum WardenProcess {
    /// Reads one line (without its newline) from `fd`, a byte at a time so nothing after it is
    /// consumed; stops at EOF, an error, or `limit` bytes.
    public static func readLine(_ fd: Int32, limit: Int = 65536) -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < limit {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == 0x0A { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Spawns `argv[0]`; see `warden_spawn` for the guarantees between fork and exec.
    public static func spawn(
        argv: [String], environment: [String]? = nil, loginUID: String? = nil, cgroupDirectoryFD: Int32 = -1,
        cgroupFDs: [Int32] = [],
        keepFDs: [Int32], stdio: (Int32, Int32, Int32),
        newProcessGroup: Bool = false, newSession: Bool = false, mountTree: (fd: Int32, target: String)? = nil
    ) -> warden_spawn_result {
        let env = environment ?? ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer {
            for pointer in cArgv { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }
        return cArgv.withUnsafeMutableBufferPointer { argvBuffer in
            cEnv.withUnsafeMutableBufferPointer { envBuffer in
                cgroupFDs.withUnsafeBufferPointer { cgroups in
                    keepFDs.withUnsafeBufferPointer { keep in
                        warden_spawn(
                            argv[0], argvBuffer.baseAddress, envBuffer.baseAddress, loginUID, cgroupDirectoryFD,
                            cgroups.baseAddress,
                            Int32(cgroups.count), keep.baseAddress, Int32(keep.count), stdio.0, stdio.1, stdio.2,
                            newProcessGroup ? 1 : 0, newSession ? 1 : 0, mountTree?.fd ?? -1, mountTree?.target)
                    }
                }
            }
        }
    }
}
