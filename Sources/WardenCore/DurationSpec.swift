/// Parses and prints the durations users type: `250ms`, `10s`, `1.5m`, `2h`, or a bare number of seconds.
public enum DurationSpec {
    private static let units: [(suffix: String, seconds: Double)] = [
        ("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400),
    ]

    /// Parses a duration.
    ///
    /// - Parameters:
    ///   - text: what the user wrote.
    ///   - field: the flag or profile field, named in the error.
    /// - Throws: ``WardenError`` naming the field and the accepted forms.
    public static func parse(_ text: String, field: String) throws -> Duration {
        let trimmed = text.trimmingSpaces()
        var number = Substring(trimmed)
        var scale = 1.0
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
            let value = Double(number), value.isFinite, value >= 0
        else {
            throw WardenError.invalidInput(
                "\(field): '\(text)' is not a duration; write a non-negative number with a unit, e.g. 500ms, 10s, 5m, 2h"
            )
        }
        let seconds = value * scale
        guard seconds <= 365 * 86400 else {
            throw WardenError.invalidInput("\(field): '\(text)' is longer than a year; use a shorter duration")
        }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    /// Formats a duration the way ``parse(_:field:)`` reads it back.
    public static func format(_ duration: Duration) -> String {
        let ns = duration.nanoseconds
        if ns == 0 { return "0s" }
        if ns % 3_600_000_000_000 == 0 { return "\(ns / 3_600_000_000_000)h" }
        if ns % 60_000_000_000 == 0 { return "\(ns / 60_000_000_000)m" }
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        return "\(Double(ns) / 1e9)s"
    }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }

    /// Seconds as a floating-point number.
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}

extension String {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
