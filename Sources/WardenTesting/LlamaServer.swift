import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// llama.cpp's server (built by setup from llama-cpp-python 0.3.36) with SmolLM2-135M-Instruct, on a free
/// loopback port, once for the test process; its chat template keeps tool messages (scripts/model).
public final class LlamaServer: @unchecked Sendable {
    public static let binary = "/var/cache/warden-peers/llama-server-0.3.36/bin/llama-server"
    public static let model = "/var/cache/warden-models/SmolLM2-135M-Instruct-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
    static let template =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/model/chatml-tools.jinja").path
    let process = Process()
    public let port: Int
    public var base: String { "http://127.0.0.1:\(port)/v1" }

    nonisolated(unsafe) private static var running: LlamaServer?
    private static let lock = NSLock()

    public static func shared() throws -> LlamaServer {
        lock.lock()
        defer { lock.unlock() }
        if let running { return running }
        let server = try LlamaServer()
        running = server
        atexit { LlamaServer.running?.process.terminate() }
        return server
    }

    private init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary),
            FileManager.default.fileExists(atPath: Self.model)
        else {
            throw WardenError(code: .notFound, message: "llama-server or SmolLM2 is missing: run scripts/setup.sh")
        }
        port = Int(try LoopbackListener().port)  // closed again at once: the server takes it
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "-m", Self.model, "--host", "127.0.0.1", "--port", String(port), "--jinja", "--chat-template-file",
            Self.template, "-c", "4096", "-t", "2", "--seed", "1",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            probe.arguments = ["-sf", "-m", "2", "http://127.0.0.1:\(port)/health"]
            probe.standardOutput = FileHandle.nullDevice
            probe.standardError = FileHandle.nullDevice
            if (try? probe.run()) != nil {
                probe.waitUntilExit()
                if probe.terminationStatus == 0 { return }
            }
            usleep(200_000)
        }
        process.terminate()
        throw WardenError(code: .systemCall, message: "llama-server did not become healthy within 60 s")
    }
}
