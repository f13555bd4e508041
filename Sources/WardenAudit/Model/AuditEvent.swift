import Crypto
import Foundation
import WardenCore

/// What a caller asks to record; the log assigns the sequence number and the hashes.
public struct AuditDraft: Sendable, Equatable {
    /// UTC, nanoseconds since the Unix epoch.
    public var timeNanoseconds: Int64
    public var run: String?
    /// What happened: `started`, `stop.requested`, `policy.decision`, `approval.granted`, …
    public var kind: String
    /// Who did it: `supervisor`, `operator`, `kernel`, `gateway`, a person's name.
    public var actor: String
    /// What it was done to: a path, a tool, a run.
    public var subject: String
    /// For decisions: `allow`, `deny`, `ask`.
    public var decision: String?
    /// Kind-specific facts as a JSON object (integers within ±2^53, or strings).
    public var details: JSONValue

    public init(
        kind: String, actor: String, subject: String = "", run: String? = nil, decision: String? = nil,
        details: JSONValue = .object([]), timeNanoseconds: Int64 = RunEvent.now()
    ) {
        self.timeNanoseconds = timeNanoseconds
        self.run = run
        self.kind = kind
        self.actor = actor
        self.subject = subject
        self.decision = decision
        self.details = details
    }
}

/// One event in the hash chain.
public struct AuditEvent: Sendable, Equatable {
    public var sequence: Int64
    public var draft: AuditDraft
    /// Hex SHA-256 of the previous event (64 zeros before the first).
    public var previousHash: String
    /// Hex `SHA-256(previous hash bytes ‖ canonical(event))`.
    public var hash: String

    public static let genesisHash = String(repeating: "0", count: 64)

    /// The canonical encoding that is hashed: RFC 8785 JSON of
    /// `{"actor","decision","details","kind","run","seq","subject","time"}` (that is the RFC's member
    /// order), where `time` is RFC 3339 UTC with nine fractional digits (nanoseconds exceed JSON's exact
    /// integer range), absent `run` and `decision` are `null`, and `details` is itself canonical.
    public static func canonical(sequence: Int64, draft: AuditDraft) throws(AuditError) -> String {
        canonical(sequence: sequence, draft: draft, canonicalDetails: try canonicalDetails(draft.details))
    }

    /// The details object in RFC 8785 form (stored as is, so verification need not re-encode it).
    public static func canonicalDetails(_ details: JSONValue) throws(AuditError) -> String {
        guard case .object = details else {
            throw AuditError(code: .invalidInput, message: "event details must be a JSON object")
        }
        do {
            return try details.canonicalized()
        } catch {
            throw AuditError(code: .invalidInput, message: "event details cannot be recorded: \(error.description)")
        }
    }

    /// Builds the canonical text from fields and already-canonical details, without a JSON tree: this
    /// runs once per event on every append and every verification.
    public static func canonical(sequence: Int64, draft: AuditDraft, canonicalDetails: String) -> String {
        var out = "{\"actor\":"
        out.reserveCapacity(160 + canonicalDetails.utf8.count + draft.subject.utf8.count)
        JSONValue.writeString(draft.actor, to: &out)
        out += ",\"decision\":"
        if let decision = draft.decision { JSONValue.writeString(decision, to: &out) } else { out += "null" }
        out += ",\"details\":"
        out += canonicalDetails
        out += ",\"kind\":"
        JSONValue.writeString(draft.kind, to: &out)
        out += ",\"run\":"
        if let run = draft.run { JSONValue.writeString(run, to: &out) } else { out += "null" }
        out += ",\"seq\":"
        out += String(sequence)
        out += ",\"subject\":"
        JSONValue.writeString(draft.subject, to: &out)
        out += ",\"time\":\""
        out += AuditTime.rfc3339(draft.timeNanoseconds)
        out += "\"}"
        return out
    }

    /// `SHA-256(previous ‖ canonical)` in hex.
    public static func chainHash(previous: String, canonical: String) -> String {
        var text = canonical
        return text.withUTF8 { chainHash(previous: previous, canonicalBytes: $0) }
    }

    /// Whether `expected` (hex) is `SHA-256(previous ‖ canonical bytes)`.
    public static func chainHashMatches(previous: String, canonicalBytes: UnsafeBufferPointer<UInt8>, expected: String)
        -> Bool
    {
        var hasher = Crypto.SHA256()
        guard let previousBytes = AuditHex.decode32(previous), let expectedBytes = AuditHex.decode32(expected) else {
            return chainHash(previous: previous, canonicalBytes: canonicalBytes) == expected
        }
        withUnsafeBytes(of: previousBytes) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(canonicalBytes))
        let digest = hasher.finalize()
        return withUnsafeBytes(of: expectedBytes) { e in digest.withUnsafeBytes { d in e.elementsEqual(d) } }
    }

    /// `SHA-256(previous ‖ canonical bytes)` in hex.
    public static func chainHash(previous: String, canonicalBytes: UnsafeBufferPointer<UInt8>) -> String {
        var hasher = Crypto.SHA256()
        var previous = previous
        previous.withUTF8 { hex in
            // 64 hex digits → 32 bytes on the stack; anything else (tests, odd input) via the slow path.
            if hex.count == 64 {
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { bytes in
                    var ok = true
                    for i in 0..<32 {
                        guard let hi = AuditHex.nibble(hex[2 * i]), let lo = AuditHex.nibble(hex[2 * i + 1]) else {
                            ok = false
                            break
                        }
                        bytes[i] = hi << 4 | lo
                    }
                    if ok { hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes)) }
                }
            } else if let bytes = AuditHex.decode(String(decoding: hex, as: UTF8.self)) {
                hasher.update(data: bytes)
            }
        }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(canonicalBytes))
        return hasher.finalize().withUnsafeBytes { AuditHex.encode($0) }
    }

    /// The event as one JSON object (the export format, one per line).
    public var json: JSONValue {
        .object([
            ("seq", .number(String(sequence))),
            ("time", .string(AuditTime.rfc3339(draft.timeNanoseconds))),
            ("time_ns", .string(String(draft.timeNanoseconds))),
            ("run", draft.run.map { .string($0) } ?? .null),
            ("kind", .string(draft.kind)),
            ("actor", .string(draft.actor)),
            ("subject", .string(draft.subject)),
            ("decision", draft.decision.map { .string($0) } ?? .null),
            ("details", draft.details),
            ("prev_hash", .string(previousHash)),
            ("hash", .string(hash)),
        ])
    }

    /// Reads the export format back.
    public init(json: JSONValue) throws(AuditError) {
        func string(_ key: String) throws(AuditError) -> String {
            guard let s = json[key]?.stringValue else {
                throw AuditError(code: .invalidInput, message: "exported event lacks the string \"\(key)\"")
            }
            return s
        }
        guard let seq = json["seq"]?.int64 else {
            throw AuditError(code: .invalidInput, message: "exported event lacks an integer \"seq\"")
        }
        guard let time = Int64(try string("time_ns")) else {
            throw AuditError(code: .invalidInput, message: "exported event \(seq): \"time_ns\" is not an integer")
        }
        let draft = AuditDraft(
            kind: try string("kind"), actor: try string("actor"), subject: try string("subject"),
            run: json["run"]?.stringValue, decision: json["decision"]?.stringValue,
            details: json["details"] ?? .object([]), timeNanoseconds: time)
        self.init(sequence: seq, draft: draft, previousHash: try string("prev_hash"), hash: try string("hash"))
    }

    public init(sequence: Int64, draft: AuditDraft, previousHash: String, hash: String) {
        self.sequence = sequence
        self.draft = draft
        self.previousHash = previousHash
        self.hash = hash
    }
}

/// A signed statement that the chain had `hash` at `sequence`; checkpoints chain to each other.
public struct AuditCheckpoint: Sendable, Equatable {
    public var sequence: Int64
    public var hash: String
    public var timeNanoseconds: Int64
    /// The previous checkpoint's signature (empty for the first).
    public var previousSignature: String
    /// Hex Ed25519 signature over `signedMessage`.
    public var signature: String
    /// Hex of the public key that signed it.
    public var publicKey: String

    public var signedMessage: String {
        "warden-audit-checkpoint-v1|\(sequence)|\(hash)|\(timeNanoseconds)|\(previousSignature)"
    }

    public var json: JSONValue {
        .object([
            ("seq", .number(String(sequence))), ("hash", .string(hash)), ("time_ns", .string(String(timeNanoseconds))),
            ("prev_signature", .string(previousSignature)), ("signature", .string(signature)),
            ("public_key", .string(publicKey)),
        ])
    }

    public init(
        sequence: Int64, hash: String, timeNanoseconds: Int64, previousSignature: String, signature: String,
        publicKey: String
    ) {
        self.sequence = sequence
        self.hash = hash
        self.timeNanoseconds = timeNanoseconds
        self.previousSignature = previousSignature
        self.signature = signature
        self.publicKey = publicKey
    }

    public init(json: JSONValue) throws(AuditError) {
        guard let seq = json["seq"]?.int64, let hash = json["hash"]?.stringValue,
            let time = json["time_ns"]?.stringValue.flatMap({ Int64($0) }),
            let previous = json["prev_signature"]?.stringValue, let signature = json["signature"]?.stringValue,
            let key = json["public_key"]?.stringValue
        else { throw AuditError(code: .invalidInput, message: "malformed checkpoint record") }
        self.init(
            sequence: seq, hash: hash, timeNanoseconds: time, previousSignature: previous, signature: signature,
            publicKey: key)
    }
}

/// Errors of the audit log, in the shape of ``WardenError`` (and convertible to it).
public struct AuditError: Error, Sendable, CustomStringConvertible {
    public var code: WardenError.Code
    public var message: String
    public var description: String { message }

    public init(code: WardenError.Code, message: String) {
        self.code = code
        self.message = message
    }

    public var wardenError: WardenError { WardenError(code: code, message: message) }
}

/// Lower-case hex, the form of every hash and key in the log (public: the server's token digests too).
public enum AuditHex {
    public static func encode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { encode($0) }
    }

    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            let digits: StaticString = "0123456789abcdef"
            let table = digits.utf8Start
            for (i, b) in bytes.enumerated() {
                out[2 * i] = table[Int(b >> 4)]
                out[2 * i + 1] = table[Int(b & 15)]
            }
            return bytes.count * 2
        }
    }

    /// 64 hex digits as 32 bytes, without allocating.
    static func decode32(_ hex: String) -> (UInt64, UInt64, UInt64, UInt64)? {
        var hex = hex
        return hex.withUTF8 { h -> (UInt64, UInt64, UInt64, UInt64)? in
            guard h.count == 64 else { return nil }
            var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            let ok = withUnsafeMutableBytes(of: &words) { raw -> Bool in
                for i in 0..<32 {
                    guard let hi = nibble(h[2 * i]), let lo = nibble(h[2 * i + 1]) else { return false }
                    raw[i] = hi << 4 | lo
                }
                return true
            }
            return ok ? words : nil
        }
    }

    @inline(__always)
    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }

    public static func decode(_ hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

enum AuditTime {
    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (years outside 0…9999 are written with more digits or a sign).
    static func rfc3339(_ ns: Int64) -> String {
        let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        let fraction = ns - seconds * 1_000_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else {
            func pad(_ n: Int64, _ width: Int) -> String {
                let s = String(n)
                return String(repeating: "0", count: max(0, width - s.count)) + s
            }
            return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
                + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(fraction, 9))Z"
        }
        return String(unsafeUninitializedCapacity: 30) { out in
            func put(_ value: Int64, _ width: Int, at offset: Int) {
                var v = value
                for k in stride(from: width - 1, through: 0, by: -1) {
                    out[offset + k] = UInt8(48 + v % 10)
                    v /= 10
                }
            }
            put(year, 4, at: 0)
            out[4] = UInt8(ascii: "-")
            put(month, 2, at: 5)
            out[7] = UInt8(ascii: "-")
            put(day, 2, at: 8)
            out[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, 2, at: 11)
            out[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, 2, at: 14)
            out[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, 2, at: 17)
            out[19] = UInt8(ascii: ".")
            put(fraction, 9, at: 20)
            out[29] = UInt8(ascii: "Z")
            return 30
        }
    }
}
