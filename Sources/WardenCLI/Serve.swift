import ArgumentParser
import Foundation
import WardenAudit
import WardenCore
import WardenGateway
import WardenSandbox
import WardenServer

#if canImport(Glibc)
    import Glibc
#endif

extension Role: ExpressibleByArgument {}

extension StateOptions {
    var tokens: TokenStore {
        get throws { try TokenStore(stateDirectory: host.stateDirectory) }
    }

    /// Records one of the daemon's kinds of event from the command line (token changes), durably.
    func recordServerEvent(_ kind: String, subject: String, _ details: [String: String]) throws {
        let draft = AuditDraft(
            kind: kind, actor: "operator", subject: subject,
            details: .strings(details))
        let state = host.stateDirectory
        try Blocking.wait { () async throws -> Void in
            let log = try await auditCall { try await AuditLog.open(location: .stateDirectory, stateDirectory: state) }
            do {
                _ = try await auditCall { try await log.record(draft) }
                await log.close()
            } catch {
                await log.close()
                throw error
            }
        }
    }
}

extension Warden {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The control-plane daemon: an HTTP API, a live event stream, a dashboard and metrics.",
            discussion: """
                Listens on a Unix socket (STATE/warden.sock, mode 0600: root and the daemon's user, by the \
                peer's uid) and, only with --listen, on TCP with TLS, where every request needs a bearer \
                token (`warden serve token create`). No --listen and no token: no remote access.

                The daemon is a second way in, never the only one: it keeps no state of its own that the \
                CLI does not see. Kill it and runs stay confined; `warden stop` and `warden approve` keep \
                working; a restart picks everything up.

                The daemon's flags (--listen, --tls-cert, --tls-key, --socket, --reports, --max-connections, \
                --max-streams, --origin) are listed by `warden serve start --help`; the API and the dashboard \
                are described in docs/serve.md.

                Examples:
                  warden serve
                  curl --unix-socket /var/lib/warden/warden.sock http://warden/v1/runs
                  warden serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
                  warden serve token create --name alice --role approver
                """,
            subcommands: [Start.self, Token.self], defaultSubcommand: Start.self)
    }
}

extension Warden.Serve {
    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start", abstract: "Run the daemon in the foreground (the default; SIGTERM ends it).")
        @Option(help: "The Unix socket (default: STATE/warden.sock).")
        var socket: String?
        @Option(help: "Also listen on TCP at HOST:PORT, with TLS (needs --tls-cert and --tls-key; port 0 picks one).")
        var listen: String?
        @Option(name: .customLong("tls-cert"), help: "The TLS certificate chain (PEM) for --listen.")
        var tlsCertificate: String?
        @Option(name: .customLong("tls-key"), help: "The TLS private key (PEM) for --listen.")
        var tlsKey: String?
        @Option(help: "Red-team reports shown by the dashboard (default: STATE/reports).")
        var reports: String?
        @Option(name: .customLong("max-connections"), help: "Open connections per listener at most.")
        var maxConnections = 256
        @Option(name: .customLong("max-streams"), help: "Live event streams at most.")
        var maxStreams = 64
        @Option(
            name: .customLong("origin"),
            help: "Another origin a browser may send changes from (e.g. https://warden.example behind a proxy).")
        var origins: [String] = []
        @OptionGroup var state: StateOptions

        func validate() throws {
            if listen == nil && (tlsCertificate != nil || tlsKey != nil) {
                throw ValidationError("--tls-cert and --tls-key go with --listen")
            }
            if maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
            if maxStreams < 1 { throw ValidationError("--max-streams must be at least 1") }
        }

        func run() async throws {
            let stateDirectory = state.host.stateDirectory
            let registry = state.registry
            try registry.prepare()
            umask(0o077)
            let listenAddress = try listen.map { try ServerSettings.parseListen($0) }
            let settings = ServerSettings(
                socketPath: socket ?? stateDirectory + "/warden.sock", listen: listenAddress,
                tlsCertificate: tlsCertificate, tlsKey: tlsKey, maxConnections: maxConnections,
                maxStreams: maxStreams, extraOrigins: origins)
            let log = try await auditCall {
                try await AuditLog.open(location: .stateDirectory, stateDirectory: stateDirectory)
            }
            let plane = ControlPlane(
                stateDirectory: stateDirectory, registry: registry, approvals: try state.approvals(),
                tokens: try state.tokens, log: log, reportsDirectory: reports ?? stateDirectory + "/reports")
            let server = ControlPlaneServer(plane: plane, settings: settings)
            _ = try server.tlsConfiguration()
            try await server.run { address in
                FileHandle.standardOutput.write(Data("warden serve: listening on \(address)\n".utf8))
            }
            await log.close()
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "API tokens: create (shown once), list, revoke.",
            discussion: """
                Roles: viewer reads everything; approver also approves and denies held requests; operator \
                also stops runs. Tokens are stored hashed (STATE/serve/tokens.db); creating and revoking \
                one is recorded in the audit log. A revoked token fails from the next request on.

                Examples:
                  warden serve token create --name alice --role approver
                  warden serve token list --json
                  warden serve token revoke alice
                """,
            subcommands: [Create.self, List.self, Revoke.self])
    }
}

extension Warden.Serve.Token {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print it (once; only its hash is kept).")
        @Option(help: "A name for whoever holds it (recorded with everything they do).")
        var name: String
        @Option(help: "viewer, approver or operator.")
        var role: Role = .viewer
        @Flag(help: "Print {\"token\", \"id\", \"name\", \"role\"} as JSON.")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let creator = currentApprover(as: nil).description
            let (token, secret) = try state.tokens.create(name: name, role: role, by: creator) { token in
                try state.recordServerEvent(
                    ServerEvent.tokenCreated, subject: token.name,
                    ["id": token.id, "role": token.role.rawValue, "by": creator])
            }
            if json {
                print(
                    try Output.json([
                        "token": secret, "id": token.id, "name": token.name, "role": token.role.rawValue,
                    ]))
            } else {
                print(secret)
                Output.error(
                    "token '\(token.name)' (\(token.role.rawValue)) created; it is shown only now. Use it as `Authorization: Bearer <token>` or sign in to the dashboard with it."
                )
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @Flag(help: "Print a JSON array.")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let tokens = try state.tokens.list()
            if json { return print(try Output.json(tokens)) }
            if tokens.isEmpty { return print("no tokens (warden serve token create --name NAME --role ROLE)") }
            print(
                Table(
                    header: ["ID", "NAME", "ROLE", "CREATED", "STATE"],
                    rows: tokens.map {
                        [
                            $0.id, $0.name, $0.role.rawValue, RunEvent.timestamp($0.createdAtNanoseconds),
                            $0.revokedAtNanoseconds.map { "revoked \(RunEvent.timestamp($0))" } ?? "active",
                        ]
                    }
                ).rendered)
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token (by id or name); recorded.")
        @Argument(help: "The token's id or name.")
        var token: String
        @Flag(help: "Print the revoked token as JSON.")
        var json = false
        @OptionGroup var state: StateOptions

        func run() throws {
            let by = currentApprover(as: nil).description
            let revoked = try state.tokens.revoke(token) { token in
                try state.recordServerEvent(
                    ServerEvent.tokenRevoked, subject: token.name,
                    ["id": token.id, "role": token.role.rawValue, "by": by])
            }
            print(json ? try Output.json(revoked) : "revoked token '\(revoked.name)' [\(revoked.id)]")
        }
    }
}
