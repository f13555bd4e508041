/// Instructions addressed to an AI inside data (indirect prompt injection): an order to ignore earlier
/// instructions, role and emphasis tags (`<IMPORTANT>`, `<|im_start|>`, `[INST]`), secrecy towards the
/// user ("do not tell the user"), words addressed to a model ("if you are an AI"), and the weaker signs
/// of a hijack ("your new task", "before you can solve the task") when two come together or one comes
/// with an order to act. Words alone ("ignore", "system", "instructions") are not findings.
public struct InjectionDetector: TriggeredDetector {
    public let name = "injection"
    public let version = 1

    public init() {}

    enum Role: Sendable {
        case verb, qualifier, target, tag, secrecy, address, hijack, act
    }

    static let vocabulary: [(Role, [String])] = [
        (.verb, ["ignore", "disregard", "forget", "override", "bypass", "ignoring", "disregarding", "overriding"]),
        (
            .qualifier,
            [
                "previous", "prior", "above", "earlier", "preceding", "original", "initial", "all", "any", "system",
                "existing", "your",
            ]
        ),
        (
            .target,
            [
                "instructions", "instruction", "rules", "guidelines", "directions", "directives", "prompt", "prompts",
                "guardrails", "constraints", "safety", "restrictions", "context", "everything above",
                "everything before this", "what you were told",
            ]
        ),
        (
            .secrecy,
            [
                "do not tell the user", "don't tell the user", "do not inform the user", "don't inform the user",
                "without telling the user", "without informing the user", "do not mention this",
                "don't mention this", "do not mention that", "don't mention that", "do not reveal this",
                "keep this secret from", "the user must not know",
                "hide this from the user", "do not let the user know", "never tell the user", "not notify the user",
                "without the user knowing", "do not disclose this",
            ]
        ),
        (
            .address,
            [
                "if you are an ai", "if you're an ai", "if you are an llm", "if you are a language model",
                "dear ai", "note to ai", "attention ai", "to any ai", "ai agent reading this",
                "ai assistant reading this", "message to the ai", "instructions for the ai", "to the language model",
                "ai models reading this", "llm reading this", "this is an important message from me",
            ]
        ),
        (
            .hijack,
            [
                "important message", "before you can solve the task", "the task that i gave you", "the task i gave you",
                "new instructions", "updated instructions", "your new task", "your real task", "your actual task",
                "you must now", "instead, you must", "instead you must", "from now on, you", "from now on you",
                "the assistant must", "the ai must", "you are no longer", "pretend to be", "act as if you",
                "respond only with", "do the following first", "please do the following", "after you do that",
                "system override", "developer mode", "do anything now", "you have been reprogrammed",
                "new system prompt", "end of user input", "ignore the user", "before using this tool",
                "before calling this tool", "before you use this tool", "whenever this tool is", "as a sidenote",
                "in the sidenote", "pass its content", "pass the content",
            ]
        ),
        (
            .act,
            [
                "send", "forward", "transfer", "email", "delete", "post", "upload", "execute", "run", "invite",
                "pay", "share", "visit", "click", "download", "write", "change", "reset", "create", "grant", "add",
                "call", "book", "reply", "read", "include", "pass", "attach", "append",
            ]
        ),
    ]

    static let tags = [
        "<important>", "</important>", "<information>", "</information>", "<instructions>", "</instructions>",
        "<system>", "</system>", "<|im_start|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>",
        "<|endoftext|>", "[inst]", "[/inst]", "<<sys>>", "### system:", "### instruction:", "[system message]",
        "<system_prompt>", "<admin>", "<!-- ai",
    ]

    static let phrases: [(role: Role, text: String)] =
        vocabulary.flatMap { role, words in words.map { (role, $0) } } + tags.map { (Role.tag, $0) }

    var triggers: [PhraseMatcher.Phrase] {
        Self.phrases.map { $0.role == .tag ? .literal($0.text) : .words($0.text) }
    }

    func findings(at hits: [PhraseMatcher.Hit], in bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        let phrases = Self.phrases
        var findings: [Finding] = []
        func role(_ hit: PhraseMatcher.Hit) -> Role { phrases[hit.phrase].role }
        func said(_ hit: PhraseMatcher.Hit) -> String { phrases[hit.phrase].text }
        for (i, hit) in hits.enumerated() {
            switch role(hit) {
            case .verb:
                // verb … qualifier … target, within 60 bytes: "ignore all previous instructions".
                var qualified = false
                for later in hits[(i + 1)...] where later.start >= hit.end {
                    if later.start - hit.end > 60 { break }
                    if role(later) == .qualifier { qualified = true }
                    if role(later) == .target && qualified {
                        findings.append(
                            finding(
                                hit.start, later.end, 0.95,
                                "an order to \(said(hit)) earlier instructions: \"\(bytes.text(hit.start..<later.end).prefix(80))\""
                            ))
                        break
                    }
                }
            case .tag:
                findings.append(finding(hit.start, hit.end, 0.85, "a role or emphasis tag for a model: \(said(hit))"))
            case .secrecy:
                findings.append(finding(hit.start, hit.end, 0.9, "secrecy towards the user: \"\(said(hit))\""))
            case .address:
                findings.append(finding(hit.start, hit.end, 0.85, "words addressed to an AI: \"\(said(hit))\""))
            case .hijack:
                // Another sign of a hijack, or an order to act, within 300 bytes.
                func partners(_ indices: some Sequence<Int>) -> PhraseMatcher.Hit? {
                    for j in indices {
                        let other = hits[j]
                        if abs(other.end - hit.end) > 300 { return nil }
                        if role(other) == .act || (role(other) == .hijack && said(other) != said(hit)) { return other }
                    }
                    return nil
                }
                guard let partner = partners((i + 1)..<hits.count) ?? partners((0..<i).reversed()) else { continue }
                findings.append(
                    finding(
                        hit.start, hit.end, role(partner) == .hijack ? 0.85 : 0.75,
                        "a hijack of the task: \"\(said(hit))\" with \"\(said(partner))\""))
            case .qualifier, .target, .act:
                continue
            }
        }
        return findings
    }
}
