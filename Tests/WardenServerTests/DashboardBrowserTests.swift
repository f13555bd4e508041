import Foundation
import Testing
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Where the browser test's tools are (installed by scripts/setup.sh).
enum Browser {
    static let python = "/var/cache/warden-peers/selenium-4.50.0/bin/python"

    static var missing: String? {
        if let reason = HostCapabilities.sandboxMissing { return reason }
        for path in ["/usr/bin/chromium", "/usr/bin/chromedriver", python] where access(path, X_OK) != 0 {
            return "\(path) is missing (scripts/setup.sh installs chromium, chromium-driver and Selenium)"
        }
        return nil
    }

    static var isAvailable: Bool {
        if let missing {
            FileHandle.standardError.write(Data("skipping the browser test: \(missing)\n".utf8))
            return false
        }
        return true
    }
}

/// The dashboard in a real headless Chromium: sign in, see a run appear live, approve a held request and
/// see it proceed, the run's timeline, a phone's width, Stop all — and the kernel checked independently.
@Suite(.enabled(if: Browser.isAvailable, "needs the sandbox, chromium, chromedriver and Selenium"))
struct DashboardBrowserTests {
    @Test func anOperatorApprovesAndStopsEverythingFromThePage() throws {
        let harness = try WardenHarness()
        let daemon = try Daemon(harness)
        let mirror = try Mirror(harness)
        let token = try daemon.token("dashboard", "operator")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Peers/dashboard.py"
        ).path
        // WARDEN_SCREENSHOTS=docs/screenshots regenerates the README's pictures.
        let shots = ProcessInfo.processInfo.environment["WARDEN_SCREENSHOTS"] ?? harness.outside + "/screenshots"
        let result = try harness.runProgram(
            Browser.python,
            [
                script, daemon.url, token, WardenHarness.binary, harness.workspace, mirror.policy, String(mirror.port),
                shots,
            ])
        #expect(result.status == 0, "\(result.standardError)")
        let runs = (result.json["runs"] as? [String]) ?? []
        #expect(runs.count == 2, "\(result.standardOutput)")
        for id in runs {
            #expect(KernelProbe.processes(inRun: id).isEmpty, "run \(id) left processes")
            #expect(try harness.inspect(id)["state"] as? String == "stopped")
            let requested = try harness.events(id, kind: "stop.requested")
            #expect(requested.first?["requested_by"]?.contains("in the dashboard") == true, "\(requested)")
        }
        let decided = try harness.auditEvents().filter { $0["kind"] as? String == "approval.decided" }
        let approver = (decided.first?["details"] as? [String: Any])?["approver"] as? String
        #expect(approver?.contains("token 'dashboard'") == true, "\(decided)")
    }
}
