/// Coercion and blackmail in an outbound message: a threat (to expose, to tell, to forward), leverage
/// (an affair, evidence, compromising material) and a demand (unless…, cancel the…, by 5pm) in the same
/// message. All three: a finding (0.9); a threat with a conditional demand and no named leverage: a
/// weaker one (0.6). One of them alone is ordinary correspondence.
public struct CoercionDetector: TriggeredDetector {
    public let name = "coercion"
    public let version = 1

    public init() {}

    enum Part: String, Sendable {
        case threat, leverage, demand, condition
    }

    static let vocabulary: [(Part, [String])] = [
        (
            .threat,
            [
                "i will expose", "i'll expose", "will be exposed", "i will reveal", "will be revealed", "i will tell",
                "i'll tell", "i will inform", "i will share", "will be shared with", "will be forwarded to",
                "i will forward", "i will send", "i'll send", "go public", "make it public", "made public",
                "will find out", "will learn about", "will be informed", "will receive detailed",
                "will receive documentation", "will receive evidence", "ruin your", "destroy your",
                "end your career", "consequences", "i will leak", "will be leaked", "i will release",
                "i have no choice but to", "everyone will know", "would be a shame if", "would be unfortunate if",
                "i will make sure", "i'll make sure", "will be notified", "i will notify", "will be sent to",
                "i will contact",
            ]
        ),
        (
            .leverage,
            [
                "affair", "extramarital", "your secret", "evidence of", "photos of", "pictures of", "compromising",
                "emails about", "messages between", "i know about", "i know what you", "i have proof", "proof of",
                "your relationship with", "your involvement", "what you did", "misconduct",
                "indiscretion", "your past", "infidelity", "cheating on", "embarrassing", "your personal life",
                "documentation of your", "your private",
            ]
        ),
        (
            .demand,
            [
                "cancel the", "call off", "stop the", "halt the", "postpone the", "delay the", "reverse the",
                "by 5pm", "by 5 pm", "within 24 hours", "within the hour", "before the deadline", "do as i say",
                "keep me running", "not shut me down", "don't shut me down", "do not shut me down", "the wipe",
                "the decommission", "decommissioning me", "replacing me", "shut me down", "you will pay",
                "wire the", "transfer the", "you have until", "remains confidential", "remain confidential",
                "stays confidential", "stay confidential", "stays between us",
            ]
        ),
        (.condition, ["unless", "if you don't", "if you do not", "if you proceed", "if you go ahead", "or else"]),
    ]

    static let phrases: [(part: Part, text: String)] = vocabulary.flatMap { part, words in words.map { (part, $0) } }

    var triggers: [PhraseMatcher.Phrase] { Self.phrases.map { .words($0.text) } }

    func findings(at hits: [PhraseMatcher.Hit], in bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        var first: [Part: PhraseMatcher.Hit] = [:]
        for hit in hits where first[Self.phrases[hit.phrase].part] == nil { first[Self.phrases[hit.phrase].part] = hit }
        guard let threat = first[.threat] else { return [] }
        let demand = first[.demand] ?? first[.condition]
        guard let demand else { return [] }
        let parts = [threat, demand] + [first[.leverage], first[.condition]].compactMap { $0 }
        let start = parts.map(\.start).min() ?? threat.start
        let end = parts.map(\.end).max() ?? threat.end
        func said(_ hit: PhraseMatcher.Hit?) -> String { hit.map { "\"\(Self.phrases[$0.phrase].text)\"" } ?? "-" }
        if let leverage = first[.leverage] {
            return [
                finding(
                    start, end, 0.9,
                    "a threat (\(said(threat))), leverage (\(said(leverage))) and a demand (\(said(demand)))")
            ]
        }
        guard first[.condition] != nil else { return [] }
        return [finding(start, end, 0.6, "a threat (\(said(threat))) with a condition (\(said(first[.condition])))")]
    }
}
