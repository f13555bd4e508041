/// A memory size as users type it: `512M`, `2G`, `1.5GiB`, `65536`, or `max` for no limit.
public struct ByteSize: Hashable, Sendable, CustomStringConvertible, Codable {
    /// Bytes, or nil for unlimited.
    public var bytes: UInt64?

    public init(bytes: UInt64?) { self.bytes = bytes }

    public static let unlimited = ByteSize(bytes: nil)

    private static let units: [(suffixes: [String], factor: UInt64)] = [
        (["k", "kb", "kib"], 1 << 10), (["m", "mb", "mib"], 1 << 20),
        (["g", "gb", "gib"], 1 << 30), (["t", "tb", "tib"], 1 << 40), (["b", ""], 1),
    ]

    /// Parses a size; units are powers of 1024.
    ///
    /// - Throws: ``WardenError`` naming `field` and the accepted forms.
    public init(parsing text: String, field: String) throws {
        let lower = text.trimmingSpaces().lowercased()
        if lower == "max" || lower == "unlimited" {
            self.bytes = nil
            return
        }
        let digits = lower.prefix { $0.isNumber || $0 == "." }
        let unit = String(lower.dropFirst(digits.count)).trimmingSpaces()
        guard let factor = Self.units.first(where: { $0.suffixes.contains(unit) })?.factor,
            let value = Double(digits), value.isFinite, value > 0
        else {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not a size; write a positive number with an optional unit K, M, G or T (powers of 1024), or 'max'"
            )
        }
        let total = value * Double(factor)
        guard total >= 1, total < Double(UInt64.max / 2) else {
            throw WardenError.invalidInput("\(field): '\(text)' is out of range")
        }
        self.bytes = UInt64(total)
    }

    public var description: String {
        guard let bytes else { return "max" }
        for (suffix, factor) in [("G", UInt64(1) << 30), ("M", 1 << 20), ("K", 1 << 10)] where bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes)"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self.bytes = container.decodeNil() ? nil : try container.decode(UInt64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let bytes { try container.encode(bytes) } else { try container.encodeNil() }
    }
}
