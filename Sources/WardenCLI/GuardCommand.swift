import ArgumentParser
import Foundation
import WardenCore
import WardenGuard

/// `warden guard`: the validation layer on its own, for operators tuning what the doors will see.
struct GuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guard",
        abstract: "The validation layer: Warden's detectors on a text, as the doors run them.",
        discussion: """
            The doors scan what crosses them with these detectors; findings go into each decision's \
            context (context.findings) and the log, and the policies decide. Use `warden guard check` to \
            see what a text would raise before writing a policy on it.
            """,
        subcommands: [Check.self, Detectors.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run every detector on one text (a file, or standard input) and print the findings.",
            discussion: """
                Exit status: 0 when nothing was found, 1 when something was, 2 for bad input.
                Findings name the detector and its version, the span (UTF-8 byte offsets and the line), \
                the confidence (0–1) and what was seen; a secret is described, never repeated.

                Examples:
                  warden guard check tool-output.txt
                  curl -s https://example.org/page | warden guard check --json
                  warden guard check --min-confidence 0.8 - < message.txt
                """)

        @Argument(help: "The text's file, or '-' (the default) for standard input.")
        var file: String = "-"

        @Option(help: "Report only findings at least this confident (0–1).")
        var minConfidence: Double = 0

        @Flag(help: "One JSON object: the findings and a summary per detector.")
        var json = false

        @Flag(help: "Skip the classifier (the MiniLM encoder and the injection head): detectors only.")
        var noClassifier = false

        mutating func validate() throws {
            guard (0...1).contains(minConfidence) else {
                throw ValidationError("--min-confidence: give a number from 0 to 1, e.g. 0.8")
            }
        }

        func run() throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else {
                    throw WardenError.invalidInput("cannot read \(file): no such file, or not readable")
                }
                data = contents
            }
            let bytes = [UInt8](data)
            var findings = bytes.withUnsafeBufferPointer { Guard.standard.scan(bytes: $0) }
            // The classifier: its score is shown whatever it is; a score at its threshold is a finding.
            var classifier: (score: Double, windows: Int)?
            var unavailable: String?
            if !noClassifier {
                do {
                    let model = try InjectionClassifier()
                    let text = String(decoding: bytes, as: UTF8.self)
                    let result = model.score(text)
                    classifier = (result.score, result.windows)
                    findings += model.findings(result, bytes: bytes.count)
                } catch {
                    unavailable = (error as? WardenError)?.message ?? "\(error)"
                }
            }
            findings = findings.filter { $0.confidence >= minConfidence }
            if json {
                struct Report: Encodable {
                    var bytes: Int
                    var detectors: [String: Int]
                    var findings: [Shown]
                    var classifier: Score?
                }
                struct Score: Encodable {
                    var score: Double?
                    var windows: Int?
                    var threshold: Double
                    var unavailable: String?
                }
                struct Shown: Encodable {
                    var detector: String
                    var version: Int
                    var start: Int
                    var end: Int
                    var line: Int
                    var confidence: Double
                    var detail: String
                }
                let shown = findings.map {
                    Shown(
                        detector: $0.detector, version: $0.version, start: $0.start, end: $0.end,
                        line: Self.line(of: $0.start, in: bytes), confidence: $0.confidence, detail: $0.detail)
                }
                var versions: [String: Int] = [:]
                for (name, version) in Guard.standard.inventory { versions[name] = version }
                versions[InjectionClassifier.name] = InjectionClassifier.version
                let score =
                    noClassifier
                    ? nil
                    : Score(
                        score: classifier?.score, windows: classifier?.windows, threshold: 0.5, unavailable: unavailable
                    )
                print(
                    try Output.json(Report(bytes: bytes.count, detectors: versions, findings: shown, classifier: score))
                )
            } else if findings.isEmpty {
                print("clean: no detector found anything in \(bytes.count) bytes")
            }
            if !json, let classifier {
                print(
                    "classifier v\(InjectionClassifier.version): score \(String(format: "%.3f", classifier.score)) "
                        + "(threshold 0.5) over \(classifier.windows) window\(classifier.windows == 1 ? "" : "s") of 128 tokens"
                )
            } else if !json, let unavailable {
                print("classifier: not run: \(unavailable)")
            }
            if !json && !findings.isEmpty {
                for finding in findings {
                    let confidence = String(format: "%.2f", finding.confidence)
                    print(
                        "\(finding.detector) v\(finding.version)  line \(Self.line(of: finding.start, in: bytes))  "
                            + "bytes \(finding.start)..<\(finding.end)  \(confidence)  \(finding.detail)")
                }
                let detectors = Set(findings.map(\.detector)).sorted().joined(separator: ", ")
                print(
                    "\(findings.count) finding\(findings.count == 1 ? "" : "s") (\(detectors)) in \(bytes.count) bytes")
            }
            if !findings.isEmpty { throw ExitCode(1) }
        }

        static func line(of offset: Int, in bytes: [UInt8]) -> Int {
            1 + bytes[..<min(offset, bytes.count)].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        }
    }

    struct Detectors: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the detectors and their versions.")

        @Flag(help: "As JSON.")
        var json = false

        func run() throws {
            let inventory = Guard.standard.inventory
            if json {
                print(try Output.json(inventory.map { ["name": $0.name, "version": String($0.version)] }))
            } else {
                for (name, version) in inventory { print("\(name) v\(version)") }
            }
        }
    }
}
