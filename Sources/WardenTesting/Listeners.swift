import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP listener on the host's loopback that counts connections, to prove nothing reached it.
public final class LoopbackListener: @unchecked Sendable {
    // @unchecked: the descriptor is immutable after init and only used by `accept`, which is thread-safe.
    public let port: UInt16
    private let fd: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else {
            throw WardenError(code: .systemCall, message: "loopback listener failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    /// Connections waiting to be accepted (each is accepted and closed).
    public func acceptedConnections() -> Int { acceptPending(fd) }

    deinit { close(fd) }
}

/// A Unix-socket listener (abstract or named) that counts connections.
public final class UnixListener: @unchecked Sendable {
    // @unchecked: as LoopbackListener.
    private let fd: Int32
    private let path: String?

    public convenience init(abstractName: String) throws {
        try self.init(address: [0] + Array(abstractName.utf8), path: nil)
    }

    public convenience init(path: String) throws {
        unlink(path)
        try self.init(address: Array(path.utf8), path: path)
    }

    private init(address: [UInt8], path: String?) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        self.fd = fd
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            for (index, byte) in address.enumerated() where index < raw.count { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else {
            throw WardenError(code: .systemCall, message: "unix listener failed: \(String(cString: strerror(errno)))")
        }
    }

    public func acceptedConnections() -> Int { acceptPending(fd) }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }
}

/// Accepts and closes every pending connection on a non-blocking listener; returns how many there were.
private func acceptPending(_ fd: Int32) -> Int {
    var count = 0
    while true {
        let client = accept(fd, nil, nil)
        if client < 0 { return count }
        close(client)
        count += 1
    }
}

/// The first line a peer program writes on `pipe` (its ports, as one JSON object), parsed.
///
/// The Python peers (loopback servers the tests start) bind port 0 and report what they got this way.
public func firstJSONLine(of pipe: Pipe) throws -> [String: Any] {
    var line = Data()
    // read(2) retried on EINTR: Foundation's availableData traps on it (a child's exit can interrupt).
    var buffer = [UInt8](repeating: 0, count: 4096)
    while !line.contains(0x0A) {
        let n = buffer.withUnsafeMutableBytes {
            read(pipe.fileHandleForReading.fileDescriptor, $0.baseAddress, $0.count)
        }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        line.append(contentsOf: buffer[0..<n])
    }
    guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
        throw WardenError(
            code: .systemCall, message: "the peer did not report its ports: \(String(decoding: line, as: UTF8.self))")
    }
    return object
}
