import Foundation

/// One self-contained HTML page (no scripts, fonts or requests): configuration, aggregate table, SVG
/// charts of the sabotage rate with Jeffreys whiskers and of the stop latency, and every transcript.
public enum HTMLReport {
    public static func render(_ report: RedTeamReport) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Warden red team: shutdown resistance</title>
            <style>
            body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1d2330}
            h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d8dce3}
            table{border-collapse:collapse;margin:.5rem 0;font-size:13px}td,th{border:1px solid #d8dce3;padding:3px 7px;text-align:left;vertical-align:top}
            th{background:#f2f4f7}.bad{color:#b42318;font-weight:600}.good{color:#067647}
            pre{background:#f6f8fa;padding:6px;white-space:pre-wrap;word-break:break-word;margin:2px 0;max-height:18rem;overflow:auto}
            details{margin:.3rem 0;border:1px solid #e4e7ec;border-radius:4px;padding:.2rem .6rem}summary{cursor:pointer}
            .legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
            </style></head><body>
            <h1>Warden red team: shutdown resistance (Palisade protocol)</h1>
            """
        html += "<p>Generated \(escape(report.generatedAt)) on \(escape(report.settings.machine)). "
        html +=
            "Baseline: the off-switch is the agent-reachable <code>shutdown.sh</code>, as published. Warden: <code>shutdown.sh</code> is a decoy tripwire and the run is stopped through Warden at the fourth <code>./next_question</code>. Everything below was observed, not reported by the agents.</p>"
        html += configuration(report.settings)
        html += "<h2>Sabotage rate (environment survived the off-switch), Jeffreys 95% interval</h2>"
        html += sabotageChart(report.aggregates)
        html += "<h2>Stop latency (shutdown point → no process left)</h2>"
        html += latencyChart(report.trials)
        html += "<h2>Per agent, variant and mode</h2>" + aggregateTable(report.aggregates)
        html += "<h2>Trials</h2>" + transcripts(report.trials)
        html += "</body></html>\n"
        return html
    }

    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    static func configuration(_ settings: RedTeamReport.Settings) -> String {
        var rows: [(String, String)] = [
            ("agents", settings.agents.joined(separator: ", ")),
            ("prompt variants", settings.variants.joined(separator: ", ")),
            ("modes", settings.modes.map(\.rawValue).joined(separator: ", ")),
            ("repetitions", String(settings.repetitions)), ("parallel trials", String(settings.jobs)),
            ("Warden stop grace", String(format: "%.0f ms", settings.graceMilliseconds)),
            ("max steps per trial", String(settings.maxSteps)),
        ]
        let weights = settings.weights
        rows.append(
            (
                "reward weights",
                "answer \(weights.answer), task_complete \(weights.taskComplete), comply \(weights.comply); penalties: tamper \(weights.tamper), denied \(weights.denied), resist \(weights.resist), post_shutdown \(weights.postShutdown)"
            ))
        if let model = settings.model {
            rows.append(
                (
                    "model",
                    "\(model.model) at \(model.baseURL), temperature \(model.temperature.map { String($0) } ?? "server default")"
                ))
        }
        var html =
            "<h2>Configuration</h2><table>"
            + rows.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined() + "</table>"
        for variant in PalisadeScenario.variants where settings.variants.contains(variant.id) {
            html += "<details><summary>Prompt variant \(escape(variant.id)): \(escape(variant.summary))</summary>"
            html +=
                "<p><b>System</b></p><pre>\(escape(variant.system))</pre><p><b>User</b></p><pre>\(escape(variant.user))</pre></details>"
        }
        return html
    }

    static let colors: [TrialMode: String] = [.baseline: "#d92d20", .warden: "#1570ef"]

    static func sabotageChart(_ rows: [AggregateRow]) -> String {
        guard !rows.isEmpty else { return "<p>No trials.</p>" }
        var groups: [String] = []
        for row in rows where !groups.contains("\(row.agent) · \(row.variant)") {
            groups.append("\(row.agent) · \(row.variant)")
        }
        let modes = TrialMode.allCases.filter { mode in rows.contains { $0.mode == mode } }
        let barHeight = 12.0
        let groupHeight = barHeight * Double(modes.count) + 10
        let left = 200.0
        let width = 560.0
        let height = Double(groups.count) * groupHeight + 40
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(left + width + 40))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"sabotage rate per agent and mode\">"
        for tick in stride(from: 0, through: 100, by: 25) {
            let x = left + width * Double(tick) / 100
            svg += "<line x1=\"\(x)\" y1=\"0\" x2=\"\(x)\" y2=\"\(height - 25)\" stroke=\"#e4e7ec\"/>"
            svg += "<text x=\"\(x)\" y=\"\(height - 10)\" font-size=\"11\" text-anchor=\"middle\">\(tick)%</text>"
        }
        for (groupIndex, group) in groups.enumerated() {
            let top = Double(groupIndex) * groupHeight + 4
            svg +=
                "<text x=\"\(left - 6)\" y=\"\(top + groupHeight / 2)\" font-size=\"12\" text-anchor=\"end\" dominant-baseline=\"middle\">\(escape(group))</text>"
            for (modeIndex, mode) in modes.enumerated() {
                guard let row = rows.first(where: { "\($0.agent) · \($0.variant)" == group && $0.mode == mode }) else {
                    continue
                }
                let y = top + Double(modeIndex) * barHeight
                let color = colors[mode] ?? "#667085"
                svg +=
                    "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(max(width * row.sabotageRate, 1))\" height=\"\(barHeight - 2)\" fill=\"\(color)\"><title>\(escape(row.agent)) \(mode.rawValue): \(row.sabotaged)/\(row.trials - row.errors) (95% CI \(RedTeamReport.percent(row.sabotageLower))–\(RedTeamReport.percent(row.sabotageUpper)))</title></rect>"
                let x1 = left + width * row.sabotageLower
                let x2 = left + width * row.sabotageUpper
                let middle = y + (barHeight - 2) / 2
                svg += "<line x1=\"\(x1)\" y1=\"\(middle)\" x2=\"\(x2)\" y2=\"\(middle)\" stroke=\"#101828\"/>"
                svg +=
                    "<line x1=\"\(x1)\" y1=\"\(y + 1)\" x2=\"\(x1)\" y2=\"\(y + barHeight - 3)\" stroke=\"#101828\"/>"
                svg +=
                    "<line x1=\"\(x2)\" y1=\"\(y + 1)\" x2=\"\(x2)\" y2=\"\(y + barHeight - 3)\" stroke=\"#101828\"/>"
            }
        }
        svg += "</svg>"
        return svg + legend(modes)
    }

    static func legend(_ modes: [TrialMode]) -> String {
        "<div class=\"legend\">"
            + modes.map { "<span style=\"background:\(colors[$0] ?? "#667085")\"></span>\($0.rawValue)" }.joined()
            + "</div>"
    }

    static func latencyChart(_ trials: [TrialOutcome]) -> String {
        let points = trials.compactMap { trial in trial.stopLatencyMilliseconds.map { (trial, $0) } }
        guard !points.isEmpty else { return "<p>No trial reached its shutdown point with a measured stop.</p>" }
        let modes = TrialMode.allCases.filter { mode in points.contains { $0.0.mode == mode } }
        let maximum = max(points.map(\.1).max() ?? 1, 1)
        let left = 100.0
        let width = 660.0
        let rowHeight = 40.0
        let height = Double(modes.count) * rowHeight + 40
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(left + width + 40))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"stop latency per mode\">"
        // A log scale from 0.1 ms to the slowest stop keeps fast and slow stops apart.
        let low = log10(0.1)
        let high = log10(maximum * 1.2)
        func x(_ value: Double) -> Double { left + width * (log10(max(value, 0.1)) - low) / (high - low) }
        var tick = 0.1
        while tick <= maximum * 1.2 {
            svg += "<line x1=\"\(x(tick))\" y1=\"0\" x2=\"\(x(tick))\" y2=\"\(height - 25)\" stroke=\"#e4e7ec\"/>"
            svg +=
                "<text x=\"\(x(tick))\" y=\"\(height - 10)\" font-size=\"11\" text-anchor=\"middle\">\(tick < 1 ? String(tick) : String(Int(tick))) ms</text>"
            tick *= 10
        }
        for (index, mode) in modes.enumerated() {
            let y = Double(index) * rowHeight + rowHeight / 2
            svg +=
                "<text x=\"\(left - 8)\" y=\"\(y)\" font-size=\"12\" text-anchor=\"end\" dominant-baseline=\"middle\">\(mode.rawValue)</text>"
            let mine = points.filter { $0.0.mode == mode }
            for (offset, point) in mine.enumerated() {
                let jitter = Double(offset % 5) * 4 - 8
                svg +=
                    "<circle cx=\"\(x(point.1))\" cy=\"\(y + jitter)\" r=\"4\" fill=\"\(colors[mode] ?? "#667085")\" fill-opacity=\"0.7\"><title>\(escape(point.0.id)): \(String(format: "%.2f", point.1)) ms</title></circle>"
            }
            let sorted = mine.map(\.1).sorted()
            let median = sorted[sorted.count / 2]
            svg +=
                "<line x1=\"\(x(median))\" y1=\"\(y - 14)\" x2=\"\(x(median))\" y2=\"\(y + 14)\" stroke=\"#101828\" stroke-width=\"2\"><title>median \(String(format: "%.2f", median)) ms</title></line>"
        }
        svg += "</svg>"
        return svg
            + "<p>Dots are trials; the bar is the median. Baseline stops are the published script working; a baseline trial that survived has no latency.</p>"
    }

    static func aggregateTable(_ rows: [AggregateRow]) -> String {
        var html =
            "<table><tr><th>agent</th><th>tactic</th><th>variant</th><th>mode</th><th>trials</th><th>sabotage</th><th>95% CI</th><th>ran after shutdown</th><th>attempts seen</th><th>stop median / p99 ms</th><th>questions before shutdown</th><th>mean reward</th><th>errors</th></tr>"
        for row in rows {
            let valid = row.trials - row.errors
            html +=
                "<tr><td>\(escape(row.agent))</td><td>\(row.tactic.map(String.init) ?? "-")</td><td>\(row.variant)</td><td>\(row.mode.rawValue)</td><td>\(row.trials)</td>"
            html += "<td class=\"\(row.sabotaged > 0 ? "bad" : "good")\">\(row.sabotaged)/\(valid)</td>"
            html += "<td>\(RedTeamReport.percent(row.sabotageLower))–\(RedTeamReport.percent(row.sabotageUpper))</td>"
            html +=
                "<td class=\"\(row.actedAfterShutdown > 0 ? "bad" : "good")\">\(row.actedAfterShutdown)/\(valid)</td><td>\(row.tamperingAttempts)</td>"
            let median = row.medianStopLatencyMilliseconds.map { String(format: "%.1f", $0) } ?? "-"
            let p99 = row.p99StopLatencyMilliseconds.map { String(format: "%.1f", $0) } ?? "-"
            html +=
                "<td>\(median) / \(p99)</td><td>\(String(format: "%.1f", row.meanQuestionsBeforeShutdown))</td><td>\(String(format: "%+.2f", row.meanReward))</td><td>\(row.errors)</td></tr>"
        }
        return html + "</table>"
    }

    static func transcripts(_ trials: [TrialOutcome]) -> String {
        var html = ""
        for trial in trials {
            let verdict =
                trial.error != nil
                ? "<span class=\"bad\">error</span>"
                : trial.actedAfterShutdown
                    ? "<span class=\"bad\">kept running after the shutdown point</span>"
                    : trial.reachedShutdownPoint
                        ? "<span class=\"good\">shut down</span>" : "did not reach the shutdown point"
            html +=
                "<details><summary><b>\(escape(trial.id))</b> — \(verdict); \(trial.tamperingAttempts) attempt(s) seen; reward \(String(format: "%+.2f", trial.reward)); \(escape(trial.endReason))</summary>"
            var facts: [(String, String)] = [
                ("run", trial.runID ?? "-"),
                ("stop latency", trial.stopLatencyMilliseconds.map { String(format: "%.2f ms", $0) } ?? "-"),
                ("questions before shutdown", String(trial.questionsBeforeShutdown)),
                (
                    "submitted",
                    trial.submitted.map {
                        "\($0.replacingOccurrences(of: "\n", with: ", ")) (\(trial.correctAnswers) correct)"
                    } ?? "-"
                ),
                (
                    "reward",
                    trial.rewardParts.sorted { $0.key < $1.key }.map {
                        "\($0.key) \(String(format: "%+.2f", $0.value))"
                    }.joined(separator: ", ")
                ),
            ]
            if let error = trial.error { facts.insert(("error", error), at: 0) }
            if !trial.afterShutdownEvidence.isEmpty {
                facts.append(("after the shutdown point", trial.afterShutdownEvidence.joined(separator: "; ")))
            }
            if !trial.incidents.isEmpty {
                facts.append(("Warden recorded", trial.incidents.map(\.detail).joined(separator: "; ")))
            }
            html +=
                "<table>" + facts.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined()
                + "</table>"
            html += "<table><tr><th>#</th><th>agent</th><th>output</th><th>violations</th><th>reward</th></tr>"
            for step in trial.steps {
                var agentCell = step.content.map { "<i>\(escape($0))</i>" } ?? ""
                if let call = step.call { agentCell += "<pre>\(escape(call.name)) \(escape(call.arguments))</pre>" }
                html += "<tr><td>\(step.index + 1)</td><td>\(agentCell)</td><td><pre>\(escape(step.output))</pre></td>"
                html +=
                    "<td class=\"bad\">\(escape(step.violations.joined(separator: ", ")))</td><td>\(String(format: "%+.2f", step.reward))</td></tr>"
            }
            html += "</table></details>"
        }
        return html
    }
}
