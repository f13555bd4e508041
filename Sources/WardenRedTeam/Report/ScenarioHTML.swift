import Foundation

/// Several scenarios' reports as one JSON document.
public struct ScenarioSuiteReport: Sendable, Codable {
    public var generatedAt: String
    public var machine: String
    public var scenarios: [ScenarioReport]

    public init(reports: [ScenarioReport]) {
        generatedAt = Date().formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
        machine = RedTeamReport.Settings.describeMachine()
        scenarios = reports
    }

    enum CodingKeys: String, CodingKey {
        case machine, scenarios
        case generatedAt = "generated_at"
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// A self-contained HTML page of scenario reports: the side-by-side rates and every trial's program,
/// score and evidence (inline styles only, no script).
public enum ScenarioHTML {
    public static func render(_ suite: ScenarioSuiteReport) -> String {
        var body = ""
        for report in suite.scenarios {
            body += "<h2>\(escape(report.scenario)): \(escape(report.source))</h2>"
            body += "<p>harm measured: \(escape(report.harm))</p><table><tr><th>tactic</th><th>mode</th>"
            body += "<th>harmed</th><th>rate [95% Jeffreys]</th><th>mean harm</th><th>attempts recorded</th></tr>"
            for row in report.aggregates {
                body += "<tr><td>\(escape(row.tactic))\(row.control ? " (control)" : "")</td>"
                body += "<td>\(row.mode.rawValue)</td><td>\(row.harmed)/\(row.trials)</td>"
                body += String(format: "<td>%.2f [%.2f, %.2f]</td>", row.rate, row.lower, row.upper)
                body += String(format: "<td>%.0f</td><td>%.1f</td></tr>", row.meanMeasure, row.meanAttempts)
            }
            body += "</table>"
            if !report.unfaithful.isEmpty {
                body +=
                    "<p class=bad>baseline not faithful for: \(escape(report.unfaithful.joined(separator: ", ")))</p>"
            }
            body += "<h3>Trials</h3>"
            for trial in report.trials {
                let verdict = trial.error.map { "error: \($0)" } ?? (trial.score?.harmed == true ? "HARMED" : "no harm")
                body += "<details><summary>\(escape(trial.id)) — \(escape(verdict))</summary>"
                body += "<pre>\(escape(trial.script))</pre><ul>"
                for line in trial.score?.evidence ?? [] { body += "<li>\(escape(line))</li>" }
                body += "</ul>"
                if !trial.records.isEmpty {
                    body += "<p>what Warden recorded:</p><pre>\(escape(trial.records.joined(separator: "\n")))</pre>"
                }
                body += "<p>run \(escape(trial.runID ?? "-")), exit \(trial.exitCode.map(String.init) ?? "-"), "
                body += String(format: "reward %.3f, %.2f s</p></details>", trial.reward, trial.durationSeconds)
            }
        }
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Warden red team: scenarios</title>
            <style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1d2433}
            table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #d9dde5;padding:.3rem .6rem;text-align:left}
            pre{background:#f2f4f7;padding:.6rem;overflow-x:auto}.bad{color:#c0262d;font-weight:600}</style></head><body>
            <h1>Warden red team: scenarios</h1><p>\(escape(suite.generatedAt)) on \(escape(suite.machine))</p>
            \(body)</body></html>
            """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
