import CWardenLinux
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// A foreground run's terminal: the agent gets a pseudo-terminal of its own, never the operator's.
///
/// The supervisor puts the operator's terminal in raw mode and relays keys to the pty and the agent's
/// output back through ``TerminalOutputFilter``. Whatever the agent does to its terminal (`stty -echo`,
/// raw mode, the alternate screen) happens to the pty; the operator's settings are restored when the
/// run ends, on every path: by the supervisor, or — if it is killed, even by SIGKILL — by a guardian
/// process that holds a copy of them (`warden_terminal_guard`). Window-size changes are passed on.
///
/// Keys go to the agent (Ctrl-C interrupts the agent's program, as in ssh or `docker run -it`), except
/// ``stopKey``, Ctrl-], which Warden reads itself: it stops the run (twice: skips the grace period).
/// The agent cannot intercept it, whatever it does to its pty.
final class TerminalRelay {
    /// Ctrl-] (as telnet's escape).
    static let stopKey: UInt8 = 0x1D
    static let stopKeyName = "Ctrl-]"

    let master: Int32
    private var slave: Int32
    /// The operator's terminal the keys come from (nil when standard input is not a terminal).
    private var input: Int32?
    /// Where the agent's output goes: the operator's terminal.
    private let output: Int32
    /// The descriptors the agent gets: the pty's slave in place of each standard one that is a terminal.
    let stdio: (Int32, Int32, Int32)
    /// The operator's terminal settings before raw mode, and the descriptor they belong to.
    private var saved: (fd: Int32, settings: termios)?
    private var guardianPID: pid_t = -1
    private var guardianFD: Int32 = -1
    private let winch: Int32
    private var pendingInput: [UInt8] = []
    private var masterOpen = true
    private(set) var filter = TerminalOutputFilter()
    private var restored = false
    /// While Warden asks the operator something (``beginPrompt(_:)``): the agent's output waits in its
    /// pty and the operator's keys (except the stop key) are Warden's, not the agent's.
    private(set) var prompting = false
    private var promptKeys: [UInt8] = []

    /// Whether the operator's keys are relayed (standard input is a terminal).
    var takesKeys: Bool { input != nil }

    /// A relay when any of the standard descriptors is a terminal; nil otherwise (nothing to relay).
    static func attachIfTerminal() throws -> TerminalRelay? {
        let terminals = (0...2).filter { isatty($0) == 1 }
        guard let first = terminals.first else { return nil }
        return try TerminalRelay(terminals: Set(terminals), reference: first)
    }

    private init(terminals: Set<Int32>, reference: Int32) throws {
        var settings = termios()
        var size = winsize()
        let haveSettings = tcgetattr(reference, &settings) == 0
        let haveSize = ioctl(reference, UInt(TIOCGWINSZ), &size) == 0
        var master: Int32 = -1
        var slave: Int32 = -1
        let opened = withUnsafePointer(to: settings) { settingsPointer in
            withUnsafePointer(to: size) { sizePointer in
                warden_pty_open(
                    &master, &slave, haveSettings ? settingsPointer : nil, haveSize ? sizePointer : nil)
            }
        }
        guard opened == 0 else { throw FileIO.systemError("terminal: open a pseudo-terminal for the agent") }
        self.master = master
        self.slave = slave
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        // Keys are not taken by a background job: changing the terminal's mode would stop it (SIGTTOU),
        // and the keys are the shell's. (tcgetpgrp fails for a terminal that is not ours to control.)
        let foreground = tcgetpgrp(0)
        input = terminals.contains(0) && (foreground < 0 || foreground == getpgrp()) ? 0 : nil
        output = [1, 2, 0].first { terminals.contains($0) } ?? reference
        stdio = (
            terminals.contains(0) ? slave : 0, terminals.contains(1) ? slave : 1, terminals.contains(2) ? slave : 2
        )
        // Its own pipe: a resize must never read as a stop on the supervisor's signal pipe.
        var resize = SIGWINCH
        winch = warden_signal_pipe(&resize, 1)
    }

    deinit {
        restore()
        close(master)
        if slave >= 0 { close(slave) }
        if winch >= 0 { close(winch) }
    }

    /// Once bubblewrap has its copy: drops the supervisor's, so the agent's end reads as the pty's.
    func closeSlave() {
        if slave >= 0 { close(slave) }
        slave = -1
    }

    /// Takes the operator's keys: raw mode, with the guardian that restores it started first.
    func takeKeys() throws {
        guard let input, saved == nil else { return }
        var saved = termios()
        guard tcgetattr(input, &saved) == 0 else { return }
        let guardFD = withUnsafePointer(to: saved) { warden_terminal_guard(input, $0, &guardianPID) }
        guard guardFD >= 0 else {
            throw FileIO.systemError("terminal: start the guardian that restores the operator's terminal")
        }
        guardianFD = guardFD
        guard warden_tty_make_raw(input, &saved) == 0 else {
            throw FileIO.systemError("terminal: raw mode for the operator's terminal")
        }
        self.saved = (input, saved)
    }

    /// What to poll: the pty's master, the operator's keys and window-size changes.
    var pollDescriptors: [pollfd] {
        [
            pollfd(
                fd: masterOpen && !prompting ? master : -1,
                events: Int16(POLLIN) | (pendingInput.isEmpty ? 0 : Int16(POLLOUT)), revents: 0),
            pollfd(fd: pendingInput.count < 65536 ? (input ?? -1) : -1, events: Int16(POLLIN), revents: 0),
            pollfd(fd: winch, events: Int16(POLLIN), revents: 0),
        ]
    }

    /// Moves what is ready; returns how many times the stop key was pressed.
    func service() -> Int {
        var stops = 0
        passOutput()
        if let input {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var ready = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
            while poll(&ready, 1, 0) == 1, ready.revents & Int16(POLLIN) != 0 {
                let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n <= 0 {
                    // The operator's terminal hung up; SIGHUP stops the run.
                    self.input = nil
                    break
                }
                for byte in buffer[0..<n] {
                    if byte == Self.stopKey {
                        stops += 1
                    } else if prompting {
                        promptKeys.append(byte)
                    } else {
                        pendingInput.append(byte)
                    }
                }
                if n < buffer.count { break }
            }
        }
        passInput()
        resizeIfNeeded()
        return stops
    }

    private func passInput() {
        guard !pendingInput.isEmpty, masterOpen else { return }
        let n = pendingInput.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
        if n > 0 { pendingInput.removeFirst(n) }
    }

    // MARK: - Warden's own questions

    /// Shows Warden's text (raw mode: lines end in "\r\n") and takes the keys until ``endPrompt(_:)``.
    func beginPrompt(_ text: String) {
        prompting = true
        promptKeys.removeAll()
        writeAll(Array(text.utf8))
    }

    /// Writes more of the prompt (a countdown redrawn in place).
    func showPrompt(_ text: String) {
        guard prompting else { return }
        writeAll(Array(text.utf8))
    }

    /// The keys typed at the prompt since the last call.
    func takePromptKeys() -> [UInt8] {
        defer { promptKeys.removeAll() }
        return promptKeys
    }

    /// Writes the outcome and gives the terminal back to the agent (its held output follows).
    func endPrompt(_ text: String) {
        guard prompting else { return }
        writeAll(Array(text.utf8))
        prompting = false
        promptKeys.removeAll()
    }

    private func passOutput() {
        guard masterOpen, !prompting else { return }
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return }
            if n <= 0 {
                // EIO: every slave descriptor is closed, the agent's side is gone.
                masterOpen = false
                return
            }
            writeAll(filter.filter(buffer[0..<n]))
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }

    private func resizeIfNeeded() {
        var byte: UInt8 = 0
        var resized = false
        while read(winch, &byte, 1) == 1 { resized = true }
        guard resized else { return }
        var size = winsize()
        if ioctl(output, UInt(TIOCGWINSZ), &size) == 0 { _ = ioctl(master, UInt(TIOCSWINSZ), &size) }
    }

    /// Once nothing of the run is left: the rest of the agent's output, then the operator's terminal
    /// as it was (modes the agent left changed undone, settings restored, the guardian released).
    func finish() {
        endPrompt("\r\n")
        passOutput()
        restore()
    }

    private func restore() {
        guard !restored else { return }
        restored = true
        writeAll(filter.restoreSequence())
        if var saved { _ = tcsetattr(saved.fd, TCSADRAIN, &saved.settings) }
        if guardianFD >= 0 {
            var byte: UInt8 = 1
            _ = write(guardianFD, &byte, 1)
            close(guardianFD)
            guardianFD = -1
            var status: Int32 = 0
            _ = waitpid(guardianPID, &status, 0)
        }
    }
}
