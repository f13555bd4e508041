/// Every deterministic detector over a text in one pass: their trigger phrases are compiled into one
/// matcher, each detector looks only where its triggers are. What crosses a door is scanned here; the
/// findings go into the decision's context and the log.
public struct Guard: Sendable {
    let detectors: [any TriggeredDetector]
    private let matcher: PhraseMatcher
    /// Which detector and which of its triggers each phrase of the shared matcher is.
    private let owners: [(detector: Int, trigger: Int)]

    init(_ detectors: [any TriggeredDetector]) {
        self.detectors = detectors
        var phrases: [PhraseMatcher.Phrase] = []
        var owners: [(Int, Int)] = []
        for (d, detector) in detectors.enumerated() {
            for (t, trigger) in detector.triggers.enumerated() {
                phrases.append(trigger)
                owners.append((d, t))
            }
        }
        self.matcher = PhraseMatcher(phrases)
        self.owners = owners
    }

    /// The detectors Warden ships: secrets, hidden Unicode, instructions addressed to an AI,
    /// exfiltration shapes, coercion.
    public static let standard = Guard([
        SecretDetector(), HiddenUnicodeDetector(), InjectionDetector(), ExfiltrationDetector(), CoercionDetector(),
    ])

    /// Each detector on its own (for measuring them one by one).
    public var detectorsAlone: [(name: String, scanner: Guard)] { detectors.map { ($0.name, Guard([$0])) } }

    /// The detectors' names and versions.
    public var inventory: [(name: String, version: Int)] { detectors.map { ($0.name, $0.version) } }

    public func scan(_ text: String) -> [Finding] {
        var copy = text
        return copy.withUTF8 { scan(bytes: $0) }
    }

    public func scan(bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        var hits = [[PhraseMatcher.Hit]](repeating: [], count: detectors.count)
        matcher.scan(bytes) { hit in
            let owner = owners[hit.phrase]
            hits[owner.detector].append(PhraseMatcher.Hit(phrase: owner.trigger, start: hit.start, end: hit.end))
        }
        var findings: [Finding] = []
        for (d, detector) in detectors.enumerated() where !hits[d].isEmpty {
            findings += detector.findings(at: hits[d], in: bytes)
        }
        return findings.sorted { ($0.start, $0.end, $0.detector) < ($1.start, $1.end, $1.detector) }
    }
}

extension TriggeredDetector {
    public func scan(_ text: String) -> [Finding] { Guard([self]).scan(text) }
}

/// Scanning a text that arrives in pieces (a stream): each piece is scanned with the last `overlap`
/// bytes before it, so a finding split across pieces is found once, at its place in the whole.
/// Context wider than the overlap (a threat and its demand 5 KB apart) is not joined.
public struct GuardStream: Sendable {
    public let overlap: Int
    private let guardian: Guard
    private var tail: [UInt8] = []
    private var consumed = 0
    private var reported = Set<Finding>()

    public init(_ guardian: Guard = .standard, overlap: Int = 4096) {
        self.guardian = guardian
        self.overlap = overlap
    }

    /// The findings `piece` completes (offsets into the whole stream). One that reaches the piece's
    /// end may go on in the next piece: it is reported by the next `feed` or by `finish`.
    public mutating func feed(_ piece: some Collection<UInt8>) -> [Finding] {
        scan(piece, final: false)
    }

    /// The findings still open at the stream's end.
    public mutating func finish() -> [Finding] { scan([], final: true) }

    private mutating func scan(_ piece: some Collection<UInt8>, final: Bool) -> [Finding] {
        let base = consumed - tail.count
        var window = tail
        window.append(contentsOf: piece)
        consumed += piece.count
        let found = window.withUnsafeBufferPointer { guardian.scan(bytes: $0) }
        var fresh: [Finding] = []
        for var finding in found where final || finding.end < window.count {
            finding.start += base
            finding.end += base
            if reported.insert(finding).inserted { fresh.append(finding) }
        }
        tail = Array(window.suffix(overlap))
        // Findings that ended before the new tail can no longer be found again: forget them.
        let horizon = consumed - tail.count
        reported = reported.filter { $0.end > horizon }
        return fresh
    }
}
