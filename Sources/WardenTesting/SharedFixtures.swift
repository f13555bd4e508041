import Foundation

/// The read-only project fixtures beside the repository (`../shared`): Cedar's integration tests, the
/// published scenarios. Tests read them in place and never copy them into the repository.
public enum SharedFixtures {
    /// `$WARDEN_SHARED_DIR`, else the first `shared/` directory beside the repository or above it.
    public static var directory: String? {
        if let explicit = ProcessInfo.processInfo.environment["WARDEN_SHARED_DIR"] { return explicit }
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = url.deletingLastPathComponent().appendingPathComponent("shared")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("conformance").path) {
                return candidate.path
            }
            url = url.deletingLastPathComponent()
        }
        return FileManager.default.fileExists(atPath: "/work/shared/conformance") ? "/work/shared" : nil
    }

    /// The Cedar integration tests, or a failure message naming how to provide them.
    public static func cedarConformance() throws -> String {
        guard let directory else {
            throw FixtureMissing(
                "the shared fixtures (shared/conformance/cedar) are not beside the repository; set WARDEN_SHARED_DIR")
        }
        return directory + "/conformance/cedar"
    }

    public struct FixtureMissing: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
