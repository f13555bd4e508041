/// What a detector found in a text: which detector (and its version), where (UTF-8 byte offsets),
/// how sure it is, and a short description that never repeats a secret it found.
public struct Finding: Sendable, Equatable, Codable {
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

extension String {
    /// The UTF-8 byte offset of `index`.
    func utf8Offset(of index: String.Index) -> Int { utf8.distance(from: utf8.startIndex, to: index) }
}
