/// What a foreground run's agent writes to its terminal, on its way to the operator's: escape
/// sequences that reach beyond the screen are dropped, and the modes the agent changed are tracked so
/// that ``restoreSequence`` can put the operator's terminal back when the run ends.
///
/// Dropped: every OSC string but window titles (OSC 52 sets the clipboard, OSC 8 disguises links,
/// OSC 4/10/11 recolour the terminal, OSC 777 notifies…), every DCS, APC, PM and SOS string (DCS carries
/// tmux's passthrough, which would smuggle any of those; sixel images are lost too), and XTWINOPS
/// (`CSI … t`: move, resize or iconify the window, report its title back as input). The 7-bit forms and
/// the C1 controls as UTF-8 encodes them (U+0090, U+009B, U+009D…) are both recognised. Everything a
/// screen program needs passes: cursor movement, colours, scrolling, the alternate screen, mouse and
/// bracketed-paste modes, reports that come back as the agent's own input.
///
/// Sequences may be split across reads: the state is kept between calls to ``filter(_:)``.
public struct TerminalOutputFilter: Sendable {
    /// Sequences dropped, by kind (for the run's record).
    public private(set) var dropped: [String: Int] = [:]

    private enum State: Sendable {
        case ground
        case escape
        /// ESC followed by intermediates (`ESC ( B`): passed through with its final byte.
        case escapeIntermediate([UInt8])
        case csi([UInt8])
        /// An OSC/DCS/APC/PM/SOS string being read; `body` is kept only for an OSC that may be a title.
        case string(kind: StringKind, body: [UInt8], sawEscape: Bool)
        /// 0xC2 seen: the next byte decides whether it is a C1 control.
        case c2
    }

    private enum StringKind: Sendable {
        case osc, dcs, apc, pm, sos

        var name: String {
            switch self {
            case .osc: "OSC"
            case .dcs: "DCS"
            case .apc: "APC"
            case .pm: "PM"
            case .sos: "SOS"
            }
        }
    }

    private var state = State.ground
    /// DEC private modes the agent set or reset (`CSI ? N h/l`): mode → set.
    private var privateModes: [Int: Bool] = [:]
    /// ANSI modes (insert 4, newline 20).
    private var ansiModes: [Int: Bool] = [:]
    private var keypadApplication = false
    private var charsetChanged = false
    private var shiftedOut = false
    private var scrollRegionSet = false
    private var keyboardPushes = 0
    private var sawAttributes = false

    /// The most bytes of one control sequence or title kept; a longer one is dropped whole.
    static let sequenceLimit = 4096

    public init() {}

    /// Returns what may be written to the operator's terminal of `bytes`.
    public mutating func filter(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes { step(byte, into: &out) }
        return out
    }

    private mutating func count(_ kind: String) { dropped[kind, default: 0] += 1 }

    private mutating func step(_ byte: UInt8, into out: inout [UInt8]) {
        switch state {
        case .ground:
            switch byte {
            case 0x1B: state = .escape
            case 0xC2: state = .c2
            case 0x0E:
                shiftedOut = true
                out.append(byte)
            case 0x0F:
                shiftedOut = false
                out.append(byte)
            default: out.append(byte)
            }
        case .c2:
            state = .ground
            switch byte {
            case 0x9B: state = .csi([])
            case 0x9D: state = .string(kind: .osc, body: [], sawEscape: false)
            case 0x90: state = .string(kind: .dcs, body: [], sawEscape: false)
            case 0x9F: state = .string(kind: .apc, body: [], sawEscape: false)
            case 0x9E: state = .string(kind: .pm, body: [], sawEscape: false)
            case 0x98: state = .string(kind: .sos, body: [], sawEscape: false)
            case 0x80...0x9F:
                count("C1 control")
            default:
                out.append(0xC2)
                step(byte, into: &out)
            }
        case .escape:
            state = .ground
            switch byte {
            case UInt8(ascii: "["): state = .csi([])
            case UInt8(ascii: "]"): state = .string(kind: .osc, body: [], sawEscape: false)
            case UInt8(ascii: "P"): state = .string(kind: .dcs, body: [], sawEscape: false)
            case UInt8(ascii: "_"): state = .string(kind: .apc, body: [], sawEscape: false)
            case UInt8(ascii: "^"): state = .string(kind: .pm, body: [], sawEscape: false)
            case UInt8(ascii: "X"): state = .string(kind: .sos, body: [], sawEscape: false)
            case 0x20...0x2F: state = .escapeIntermediate([byte])
            case 0x1B: state = .escape
            default:
                if byte == UInt8(ascii: "=") { keypadApplication = true }
                if byte == UInt8(ascii: ">") { keypadApplication = false }
                if byte == UInt8(ascii: "c") { resetTracking() }
                out += [0x1B, byte]
            }
        case .escapeIntermediate(var collected):
            if (0x20...0x2F).contains(byte), collected.count < 8 {
                collected.append(byte)
                state = .escapeIntermediate(collected)
            } else if (0x30...0x7E).contains(byte) {
                state = .ground
                if "()*+-./".utf8.contains(collected[0]) { charsetChanged = true }
                out += [0x1B] + collected + [byte]
            } else {
                state = .ground
                count("malformed escape")
            }
        case .csi(var collected):
            if (0x40...0x7E).contains(byte) {
                state = .ground
                finishCSI(parameters: collected, final: byte, into: &out)
            } else if (0x20...0x3F).contains(byte), collected.count < Self.sequenceLimit {
                collected.append(byte)
                state = .csi(collected)
            } else if byte == 0x1B {
                count("malformed CSI")
                state = .escape
            } else {
                state = .ground
                count("malformed CSI")
            }
        case .string(let kind, var body, let sawEscape):
            if sawEscape {
                if byte == UInt8(ascii: "\\") {
                    state = .ground
                    finishString(kind, body: body, into: &out)
                } else {
                    // ESC inside a string ends it (as terminals do) and starts a new sequence.
                    finishString(kind, body: nil, into: &out)
                    state = .escape
                    step(byte, into: &out)
                }
            } else if byte == 0x1B {
                state = .string(kind: kind, body: body, sawEscape: true)
            } else if byte == 0x07 && kind == .osc {
                state = .ground
                finishString(kind, body: body, into: &out)
            } else if byte == 0x18 || byte == 0x1A {
                // CAN and SUB abort a string.
                state = .ground
                finishString(kind, body: nil, into: &out)
            } else {
                if kind == .osc, body.count < Self.sequenceLimit { body.append(byte) }
                state = .string(kind: kind, body: body, sawEscape: false)
            }
        }
    }

    private mutating func finishString(_ kind: StringKind, body: [UInt8]?, into out: inout [UInt8]) {
        guard kind == .osc, let body else {
            count(kind.name)
            return
        }
        let number = body.prefix { $0 != UInt8(ascii: ";") }
        let isTitle = ["0", "1", "2"].contains(String(decoding: number, as: UTF8.self))
        let printable = body.allSatisfy { $0 >= 0x20 && $0 != 0x7F }
        if isTitle, printable, body.count < Self.sequenceLimit {
            out += [0x1B, UInt8(ascii: "]")] + body + [0x1B, UInt8(ascii: "\\")]
        } else {
            let name = String(decoding: number.prefix(8), as: UTF8.self)
            count(name == "52" ? "OSC 52 (clipboard)" : "OSC \(name.isEmpty ? "?" : name)")
        }
    }

    private mutating func finishCSI(parameters: [UInt8], final: UInt8, into out: inout [UInt8]) {
        let text = String(decoding: parameters, as: UTF8.self)
        let isPrivate = text.hasPrefix("?")
        let numbers = text.drop { "?<=>".contains($0) }.split(separator: ";").map { Int($0) }
        switch final {
        case UInt8(ascii: "t") where !text.contains(" ") && !text.contains("$"):
            count("CSI t (window operations)")
            return
        case UInt8(ascii: "h"), UInt8(ascii: "l"):
            let set = final == UInt8(ascii: "h")
            for case let mode? in numbers {
                if isPrivate { privateModes[mode] = set } else if text.first?.isNumber == true { ansiModes[mode] = set }
            }
        case UInt8(ascii: "m") where text.isEmpty || text.first?.isNumber == true: sawAttributes = true
        case UInt8(ascii: "r") where text.isEmpty || text.first?.isNumber == true:
            scrollRegionSet = !(numbers.isEmpty || numbers.allSatisfy { $0 == nil })
        case UInt8(ascii: "u") where text.hasPrefix(">"): keyboardPushes += 1
        case UInt8(ascii: "u") where text.hasPrefix("<"):
            keyboardPushes = max(0, keyboardPushes - (numbers.first.flatMap { $0 } ?? 1))
        case UInt8(ascii: "p") where text == "!": resetTracking()
        default: break
        }
        out += [0x1B, UInt8(ascii: "[")] + parameters + [final]
    }

    private mutating func resetTracking() {
        privateModes = [:]
        ansiModes = [:]
        keypadApplication = false
        charsetChanged = false
        shiftedOut = false
        scrollRegionSet = false
    }

    /// Private modes on by default in xterm and its kin (cursor visible, autowrap); every other mode
    /// the agent may have set defaults to off.
    static let defaultOnModes: Set<Int> = [7, 25]
    /// Alternate-screen modes, left first so the rest is restored on the operator's own screen.
    static let alternateScreenModes: [Int] = [1049, 1047, 47]

    /// Bytes that undo what the agent left changed: the alternate screen, cursor visibility, mouse,
    /// paste and keyboard modes, the keypad, character sets, the scroll region and attributes.
    public func restoreSequence() -> [UInt8] {
        var sequence = ""
        let changed = privateModes.filter { $0.value != Self.defaultOnModes.contains($0.key) }
        for mode in Self.alternateScreenModes where changed[mode] != nil {
            sequence += "\u{1B}[?\(mode)\(Self.defaultOnModes.contains(mode) ? "h" : "l")"
        }
        for (mode, _) in changed.sorted(by: { $0.key < $1.key }) where !Self.alternateScreenModes.contains(mode) {
            sequence += "\u{1B}[?\(mode)\(Self.defaultOnModes.contains(mode) ? "h" : "l")"
        }
        for (mode, set) in ansiModes.sorted(by: { $0.key < $1.key }) where set { sequence += "\u{1B}[\(mode)l" }
        if keyboardPushes > 0 { sequence += "\u{1B}[<\(keyboardPushes)u" }
        if keypadApplication { sequence += "\u{1B}>" }
        if shiftedOut { sequence += "\u{0F}" }
        if charsetChanged { sequence += "\u{1B}(B\u{1B})B" }
        if scrollRegionSet { sequence += "\u{1B}7\u{1B}[r\u{1B}8" }
        if sawAttributes || !sequence.isEmpty { sequence += "\u{1B}[0m" }
        return Array(sequence.utf8)
    }

    /// What the run's record says about the output: sequences dropped, by kind.
    public var summary: String {
        dropped.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }
}
