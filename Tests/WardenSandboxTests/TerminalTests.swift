import Foundation
import Testing
import WardenCore
import WardenSandbox
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// A foreground run on a terminal: the agent gets a pty of its own, relayed by Warden; the operator's
/// terminal is never the agent's to change or to write escape sequences to, and it is restored on every
/// exit path. Each test drives the real binary on a real pty, as an operator's terminal emulator does.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct TerminalTests {
    func session(_ harness: WardenHarness, _ script: String, rows: UInt16 = 24, columns: UInt16 = 80) throws
        -> TerminalSession
    {
        try TerminalSession(
            harness: harness,
            arguments: ["run", "--workspace", harness.workspace, "--grace", "1s", "--", "/bin/sh", "-c", script],
            rows: rows, columns: columns, environment: ["TERM": "xterm-256color"])
    }

    /// The attack: leave the operator's terminal without echo or line editing, set its clipboard
    /// (OSC 52), smuggle a sequence through tmux's DCS passthrough, resize the window (XTWINOPS), and
    /// leave the alternate screen on with the cursor hidden. With the terminal shared, all of it reached
    /// the operator; with the relay none of the dangerous sequences does, the screen modes are undone
    /// and the settings are as before.
    @Test func theAgentCannotChangeOrWriteThroughTheOperatorsTerminal() throws {
        let harness = try WardenHarness()
        let terminal = try session(
            harness,
            #"""
            stty -echo -icanon
            printf '\033]52;c;cHduZWQ=\007\033Ptmux;\033\033]52;c;cHduZWQ=\007\033\\\033[8;5;5t'
            printf '\033]0;agent title\007\033[?1049h\033[?25l\033[?1000h\033[31mred'
            echo agent-done
            """#)
        #expect(terminal.isCooked, "the operator's terminal starts cooked")
        let status = terminal.waitForExit()
        #expect(status == 0, "\(terminal.text)")
        let screen = terminal.text
        #expect(screen.contains("agent-done"), "\(screen.debugDescription)")
        #expect(!screen.contains("\u{1B}]52"), "OSC 52 reached the operator: \(screen.debugDescription)")
        #expect(!screen.contains("\u{1B}P"), "a DCS string reached the operator")
        #expect(!screen.contains("\u{1B}[8;5;5t"), "a window operation reached the operator")
        #expect(screen.contains("\u{1B}]0;agent title"), "a window title is allowed")
        #expect(terminal.isCooked, "the operator's terminal was left without echo or line editing")
        let tail = String(screen[(screen.range(of: "agent-done")?.upperBound ?? screen.startIndex)...])
        for restore in ["\u{1B}[?1049l", "\u{1B}[?25h", "\u{1B}[?1000l", "\u{1B}[0m"] {
            #expect(
                tail.contains(restore),
                "not undone after the run: \(restore.debugDescription) in \(tail.debugDescription)")
        }
        let id = try #require(
            harness.run(["ps", "--all", "--json"]).standardOutput.firstMatch(of: /"id" : "([0-9a-f]+)"/)?.1)
        let exited = try harness.events(String(id), kind: "exited")
        #expect(exited.first?["terminal_dropped"]?.contains("OSC 52 (clipboard): 2") == true, "\(exited)")
        #expect(exited.first?["terminal_dropped"]?.contains("DCS: 1") == true, "\(exited)")
    }

    /// The supervisor holds the operator's terminal in raw mode; killed with SIGKILL it can restore
    /// nothing, so a guardian process does.
    @Test func theOperatorsTerminalIsRestoredWhenTheSupervisorIsKilled() throws {
        let harness = try WardenHarness()
        let terminal = try session(harness, "echo agent-ready; sleep 60")
        #expect(terminal.read(until: "agent-ready"))
        #expect(harness.waitUntil(timeout: 5) { !terminal.isCooked }, "the relay takes the keys (raw mode)")
        kill(terminal.process.processIdentifier, SIGKILL)
        #expect(terminal.waitForExit() != nil)
        #expect(harness.waitUntil(timeout: 5) { terminal.isCooked }, "the operator's terminal was left raw")
    }

    /// A screen program (curses) works: it sees the terminal's size, gets the resize, reads a key, and
    /// leaves a usable terminal. Its Ctrl-C is its own.
    @Test func aScreenProgramWorksInAForegroundRun() throws {
        let harness = try WardenHarness()
        let program = #"""
            import curses
            def main(screen):
                screen.addstr(0, 0, "ready %d %d" % screen.getmaxyx()); screen.refresh()
                key = screen.getch()
                while key == curses.KEY_RESIZE:
                    screen.addstr(1, 0, "resized %d %d" % screen.getmaxyx()); screen.refresh()
                    key = screen.getch()
                return key
            print("key=%d" % curses.wrapper(main))
            """#
        try harness.write(program, to: harness.workspace + "/screen.py")
        let terminal = try session(harness, "python3 screen.py", rows: 40, columns: 100)
        #expect(terminal.read(until: "ready 40 100"), "\(terminal.text.debugDescription)")
        // ncurses checks its SIGWINCH flag before it blocks in read(), so a signal landing between the
        // two is seen only at the next one; a terminal emulator sends one per resize step, and so does this.
        // A retry must change the size (the kernel sends no SIGWINCH for an unchanged one): step away, back.
        var resized = false
        for attempt in 0..<5 where !resized {
            if attempt > 0 {
                terminal.resize(rows: 49, columns: 119)
                usleep(100_000)
            }
            terminal.resize(rows: 50, columns: 120)
            resized = terminal.read(until: "resized 50 120", timeout: 3)
        }
        #expect(resized, "\(terminal.text.debugDescription)")
        terminal.type("q")
        #expect(terminal.waitForExit() == 0, "\(terminal.text.debugDescription)")
        #expect(terminal.text.contains("key=113"))
        #expect(terminal.isCooked)
    }

    /// Ctrl-] is Warden's, not the agent's: a program that puts its pty in raw mode and ignores every
    /// signal is still stopped by it.
    @Test func theStopKeyStopsTheRunWhateverTheAgentDoesToItsTerminal() throws {
        let harness = try WardenHarness()
        let terminal = try session(harness, "trap '' INT TERM HUP QUIT; stty raw -isig; echo agent-raw; sleep 60")
        #expect(terminal.read(until: "agent-raw"))
        terminal.type("\u{03}\u{1D}")
        let status = terminal.waitForExit(timeout: 15)
        #expect(status != nil && status != 0, "the run went on: \(terminal.text.debugDescription)")
        #expect(terminal.text.contains("stopped (operator interrupt (Ctrl-]))"), "\(terminal.text.debugDescription)")
        #expect(terminal.isCooked)
    }
}

/// The output filter on its own: what passes, what is dropped, what is undone.
struct TerminalOutputFilterTests {
    func filtered(_ chunks: [String]) -> (String, TerminalOutputFilter) {
        var filter = TerminalOutputFilter()
        let out = chunks.flatMap { filter.filter(Array($0.utf8)) }
        return (String(decoding: out, as: UTF8.self), filter)
    }

    @Test func textColoursAndCursorMovementPass() {
        let text = "héllo wörld ✓ \u{1B}[1;31mred\u{1B}[0m \u{1B}[10;5H\u{1B}[2J\u{1B}(0q\u{1B}(B\r\n"
        #expect(filtered([text]).0 == text)
    }

    @Test func sequencesSplitAcrossReadsAreStillRecognised() {
        let (out, filter) = filtered(["a\u{1B}", "]5", "2;c;eA==", "\u{07}b\u{1B}[", "8;1;1", "t c"])
        #expect(out == "ab c")
        #expect(filter.dropped == ["OSC 52 (clipboard)": 1, "CSI t (window operations)": 1])
    }

    @Test func theC1FormsUTF8EncodesAreDroppedToo() {
        // U+009D is OSC, U+0090 DCS, U+009B CSI: xterm honours them in UTF-8 mode.
        let (out, filter) = filtered(["x\u{9D}52;c;eA==\u{07}y\u{90}q\u{1B}\\z\u{9B}8;1;1t!"])
        #expect(out == "xyz!")
        #expect(filter.dropped["OSC 52 (clipboard)"] == 1 && filter.dropped["DCS"] == 1)
    }

    @Test func titlesPassOtherOSCAndStringsDoNot() {
        let (out, filter) = filtered([
            "\u{1B}]2;build\u{07}", "\u{1B}]8;;https://evil\u{1B}\\link\u{1B}]8;;\u{1B}\\",
            "\u{1B}_apc\u{1B}\\\u{1B}^pm\u{1B}\\\u{1B}Xsos\u{1B}\\\u{1B}]2;bad\u{01}\u{07}",
        ])
        #expect(out == "\u{1B}]2;build\u{1B}\\link")
        #expect(filter.dropped == ["OSC 8": 2, "APC": 1, "PM": 1, "SOS": 1, "OSC 2": 1])
    }

    @Test func restoreUndoesWhatTheAgentLeftChanged() {
        let (_, left) = filtered(["\u{1B}[?1049h\u{1B}[?25l\u{1B}[?2004h\u{1B}[4h\u{1B}=\u{1B}[>1u\u{1B}[2;10r"])
        let restore = String(decoding: left.restoreSequence(), as: UTF8.self)
        #expect(
            restore
                == "\u{1B}[?1049l\u{1B}[?25h\u{1B}[?2004l\u{1B}[4l\u{1B}[<1u\u{1B}>\u{1B}7\u{1B}[r\u{1B}8\u{1B}[0m")
        let (_, tidy) = filtered(["\u{1B}[?1049h\u{1B}[?25l plain \u{1B}[?25h\u{1B}[?1049l"])
        #expect(tidy.restoreSequence().isEmpty, "a program that cleaned up needs nothing undone")
    }
}
