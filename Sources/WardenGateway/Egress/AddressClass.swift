/// What kind of address a name resolved to. Everything but `public` is denied unless a policy names
/// the address (or reads `context.address`): the host's own services, the local network and the cloud
/// metadata endpoint are not reachable by a name that happens to resolve to them.
public enum AddressClass: String, Sendable, Codable, CaseIterable {
    case `public`
    case loopback
    /// RFC 1918, carrier-grade NAT (100.64/10) and IPv6 unique-local (fc00::/7).
    case `private`
    case linkLocal = "link-local"
    case multicast
    /// Cloud instance metadata (169.254.169.254, fd00:ec2::254, 100.100.100.200).
    case metadata
    /// 0.0.0.0/8 and `::`.
    case unspecified
    /// Broadcast, 240/4, documentation, benchmarking and other special-purpose ranges.
    case reserved

    /// Classifies a 4- or 16-byte address; IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4,
    /// compatible) take the class of the address they embed.
    public static func of(_ bytes: [UInt8]) -> AddressClass {
        if bytes.count == 4 { return ofIPv4(bytes) }
        guard bytes.count == 16 else { return .reserved }
        let prefix10 = bytes[0..<10].allSatisfy { $0 == 0 }
        if prefix10 && bytes[10] == 0xFF && bytes[11] == 0xFF { return ofIPv4(Array(bytes[12..<16])) }
        if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0][...] {
            return ofIPv4(Array(bytes[12..<16]))
        }
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return ofIPv4(Array(bytes[2..<6])) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) {
            return bytes[15] == 1 ? .loopback : .unspecified
        }
        if prefix10 && bytes[10] == 0 && bytes[11] == 0 { return ofIPv4(Array(bytes[12..<16])) }
        if bytes == [0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54] { return .metadata }
        if bytes[0] & 0xFE == 0xFC { return .private }
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return .linkLocal }
        if bytes[0] == 0xFF { return .multicast }
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return .reserved }
        if bytes[0] & 0xE0 != 0x20 { return .reserved }  // outside 2000::/3, the global unicast space
        return .public
    }

    static func ofIPv4(_ b: [UInt8]) -> AddressClass {
        switch (b[0], b[1]) {
        case (0, _): return .unspecified
        case (127, _): return .loopback
        case (10, _), (172, 16...31), (192, 168): return .private
        case (100, 64...127): return .private
        case (169, 254): return b[2] == 169 && b[3] == 254 ? .metadata : .linkLocal
        case (224...239, _): return .multicast
        case (240...255, _): return .reserved
        case (192, 0) where b[2] == 0 || b[2] == 2: return .reserved
        case (198, 18...19): return .reserved
        case (198, 51) where b[2] == 100: return .reserved
        case (203, 0) where b[2] == 113: return .reserved
        default:
            if b == [100, 100, 100, 200] { return .metadata }
            return .public
        }
    }
}
