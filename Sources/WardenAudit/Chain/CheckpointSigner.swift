import Crypto
import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// The Ed25519 key that signs checkpoints, kept in the state directory (mode 0600, created on first use).
///
/// The state directory is hidden inside every sandbox, so an agent can neither read the key nor forge
/// a checkpoint; `warden audit key` prints the public half for verifiers elsewhere.
public struct CheckpointSigner: Sendable {
    public let publicKeyHex: String
    /// The raw key (swift-crypto's key type is not `Sendable`; it is rebuilt for each signature).
    private let rawPrivateKey: [UInt8]

    public init(privateKey: Curve25519.Signing.PrivateKey) {
        rawPrivateKey = Array(privateKey.rawRepresentation)
        publicKeyHex = AuditHex.encode(Array(privateKey.publicKey.rawRepresentation))
    }

    /// Loads `<directory>/signing.key`, creating it (and `signing.pub`) atomically if it does not exist.
    public static func loadOrCreate(directory: String) throws(AuditError) -> CheckpointSigner {
        let keyPath = directory + "/signing.key"
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw AuditError(code: .systemCall, message: "cannot create \(directory): \(error.localizedDescription)")
        }
        if let existing = try load(path: keyPath) { return existing }
        let key = Curve25519.Signing.PrivateKey()
        let signer = CheckpointSigner(privateKey: key)
        // Write to a temporary file and link it into place: two processes starting at once agree on one key.
        let temporary = keyPath + ".\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AuditError(
                code: .systemCall, message: "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        let text = AuditHex.encode(Array(key.rawRepresentation)) + "\n"
        let ok = text.withCString { write(fd, $0, strlen($0)) } == text.utf8.count && fsync(fd) == 0
        close(fd)
        defer { unlink(temporary) }
        guard ok else {
            throw AuditError(
                code: .systemCall, message: "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        if link(temporary, keyPath) != 0 {
            guard errno == EEXIST, let winner = try load(path: keyPath) else {
                throw AuditError(
                    code: .systemCall, message: "cannot install \(keyPath): \(String(cString: strerror(errno)))")
            }
            return winner
        }
        let publicPath = directory + "/signing.pub"
        try? (signer.publicKeyHex + "\n").write(toFile: publicPath, atomically: true, encoding: .utf8)
        chmod(publicPath, 0o644)
        return signer
    }

    static func load(path: String) throws(AuditError) -> CheckpointSigner? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
            throw AuditError(
                code: .invalidInput,
                message:
                    "\(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 \(path)"
            )
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let raw = AuditHex.decode(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else {
            throw AuditError(
                code: .invalidInput, message: "\(path) is not an Ed25519 signing key; move it away to create a new one")
        }
        return CheckpointSigner(privateKey: key)
    }

    public func sign(_ message: String) throws(AuditError) -> String {
        do {
            let key = try Curve25519.Signing.PrivateKey(rawRepresentation: rawPrivateKey)
            return AuditHex.encode(Array(try key.signature(for: Array(message.utf8))))
        } catch {
            throw AuditError(code: .systemCall, message: "signing a checkpoint failed: \(error)")
        }
    }

    public func checkpoint(sequence: Int64, hash: String, previousSignature: String, time: Int64 = RunEvent.now())
        throws(AuditError) -> AuditCheckpoint
    {
        var c = AuditCheckpoint(
            sequence: sequence, hash: hash, timeNanoseconds: time, previousSignature: previousSignature, signature: "",
            publicKey: publicKeyHex)
        c.signature = try sign(c.signedMessage)
        return c
    }

    /// Whether `checkpoint` carries a valid signature by `publicKeyHex`.
    public static func isValid(_ checkpoint: AuditCheckpoint, publicKeyHex: String) -> Bool {
        guard let raw = AuditHex.decode(publicKeyHex),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw),
            let signature = AuditHex.decode(checkpoint.signature)
        else { return false }
        return key.isValidSignature(signature, for: Array(checkpoint.signedMessage.utf8))
    }
}
