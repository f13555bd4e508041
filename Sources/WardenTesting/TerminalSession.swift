import CWardenLinux
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The operator's terminal, for tests: `warden` runs with a real pty's slave as its standard
/// descriptors; the test reads what reaches the screen from the master, types into it, resizes it,
/// and reads the terminal's settings after the run to see what was left of them.
public final class TerminalSession: @unchecked Sendable {
    // @unchecked: used from one test at a time.
    public let master: Int32
    public let slave: Int32
    public let process: Process
    /// Everything written to the screen so far.
    public private(set) var screen: [UInt8] = []

    public init(
        harness: WardenHarness, arguments: [String], rows: UInt16 = 24, columns: UInt16 = 80,
        environment: [String: String] = [:]
    ) throws {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        var master: Int32 = -1
        var slave: Int32 = -1
        guard warden_pty_open(&master, &slave, nil, &size) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        self.master = master
        self.slave = slave
        process = harness.process(WardenHarness.binary, arguments: arguments)
        process.environment = (process.environment ?? [:]).merging(environment) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: harness.root)
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardInput = handle
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        close(master)
        close(slave)
    }

    /// The screen as text (escape sequences included).
    public var text: String { String(decoding: screen, as: UTF8.self) }

    /// Reads the screen until it contains `marker` (true) or `timeout` seconds pass.
    @discardableResult
    public func read(until marker: String, timeout: Double = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !text.contains(marker) {
            guard Date() < deadline else { return false }
            pump(milliseconds: 50)
        }
        return true
    }

    /// Reads what is on its way to the screen for up to `milliseconds`.
    public func pump(milliseconds: Int32) {
        var ready = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, milliseconds) == 1 else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            screen += buffer[0..<n]
        }
    }

    /// Forgets what reached the screen so far (so a later ``read(until:timeout:)`` sees only what follows).
    public func clearScreen() { screen.removeAll() }

    /// Types `text` (bytes as given: "\u{1D}" is Ctrl-]).
    public func type(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
    }

    /// Resizes the terminal and tells the foreground program, as a terminal emulator does.
    public func resize(rows: UInt16, columns: UInt16) {
        var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        kill(process.processIdentifier, SIGWINCH)
    }

    /// The terminal's settings as they are now.
    public var settings: termios {
        var settings = termios()
        tcgetattr(slave, &settings)
        return settings
    }

    /// Whether the terminal echoes and edits lines (as a shell leaves it, and the operator expects).
    public var isCooked: Bool {
        let local = settings.c_lflag
        return local & tcflag_t(ECHO) != 0 && local & tcflag_t(ICANON) != 0
    }

    /// Waits for `warden` to exit, reading the screen meanwhile; its status, or nil on timeout.
    public func waitForExit(timeout: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else { return nil }
            pump(milliseconds: 50)
        }
        pump(milliseconds: 100)
        return process.terminationStatus
    }
}
