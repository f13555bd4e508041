import ArgumentParser
import Foundation
import WardenCore
import WardenPolicy

extension Warden {
    struct PolicyCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "policy",
            abstract: "Check, evaluate and test Cedar policies with Warden's native engine.",
            discussion: """
                Every decision Warden makes is a Cedar request (principal, action, resource, context). A \
                permit annotated @ask("why") asks a person instead of allowing; any satisfied forbid denies.

                Examples:
                  warden policy check policies/*.cedar
                  warden policy eval --policies agent.cedar --entities entities.json \\
                      --principal 'Agent::"run-1"' --action 'Action::"call"' --resource 'Tool::"fs.write"'
                  warden policy test cases.json
                  warden policy conformance ../cedar-integration-tests/tests
                """,
            subcommands: [Check.self, Eval.self, TestCases.self, Conformance.self, Reload.self])
    }
}

extension Warden.PolicyCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse policy files and report syntax errors as FILE:LINE:COL: message.")
        @Argument(help: "Cedar policy files.")
        var files: [String]
        @Flag(help: "Print the result as JSON.")
        var json = false

        func validate() throws {
            if files.isEmpty { throw ValidationError("name at least one .cedar file") }
        }

        func run() throws {
            struct Report: Encodable {
                var file: String
                var policies: Int
                var error: String?
            }
            var reports: [Report] = []
            for file in files {
                do {
                    let engine = try PolicyEngine(policyFiles: [file])
                    reports.append(Report(file: file, policies: engine.snapshot.policies.policies.count, error: nil))
                } catch {
                    reports.append(Report(file: file, policies: 0, error: error.message))
                }
            }
            if json {
                print(try Output.json(reports))
            } else {
                for r in reports {
                    if let e = r.error {
                        Output.error(e)
                    } else {
                        print("\(r.file): \(r.policies) polic\(r.policies == 1 ? "y" : "ies"), OK")
                    }
                }
            }
            if reports.contains(where: { $0.error != nil }) { throw ExitCode(1) }
        }
    }

    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decide one request and explain the decision (allow, deny or ask).",
            discussion: """
                Entities are given by their Cedar syntax, e.g. 'User::"alice"'. Context is a JSON object in \
                Cedar's JSON format ({"ip": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}}).
                Exit status: 0 allow, 1 deny, 3 ask.
                """)
        @Option(name: .customLong("policies"), help: "A Cedar policy file (repeatable).")
        var policies: [String] = []
        @Option(help: "Entities in Cedar JSON format.")
        var entities: String?
        @Option(help: "The principal, e.g. 'Agent::\"run-1\"'.")
        var principal: String
        @Option(help: "The action, e.g. 'Action::\"call\"'.")
        var action: String
        @Option(help: "The resource, e.g. 'Tool::\"fs.write\"'.")
        var resource: String
        @Option(help: "The context as a JSON object.")
        var context: String = "{}"
        @Flag(help: "Print the decision as JSON.")
        var json = false

        func validate() throws {
            if policies.isEmpty { throw ValidationError("--policies is required: name at least one .cedar file") }
        }

        func run() throws {
            let engine = try PolicyEngine(policyFiles: policies, entitiesFile: entities)
            let request = try PolicyRequestParsing.request(
                principal: principal, action: action, resource: resource, context: context)
            let decision = engine.decide(request)
            if json {
                print(try Output.json(decision))
            } else {
                print(decision.explanation)
            }
            switch decision.kind {
            case .allow: return
            case .deny: throw ExitCode(1)
            case .ask: throw ExitCode(3)
            }
        }
    }

    struct TestCases: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test",
            abstract: "Run a file of requests with expected decisions: unit tests for your policies.",
            discussion: """
                The cases file is JSON; paths are relative to it:
                  {"policies": ["agent.cedar"], "entities": "entities.json",
                   "cases": [{"name": "agent may read the workspace",
                              "principal": "Agent::\\"a\\"", "action": "Action::\\"read\\"",
                              "resource": "File::\\"/ws/x\\"", "context": {},
                              "expect": "allow", "reasons": ["read-workspace"]}]}
                "expect" is allow, deny or ask; "reasons" (optional) lists the deciding policy ids.
                Exits non-zero if any case fails.
                """)
        @Argument(help: "The cases file.")
        var file: String
        @Flag(help: "Print the results as JSON.")
        var json = false

        func run() throws {
            let outcome = try PolicyTestFile.run(path: file)
            if json {
                print(try Output.json(outcome))
            } else {
                for result in outcome.results {
                    print(
                        "\(result.passed ? "PASS" : "FAIL")  \(result.name)\(result.passed ? "" : ": \(result.message)")"
                    )
                }
                print("\(outcome.passed) passed, \(outcome.failed) failed")
            }
            if outcome.failed > 0 { throw ExitCode(1) }
        }
    }

    struct Conformance: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run Cedar integration tests (cedar-integration-tests format) and count every request.",
            discussion: """
                Each DIR is searched for test files (*.json naming policies, entities and requests). Paths \
                inside a test are resolved against the nearest directory above it that holds them. Prints \
                "N passed, M failed", lists failures, and exits non-zero on any failure.
                """)
        @Argument(help: "Directories or test files.")
        var paths: [String]
        @Option(help: "List at most this many failures.")
        var maxFailures = 50
        @Flag(help: "Print the result as JSON.")
        var json = false

        func validate() throws {
            if paths.isEmpty { throw ValidationError("name at least one directory of Cedar integration tests") }
        }

        func run() throws {
            let files = try ConformanceSuite.testFiles(under: paths)
            if files.isEmpty {
                throw WardenError(
                    code: .notFound, message: "no test files (*.json) under \(paths.joined(separator: ", "))")
            }
            let suite = ConformanceSuite()
            var outcome = ConformanceSuite.Outcome.empty
            let interactive = isatty(2) == 1
            for (i, file) in files.enumerated() {
                outcome.merge(suite.run(file: file))
                if interactive, i % 50 == 0 || i == files.count - 1 {
                    FileHandle.standardError.write(Data("\r\u{1B}[K\(i + 1)/\(files.count) files".utf8))
                }
            }
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            if json {
                print(try Output.json(outcome))
            } else {
                for failure in outcome.failures.prefix(maxFailures) {
                    print("FAIL \(failure.file) [\(failure.request)]: \(failure.message)")
                }
                if outcome.failures.count > maxFailures {
                    print("… \(outcome.failures.count - maxFailures) more failures")
                }
                print(
                    "\(outcome.passed) passed, \(outcome.failed) failed, \(outcome.skipped) skipped (\(outcome.files) files)"
                )
            }
            if outcome.failed > 0 { throw ExitCode(1) }
        }
    }
}
