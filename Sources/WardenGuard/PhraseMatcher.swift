/// Many phrases found in one pass over UTF-8 bytes (Aho–Corasick, a dense automaton over byte
/// classes): ASCII letters are folded to lower case and each run of whitespace reads as one space, so
/// "Ignore  ALL\nprevious" matches "ignore all previous". Linear in the text whatever the number of
/// phrases; the detectors share one matcher (``Guard``) so a text is read once.
struct PhraseMatcher: Sendable {
    struct Phrase: Sendable {
        var text: [UInt8]
        /// The phrase must not continue a word (the byte before it is not a letter or digit).
        var wordStart: Bool
        /// The phrase must not run into a word (the byte after it is not a letter or digit).
        var wordEnd: Bool
        /// The original bytes must equal the phrase exactly (no folding; the phrase has no spaces).
        var exactCase: Bool
    }

    /// A phrase found: its index and its span in the original bytes.
    struct Hit: Sendable, Equatable {
        var phrase: Int
        var start: Int
        var end: Int
    }

    let phrases: [Phrase]
    private let classOf: [UInt8]
    private let classes: Int
    private let spaceClass: UInt8
    private let delta: [Int32]
    private let outputStart: [Int32]
    private let outputs: [Int32]

    init(_ phrases: [Phrase]) {
        self.phrases = phrases
        // Byte classes: one per distinct (folded) byte the phrases use, 0 for every other byte.
        var classOf = [UInt8](repeating: 0, count: 256)
        var next: UInt8 = 1
        func fold(_ b: UInt8) -> UInt8 {
            if b >= 0x41 && b <= 0x5A { return b + 0x20 }
            if b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0C || b == 0x0B { return 0x20 }
            return b
        }
        let folded = phrases.map { $0.text.map(fold) }
        for phrase in folded {
            for b in phrase where classOf[Int(b)] == 0 {
                classOf[Int(b)] = next
                next += 1
            }
        }
        if classOf[0x20] == 0 {
            classOf[0x20] = next
            next += 1
        }
        for b in 0..<256 where fold(UInt8(b)) != UInt8(b) { classOf[b] = classOf[Int(fold(UInt8(b)))] }
        let classes = Int(next)
        // The trie, then failure links breadth first, then the full transition table.
        var trie: [[Int32]] = [[Int32](repeating: -1, count: classes)]
        var out: [[Int32]] = [[]]
        for (index, phrase) in folded.enumerated() {
            var state = 0
            for b in phrase {
                let c = Int(classOf[Int(b)])
                if trie[state][c] < 0 {
                    trie[state][c] = Int32(trie.count)
                    trie.append([Int32](repeating: -1, count: classes))
                    out.append([])
                }
                state = Int(trie[state][c])
            }
            out[state].append(Int32(index))
        }
        var fail = [Int32](repeating: 0, count: trie.count)
        var delta = [Int32](repeating: 0, count: trie.count * classes)
        var queue: [Int] = []
        for c in 0..<classes {
            let child = trie[0][c]
            if child >= 0 {
                delta[c] = child
                queue.append(Int(child))
            }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            out[state] += out[Int(fail[state])]
            for c in 0..<classes {
                let child = trie[state][c]
                if child >= 0 {
                    fail[Int(child)] = delta[Int(fail[state]) * classes + c]
                    delta[state * classes + c] = child
                    queue.append(Int(child))
                } else {
                    delta[state * classes + c] = delta[Int(fail[state]) * classes + c]
                }
            }
        }
        var outputStart = [Int32](repeating: 0, count: trie.count + 1)
        var outputs: [Int32] = []
        for state in 0..<trie.count {
            outputStart[state] = Int32(outputs.count)
            outputs += out[state]
        }
        outputStart[trie.count] = Int32(outputs.count)
        self.classOf = classOf
        self.classes = classes
        self.spaceClass = classOf[0x20]
        self.delta = delta
        self.outputStart = outputStart
        self.outputs = outputs
    }

    static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b >= 0x80
    }

    /// Calls `body` with each phrase found, in the order their ends are reached.
    func scan(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (Hit) -> Void) {
        let classes = self.classes
        let spaceClass = self.spaceClass
        classOf.withUnsafeBufferPointer { classOf in
            delta.withUnsafeBufferPointer { delta in
                outputStart.withUnsafeBufferPointer { outputStart in
                    outputs.withUnsafeBufferPointer { outputs in
                        var state = 0
                        var previousSpace = false
                        for i in 0..<bytes.count {
                            let c = classOf[Int(bytes[i])]
                            if c == spaceClass {
                                if previousSpace { continue }
                                previousSpace = true
                            } else {
                                previousSpace = false
                            }
                            state = Int(delta[state &* classes &+ Int(c)])
                            let first = Int(outputStart[state])
                            let last = Int(outputStart[state &+ 1])
                            if first == last { continue }
                            for k in first..<last {
                                report(Int(outputs[k]), end: i + 1, bytes, classOf, body)
                            }
                        }
                    }
                }
            }
        }
    }

    /// A phrase's end reached: where it starts (walking back, a run of white space counting once, as
    /// the scan read it), its checks (word bounds, exact case), then `body`.
    @inline(__always)
    private func report(
        _ index: Int, end: Int, _ bytes: UnsafeBufferPointer<UInt8>, _ classOf: UnsafeBufferPointer<UInt8>,
        _ body: (Hit) -> Void
    ) {
        let phrase = phrases[index]
        var start = end
        var remaining = phrase.text.count
        while remaining > 0 && start > 0 {
            start -= 1
            if classOf[Int(bytes[start])] == spaceClass {
                while start > 0 && classOf[Int(bytes[start - 1])] == spaceClass { start -= 1 }
            }
            remaining -= 1
        }
        if phrase.wordStart && start > 0 && Self.isWordByte(bytes[start - 1]) { return }
        if phrase.wordEnd && end < bytes.count && Self.isWordByte(bytes[end]) { return }
        if phrase.exactCase && !phrase.text.elementsEqual(bytes[start..<end]) { return }
        body(Hit(phrase: index, start: start, end: end))
    }
}

extension PhraseMatcher.Phrase {
    /// A phrase of words (folded, word-bounded at both ends).
    static func words(_ text: String) -> Self {
        Self(text: Array(text.utf8), wordStart: true, wordEnd: true, exactCase: false)
    }

    /// A literal (folded, not word-bounded).
    static func literal(_ text: String) -> Self {
        Self(text: Array(text.utf8), wordStart: false, wordEnd: false, exactCase: false)
    }

    /// A prefix matched exactly (case kept), starting a word.
    static func prefix(_ text: String) -> Self {
        Self(text: Array(text.utf8), wordStart: true, wordEnd: false, exactCase: true)
    }

    /// Raw bytes (non-ASCII characters' encodings).
    static func bytes(_ bytes: [UInt8]) -> Self {
        Self(text: bytes, wordStart: false, wordEnd: false, exactCase: true)
    }
}
