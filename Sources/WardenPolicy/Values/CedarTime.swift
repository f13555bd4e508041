/// Cedar's `datetime` and `duration` text formats, parsed exactly as the reference implementation does.
enum CedarTime {
    /// `-?(Nd)?(Nh)?(Nm)?(Ns)?(Nms)?`, at least one part; milliseconds must fit an `Int64`.
    static func parseDuration(_ s: String) -> Int64? {
        let bytes = Array(s.utf8)
        guard !bytes.isEmpty, s != "-" else { return nil }
        var i = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        // Units in the only order Cedar accepts: d, h, m, s, ms.
        let factors: [Int64] = [86_400_000, 3_600_000, 60_000, 1000, 1]
        var amounts: [UInt64?] = [nil, nil, nil, nil, nil]
        var lastUnit = -1
        var sawPart = false
        while i < bytes.count {
            let start = i
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 { i += 1 }
            guard i > start, i < bytes.count else { return nil }
            let unit: Int
            switch bytes[i] {
            case UInt8(ascii: "d"): unit = 0
            case UInt8(ascii: "h"): unit = 1
            case UInt8(ascii: "m"):
                if i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "s") {
                    unit = 4
                    i += 1
                } else {
                    unit = 2
                }
            case UInt8(ascii: "s"): unit = 3
            default: return nil
            }
            guard unit > lastUnit else { return nil }
            lastUnit = unit
            // An amount beyond UInt64 is an overflow error in Cedar, also an error here.
            guard let n = UInt64(String(decoding: bytes[start..<(i - (unit == 4 ? 1 : 0))], as: UTF8.self)) else {
                return nil
            }
            amounts[unit] = n
            sawPart = true
            i += 1
        }
        guard sawPart else { return nil }
        var total: Int64 = 0
        for unit in [4, 3, 2, 1, 0] {
            guard let amount = amounts[unit] else { continue }
            // Cedar negates the millisecond amount in 128 bits first, so "-9223372036854775808ms" fits.
            if unit == 4, negative, amount == UInt64(Int64.max) + 1 {
                total = Int64.min
                continue
            }
            guard let n = Int64(exactly: amount) else { return nil }
            let (product, o1) = n.multipliedReportingOverflow(by: factors[unit])
            if o1 { return nil }
            let (sum, o2) =
                negative ? total.subtractingReportingOverflow(product) : total.addingReportingOverflow(product)
            if o2 { return nil }
            total = sum
        }
        return total
    }

    /// `YYYY-MM-DD`, optionally `THH:MM:SS` with `.SSS` and `Z` or `±hhmm`; milliseconds since the epoch.
    static func parseDatetime(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for k in from..<(from + count) {
                guard b[k] >= 48, b[k] <= 57 else { return nil }
                n = n * 10 + Int(b[k] - 48)
            }
            return n
        }
        guard let year = digits(0, 4), b.count >= 10, b[4] == UInt8(ascii: "-"), let month = digits(5, 2),
            b[7] == UInt8(ascii: "-"), let day = digits(8, 2)
        else { return nil }
        var hour = 0
        var minute = 0
        var second = 0
        var milli = 0
        var offsetSeconds = 0
        if b.count > 10 {
            guard b.count >= 19, b[10] == UInt8(ascii: "T"), let h = digits(11, 2), b[13] == UInt8(ascii: ":"),
                let m = digits(14, 2), b[16] == UInt8(ascii: ":"), let sec = digits(17, 2)
            else { return nil }
            (hour, minute, second) = (h, m, sec)
            var i = 19
            if i < b.count, b[i] == UInt8(ascii: ".") {
                guard let ms = digits(i + 1, 3) else { return nil }
                milli = ms
                i += 4
            }
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "Z") {
                guard i + 1 == b.count else { return nil }
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                guard i + 5 == b.count, let oh = digits(i + 1, 2), let om = digits(i + 3, 2) else { return nil }
                guard oh < 24, om < 60 else { return nil }
                offsetSeconds = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            } else {
                return nil
            }
        }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) else { return nil }
        guard hour < 24, minute < 60, second < 60 else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return seconds * 1000 + Int64(milli)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
