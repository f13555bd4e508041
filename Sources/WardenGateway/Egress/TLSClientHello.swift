import Foundation

/// The first bytes a client sends, as the door needs them: the SNI of a TLS ClientHello, or the request
/// line and `Host` of plain HTTP. TLS is never decrypted; only the cleartext hello is read.
enum FirstBytes: Equatable {
    /// More bytes are needed to tell.
    case incomplete
    /// A TLS handshake; `sni` is the server name it asks for (nil when it names none).
    case tls(sni: String?)
    /// Plain HTTP: the request's method, target and `Host` header (nil when it has none).
    case http(method: String, target: String, host: String?)
    /// Neither: another protocol.
    case other

    /// The largest hello the door waits for (a TLS record is at most 16 KiB plus its header).
    static let maximumHello = 16384 + 5

    static func classify(_ b: [UInt8]) -> FirstBytes {
        guard let first = b.first else { return .incomplete }
        if first == 0x16 { return tls(b) }
        if first >= 0x41 && first <= 0x5A { return http(b) }
        return .other
    }

    private static func tls(_ b: [UInt8]) -> FirstBytes {
        guard b.count >= 5 else { return .incomplete }
        guard b[1] == 3 else { return .other }
        let recordLength = Int(b[3]) << 8 | Int(b[4])
        guard b.count >= 5 + recordLength else {
            return b.count >= maximumHello ? .tls(sni: nil) : .incomplete
        }
        let r = Array(b[5..<5 + recordLength])
        // Handshake: type 1 (ClientHello), 3-byte length, version, random.
        guard r.count >= 38, r[0] == 1 else { return .tls(sni: nil) }
        var i = 4 + 2 + 32
        func u8() -> Int? {
            guard i < r.count else { return nil }
            defer { i += 1 }
            return Int(r[i])
        }
        func u16() -> Int? {
            guard i + 1 < r.count else { return nil }
            defer { i += 2 }
            return Int(r[i]) << 8 | Int(r[i + 1])
        }
        guard let session = u8() else { return .tls(sni: nil) }
        i += session
        guard let suites = u16() else { return .tls(sni: nil) }
        i += suites
        guard let compression = u8() else { return .tls(sni: nil) }
        i += compression
        guard let extensionsLength = u16() else { return .tls(sni: nil) }
        let end = min(r.count, i + extensionsLength)
        while i + 4 <= end {
            guard let type = u16(), let length = u16() else { break }
            let next = i + length
            if type == 0, next <= end {
                // server_name: list length, then entries of type (0 = host_name), length, name.
                i += 2
                while i + 3 <= next {
                    guard let nameType = u8(), let nameLength = u16(), i + nameLength <= next else { break }
                    if nameType == 0 {
                        return .tls(sni: String(decoding: r[i..<i + nameLength], as: UTF8.self).lowercased())
                    }
                    i += nameLength
                }
                return .tls(sni: nil)
            }
            i = next
        }
        return .tls(sni: nil)
    }

    private static func http(_ b: [UInt8]) -> FirstBytes {
        // The head: up to the blank line (at most 16 KiB).
        guard let end = headEnd(b) else { return b.count > 16384 ? .other : .incomplete }
        let head = String(decoding: b[..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines.first?.split(separator: " ") ?? []
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return .other }
        var host: String?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == "host" {
                host = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            }
        }
        return .http(method: String(requestLine[0]), target: String(requestLine[1]), host: host)
    }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// `host[:port]` as a `Host` header or a CONNECT target gives it: the lower-case host (IPv6 literals
/// without brackets) and the port, if any.
func splitHostPort(_ text: String) -> (host: String, port: Int?)? {
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { return nil }
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if rest.isEmpty { return (host.lowercased(), nil) }
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
        return (host.lowercased(), port)
    }
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    if parts.count == 1 { return (text.lowercased(), nil) }
    if parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) { return (parts[0].lowercased(), port) }
    return nil
}
