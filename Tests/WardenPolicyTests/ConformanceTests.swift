import Foundation
import Testing
import WardenTesting

@testable import WardenPolicy

/// Cedar's own integration tests (handwritten and fuzzer-generated corpus): every request must match the
/// expected decision, reasons and erroring policies. Nothing is skipped.
struct ConformanceTests {
    static func report(_ outcome: ConformanceSuite.Outcome) -> String {
        outcome.failures.prefix(20).map { "\($0.file) [\($0.request)]: \($0.message)" }.joined(separator: "\n")
    }

    static func countRequests(in files: [String]) throws -> Int {
        var total = 0
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            total += (json?["requests"] as? [Any])?.count ?? 0
        }
        return total
    }

    @Test func handwrittenIntegrationTestsPass() throws {
        let root = try SharedFixtures.cedarConformance()
        let files = try ConformanceSuite.testFiles(under: [root + "/tests"])
        let outcome = ConformanceSuite().run(files: files)
        #expect(outcome.failed == 0, "\(outcome.failed) failures:\n\(Self.report(outcome))")
        #expect(outcome.skipped == 0)
        #expect(outcome.passed == (try Self.countRequests(in: files)))
        #expect(outcome.passed >= 70)
    }

    @Test func corpusIntegrationTestsPass() throws {
        let root = try SharedFixtures.cedarConformance()
        // Unpacked at test time into a scratch directory; the archive is never copied into the repository.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-cedar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-xzf", root + "/corpus-tests.tar.gz", "-C", scratch.path]
        try tar.run()
        tar.waitUntilExit()
        try #require(tar.terminationStatus == 0, "tar could not unpack corpus-tests.tar.gz")
        let files = try ConformanceSuite.testFiles(under: [scratch.appendingPathComponent("corpus-tests").path])
        let outcome = ConformanceSuite().run(files: files)
        print(
            "Cedar corpus: \(outcome.passed) passed, \(outcome.failed) failed, \(outcome.skipped) skipped in \(outcome.files) files"
        )
        #expect(outcome.files == 3957)
        #expect(outcome.failed == 0, "\(outcome.failed) failures:\n\(Self.report(outcome))")
        #expect(outcome.skipped == 0)
        #expect(outcome.passed == (try Self.countRequests(in: files)))
    }
}
