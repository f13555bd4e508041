import Synchronization

/// The resolver's map between names and the synthetic loopback addresses it answers with
/// (127.100.0.1 … 127.100.255.254): the one owner of that mapping, for the resolver and the
/// transparent listeners, which learn the name a program asked for from the address it dialled.
final class SyntheticNames: Sendable {
    private struct State {
        var byName: [String: UInt16] = [:]
        var byIndex: [UInt16: String] = [:]
        var next: UInt32 = 1
    }

    private let state = Mutex(State())
    static let capacity: UInt32 = 65534

    /// The address for `name` (allocated on first use) and whether it is new; nil when all are taken.
    func address(for name: String) -> (bytes: [UInt8], new: Bool)? {
        state.withLock { s in
            if let index = s.byName[name] { return (Self.bytes(index), false) }
            guard s.next <= Self.capacity else { return nil }
            let index = UInt16(s.next)
            s.next += 1
            s.byName[name] = index
            s.byIndex[index] = name
            return (Self.bytes(index), true)
        }
    }

    /// The name a synthetic address stands for; nil for any other address.
    func name(for bytes: [UInt8]) -> String? {
        guard bytes.count == 4, bytes[0] == 127, bytes[1] == 100 else { return nil }
        let index = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        return state.withLock { $0.byIndex[index] }
    }

    private static func bytes(_ index: UInt16) -> [UInt8] { [127, 100, UInt8(index >> 8), UInt8(index & 0xFF)] }
}
