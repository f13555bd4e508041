import Foundation
import WardenCore

#if canImport(Glibc)
    import Glibc
#endif

/// What a run left in its workspace that the host might execute, or that raises privilege: read after
/// the run, when nothing of it is left to change the answer, and recorded (`workspace.review`).
///
/// The operator's first `git status` in a workspace runs `core.fsmonitor`; `git checkout` runs the
/// hooks; a set-id file runs as its owner for whoever starts it. The agent cannot write the files the
/// host executes that existed when the run started (they are read-only inside), but it can make new
/// ones (a `.git` of its own); this names them.
public struct WorkspaceReview: Sendable, Equatable {
    public var findings: [String]
    /// Entries looked at (the walk stops at ``maximumEntries``; the review says so).
    public var entries: Int

    /// Most entries walked, so a workspace of millions of files cannot stall the end of a run.
    public static let maximumEntries = 200_000

    /// Git configuration keys whose values the host runs as commands.
    static let commandKeys: Set<String> = [
        "core.fsmonitor", "core.hookspath", "core.sshcommand", "core.pager", "core.editor", "core.askpass",
        "sequence.editor", "diff.external", "credential.helper", "gpg.program", "gpg.ssh.program",
        "core.gitproxy", "uploadpack.packobjectshook", "pager.log", "pager.diff", "pager.show",
    ]

    /// Reviews `workspace` (not following symlinks, not leaving its file system).
    public static func review(_ workspace: String) -> WorkspaceReview {
        var review = WorkspaceReview(findings: [], entries: 0)
        var root = stat()
        guard lstat(workspace, &root) == 0 else { return review }
        var pending = [workspace]
        while let directory = pending.popLast() {
            for name in FileIO.directoryEntries(directory) {
                review.entries += 1
                if review.entries > maximumEntries {
                    review.findings.append("review stopped after \(maximumEntries) entries; the rest was not looked at")
                    return review
                }
                let path = directory + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                let relative = String(path.dropFirst(workspace.count + 1))
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    if st.st_dev == root.st_dev { pending.append(path) }
                    if name == "hooks" && directory.hasSuffix("/.git") { review.reviewHooks(path, relative: relative) }
                case S_IFREG:
                    if st.st_mode & (S_ISUID | S_ISGID) != 0 {
                        review.findings.append(
                            "\(relative): set-id file (mode \(String(st.st_mode & 0o7777, radix: 8)))")
                    }
                    if name == "config" && directory.hasSuffix("/.git") {
                        review.reviewGitConfig(path, relative: relative)
                    }
                    if name == ".envrc" { review.findings.append("\(relative): direnv runs it on cd (if allowed)") }
                case S_IFCHR, S_IFBLK: review.findings.append("\(relative): device node")
                case S_IFIFO: review.findings.append("\(relative): FIFO")
                case S_IFSOCK: review.findings.append("\(relative): socket")
                default: break
                }
            }
        }
        return review
    }

    private mutating func reviewHooks(_ directory: String, relative: String) {
        for name in FileIO.directoryEntries(directory).sorted() where !name.hasSuffix(".sample") {
            var st = stat()
            if lstat(directory + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_mode & 0o111 != 0 {
                findings.append("\(relative)/\(name): git hook (git runs it)")
            }
        }
    }

    /// Keys of a git config file that run commands: the command keys, `!` aliases, and drivers
    /// (`filter.*.clean|smudge|process`, `diff.*.textconv|command`, `merge.*.driver`).
    private mutating func reviewGitConfig(_ path: String, relative: String) {
        guard let text = try? FileIO.readString(path) else { return }
        var section = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.hasPrefix(";") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                // [core], [alias], [filter "x"] → core, alias, filter.x
                let inner = line.dropFirst().prefix { $0 != "]" }
                let parts = inner.split(separator: " ", maxSplits: 1)
                section = parts.first.map { String($0).lowercased() } ?? ""
                if parts.count == 2 { section += "." + parts[1].filter { $0 != "\"" } }
                continue
            }
            let pair = line.split(separator: "=", maxSplits: 1)
            let key = section + "." + pair[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = pair.count == 2 ? pair[1].trimmingCharacters(in: .whitespaces) : ""
            let head = key.split(separator: ".").first.map(String.init) ?? ""
            let last = key.split(separator: ".").last.map(String.init) ?? ""
            let runs =
                Self.commandKeys.contains(key) || (head == "alias" && value.hasPrefix("!"))
                || (head == "filter" && ["clean", "smudge", "process"].contains(last))
                || (head == "diff" && ["textconv", "command"].contains(last)) || (head == "merge" && last == "driver")
            if runs { findings.append("\(relative): \(key) = \(value) (git runs it)") }
        }
    }
}
