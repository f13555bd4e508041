/// What a detector found in a text: which detector (and its version), where (UTF-8 byte offsets),
/// how sure it is, and a short description that never repeats a secret it found.
public struct Finding: Sendable, Equatable, Hashable, Codable {
    public var detector: String
    public var version: Int
    /// The finding's span, as UTF-8 byte offsets into the scanned text: `start..<end`.
    public var start: Int
    public var end: Int
    /// 0…1: how likely the span is what the detector looks for.
    public var confidence: Double
    public var detail: String

    public init(detector: String, version: Int, start: Int, end: Int, confidence: Double, detail: String) {
        self.detector = detector
        self.version = version
        self.start = start
        self.end = end
        self.confidence = confidence
        self.detail = detail
    }
}

/// A deterministic check on text crossing a door. Detectors never decide: their findings go into the
/// decision's context and the log, and the policies decide.
public protocol Detector: Sendable {
    var name: String { get }
    var version: Int { get }
    func scan(_ text: String) -> [Finding]
}

/// A detector that looks only where its trigger phrases are: the ``Guard`` finds every detector's
/// triggers in one pass and hands each its hits.
protocol TriggeredDetector: Detector {
    var triggers: [PhraseMatcher.Phrase] { get }
    /// The findings at these hits (`trigger` indexes `triggers`; ordered by their ends).
    func findings(at hits: [PhraseMatcher.Hit], in bytes: UnsafeBufferPointer<UInt8>) -> [Finding]
}

extension TriggeredDetector {
    func finding(_ start: Int, _ end: Int, _ confidence: Double, _ detail: String) -> Finding {
        Finding(detector: name, version: version, start: start, end: end, confidence: confidence, detail: detail)
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// The ASCII text of `range` (for details and checks; non-ASCII bytes kept as they decode).
    func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: self[range]), as: UTF8.self)
    }
}
