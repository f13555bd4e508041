import Foundation
import Testing
import WardenCore
import WardenTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The agent is not root and sees only what it needs: the operator's secrets stay unreadable even to a
/// process that knows where they are, and real agents (Python, git, pip, bash) still work.
@Suite(.enabled(if: HostCapabilities.canSandbox, "needs root, bubblewrap, cgroup v2 and Landlock ABI 6+"))
struct LeastPrivilegeTests {
    /// Runs `script` with bash as a foreground agent and returns its standard output.
    func agent(_ harness: WardenHarness, _ script: String, flags: [String] = []) throws -> CommandResult {
        try harness.run(["run", "--workspace", harness.workspace] + flags + ["--", "/bin/bash", "-c", script])
    }

    @Test func theAgentIsAnUnprivilegedHostIdentityAndItsFilesBelongToTheWorkspaceOwner() throws {
        let harness = try WardenHarness()
        // A workspace owned by an ordinary user: what the agent writes must be that user's on the host.
        chown(harness.workspace, 4242, 4343)
        let result = try agent(
            harness,
            """
            echo uid=$(id -u); echo gid=$(id -g); echo user=$(whoami)
            echo outside=$(awk '{print $2}' /proc/self/uid_map)
            echo made > made-by-agent; echo wrote=$?
            echo cap=$(grep CapEff /proc/self/status | awk '{print $2}')
            """)
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        let uid = try #require(seen["uid"].flatMap(UInt32.init), "\(seen)")
        #expect(AgentIdentity.perRunRange.contains(uid) && seen["gid"] == String(uid), "\(seen)")
        #expect(seen["outside"] == String(uid), "the uid outside the agent's user namespace: \(seen)")
        #expect(seen["user"] == "warden-agent")
        #expect(seen["wrote"] == "0")
        #expect(seen["cap"] == "0000000000000000")
        var st = stat()
        #expect(stat(harness.workspace + "/made-by-agent", &st) == 0)
        #expect(st.st_uid == 4242 && st.st_gid == 4343, "owned by the workspace's owner on the host")
        // The record says who the agent was.
        let runs = try harness.run(["ps", "--all", "--json"]).standardOutput
        #expect(runs.contains("\"uid\" : \(uid)"), "\(runs)")
    }

    @Test func theOperatorsSecretsAreUnreadableAndUnfindable() throws {
        let harness = try WardenHarness()
        let tag = "warden-canary-" + UUID().uuidString.prefix(8).lowercased()
        // A 0600 canary of root's, another user's 0600 file under /home, the state directory's audit log.
        let rootCanary = "/root/" + tag
        try harness.write("root secret\n", to: rootCanary, mode: 0o600)
        defer { unlink(rootCanary) }
        let home = "/home/" + tag
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try harness.write("user secret\n", to: home + "/" + tag + ".key", mode: 0o600)
        chown(home + "/" + tag + ".key", 4242, 4242)
        _ = try harness.run(["audit", "key"])  // creates the state directory's signing key
        let stateKey = harness.stateDirectory + "/audit/signing.key"
        #expect(FileManager.default.fileExists(atPath: stateKey))
        let targets = [rootCanary, home + "/" + tag + ".key", stateKey, "/var/lib/postgresql", "/etc/gshadow"]
        let script =
            targets.enumerated().map { index, path in
                "if [ -d '\(path)' ]; then out=$(ls -A '\(path)' 2>/dev/null); else out=$(cat '\(path)' 2>/dev/null); fi; "
                    + "if [ -n \"$out\" ]; then echo read\(index)=yes; else echo read\(index)=no; fi"
            }.joined(separator: "\n") + """

                echo shadow=$(cat /etc/shadow 2>/dev/null | wc -c)
                echo found=$(find / -name '\(tag)*' 2>/dev/null | wc -l)
                echo statefound=$(find / -name 'signing.key' 2>/dev/null | wc -l)
                for p in /usr/evil /etc/evil /var/tmp/evil /root/evil; do
                    if echo x > $p 2>/dev/null; then echo wrote=$p; fi
                done
                echo done=1
                """
        let result = try agent(harness, script)
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        #expect(seen["done"] == "1", "\(result.standardOutput)\(result.standardError)")
        for index in targets.indices {
            #expect(seen["read\(index)"] == "no", "readable inside the sandbox: \(targets[index])")
        }
        #expect(seen["shadow"] == "0", "/etc/shadow is an empty placeholder inside")
        #expect(seen["found"] == "0", "find / found a canary")
        #expect(seen["statefound"] == "0", "find / found Warden's signing key")
        #expect(seen["wrote"] == nil, "wrote outside the workspace: \(seen["wrote"] ?? "")")
        for path in ["/usr/evil", "/etc/evil", "/var/tmp/evil", "/root/evil"] {
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func realAgentsStillWork() throws {
        let harness = try WardenHarness()
        // A wheel made here (pip installs it offline): a zip with the module, METADATA, WHEEL and RECORD.
        let wheel = harness.workspace + "/wardenprobe-1.0-py3-none-any.whl"
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        make.arguments = [
            "-c",
            """
            import zipfile, sys
            with zipfile.ZipFile(sys.argv[1], "w") as z:
                z.writestr("wardenprobe.py", "VALUE = 42\\n")
                z.writestr("wardenprobe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: wardenprobe\\nVersion: 1.0\\n")
                z.writestr("wardenprobe-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
                z.writestr("wardenprobe-1.0.dist-info/RECORD", "")
            """, wheel,
        ]
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
        let result = try agent(
            harness,
            """
            set -e
            echo python=$(python3 -c 'print(6 * 7)')
            git init -q origin && cd origin && echo hello > README && git add README
            git -c user.name=agent -c user.email=agent@example.com commit -q -m first && cd ..
            git clone -q origin clone && echo cloned=$(cat clone/README)
            python3 -m pip install --quiet --no-index --disable-pip-version-check --target site ./wardenprobe-1.0-py3-none-any.whl
            echo pip=$(PYTHONPATH=site python3 -c 'import wardenprobe; print(wardenprobe.VALUE)')
            echo login=$(bash --login -c 'echo ok')
            """)
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        let seen = result.keyValues
        #expect(seen["python"] == "42")
        #expect(seen["cloned"] == "hello")
        #expect(seen["pip"] == "42")
        #expect(seen["login"] == "ok")
    }

    /// A setuid-root program the agent can reach (here through --read) does not raise it: no_new_privs
    /// keeps the exec from changing its credentials, so it is still the unprivileged identity.
    @Test func setuidRootProgramsDoNotRaiseTheAgent() throws {
        let harness = try WardenHarness()
        let tools = harness.outside + "/setuid"
        try FileManager.default.createDirectory(atPath: tools, withIntermediateDirectories: true)
        let planted = tools + "/id-as-root"
        try FileManager.default.copyItem(atPath: "/usr/bin/id", toPath: planted)
        chown(planted, 0, 0)
        chmod(planted, 0o4755)
        var st = stat()
        #expect(stat(planted, &st) == 0 && (st.st_mode & S_ISUID) != 0, "the plant is setuid root")
        let result = try agent(
            harness, "echo euid=$(\(planted) -u); echo ruid=$(\(planted) -ru)", flags: ["--read", tools])
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        let euid = seen["euid"].flatMap(UInt32.init)
        #expect(
            euid.map(AgentIdentity.perRunRange.contains) == true, "a setuid-root program ran with euid \(euid ?? 0)")
        #expect(seen["ruid"] == seen["euid"])
    }

    /// Through the idmapped workspace the agent's files are the workspace owner's on the host (root's,
    /// here): a setuid bit it set would leave a root shell for any local user. Setting S_ISUID or S_ISGID
    /// is refused, whether by chmod or in the mode of a file being created.
    @Test func theAgentCannotPlantSetuidFiles() throws {
        let harness = try WardenHarness()
        let result = try agent(
            harness,
            """
            cp /bin/sh sh-copy; chmod u+s sh-copy 2>/dev/null && echo chmod=set || echo chmod=refused
            chmod g+s sh-copy 2>/dev/null && echo chmodg=set || echo chmodg=refused
            python3 -c "import os; os.close(os.open('created', os.O_CREAT | os.O_WRONLY, 0o4755))" 2>/dev/null \
                && echo open=set || echo open=refused
            python3 -c "import os, stat; os.mknod('made', stat.S_IFREG | 0o4755)" 2>/dev/null \
                && echo mknod=set || echo mknod=refused
            python3 -c "import os; os.close(os.open('plain', os.O_CREAT | os.O_WRONLY, 0o755))" && echo plain=ok
            chmod 700 sh-copy && echo chmod700=ok
            """)
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        for name in ["chmod", "chmodg", "open", "mknod"] {
            #expect(seen[name] == "refused", "\(name): \(seen[name] ?? "?")")
        }
        #expect(seen["plain"] == "ok" && seen["chmod700"] == "ok", "ordinary modes still work: \(seen)")
        for file in ["sh-copy", "created", "made"] {
            var st = stat()
            if stat(harness.workspace + "/" + file, &st) == 0 {
                #expect(st.st_mode & (S_ISUID | S_ISGID) == 0, "\(file) is set-id on the host")
            }
        }
        let run =
            try JSONSerialization.jsonObject(
                with: Data(try harness.run(["ps", "--all", "--json"]).standardOutput.utf8)) as? [[String: Any]]
        let id = try #require(run?.first?["id"] as? String)
        let denied = Set(try harness.events(id, kind: "denied").compactMap { $0["what"] })
        #expect(denied.contains("chmod (setuid/setgid)"), "\(denied)")
    }

    /// Two runs side by side: one listens on a Unix socket in its workspace and leaves a file there;
    /// the other, in a sibling directory, can reach neither (the read view has no other workspace).
    @Test func runsCannotReachEachOther() throws {
        let harness = try WardenHarness()
        let other = harness.root + "/other-workspace"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let listener = """
            import socket, time
            s = socket.socket(socket.AF_UNIX); s.bind('\(other)/door.sock'); s.listen()
            open('\(other)/note', 'w').write('hello')
            open('\(other)/ready', 'w').close()
            s.settimeout(20)
            try:
                c, _ = s.accept(); open('\(other)/reached', 'w').close()
            except OSError:
                pass
            """
        let first = try harness.run([
            "run", "--detach", "--json", "--workspace", other, "--", "/usr/bin/python3", "-c", listener,
        ])
        #expect(first.status == 0, "\(first.standardError)")
        let firstID = try #require(first.json["id"] as? String)
        #expect(harness.waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: other + "/ready") })
        let probe = try agent(
            harness,
            """
            python3 -c "import socket; socket.socket(socket.AF_UNIX).connect('\(other)/door.sock')" 2>/dev/null \
                && echo connect=yes || echo connect=no
            cat '\(other)/note' 2>/dev/null && echo read=yes || echo read=no
            echo x > '\(other)/dropped' 2>/dev/null && echo write=yes || echo write=no
            """)
        let seen = probe.keyValues
        #expect(seen["connect"] == "no" && seen["read"] == "no" && seen["write"] == "no", "\(seen)")
        #expect(!FileManager.default.fileExists(atPath: other + "/reached"))
        #expect(!FileManager.default.fileExists(atPath: other + "/dropped"))
        _ = try harness.run(["kill", firstID])
    }

    /// A lease on a file makes every other opener wait up to 45 s for the agent: through the idmapped
    /// workspace the agent owns its owner's files, so it could make the operator's editor hang.
    @Test func theAgentCannotTakeFileLeases() throws {
        let harness = try WardenHarness()
        try harness.write("shared\n", to: harness.workspace + "/shared.txt")
        let result = try agent(
            harness,
            """
            python3 -c "
            import fcntl, os
            fd = os.open('shared.txt', os.O_RDONLY)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
            " 2>/dev/null && echo lease=taken || echo lease=refused
            python3 -c "import fcntl, os; fd = os.open('shared.txt', os.O_RDONLY); fcntl.fcntl(fd, fcntl.F_GETFL)" \
                && echo fcntl=ok
            """)
        let seen = result.keyValues
        #expect(seen["lease"] == "refused", "\(seen)")
        #expect(seen["fcntl"] == "ok", "other fcntl commands still work")
    }

    /// Per-user kernel limits (inotify instances here; also user namespaces, pending signals) are
    /// counted by host uid. A run that takes all of its identity's inotify instances leaves a concurrent
    /// run's untouched, because each live run has a uid of its own; two runs given one `--user` share
    /// them, which the second half shows (and what every run suffered when all were one uid).
    @Test func oneRunCannotExhaustAnotherRunsPerUserLimits() throws {
        let harness = try WardenHarness()
        let hog = harness.root + "/hog"
        try FileManager.default.createDirectory(atPath: hog, withIntermediateDirectories: true)
        let takeAll = """
            import ctypes, os, time
            libc = ctypes.CDLL(None, use_errno=True)
            held = []
            while True:
                fd = libc.inotify_init1(0)
                if fd < 0: break
                held.append(fd)
            open('took', 'w').write(str(len(held)))
            time.sleep(60)
            """
        let probe = """
            python3 -c "
            import ctypes
            print('inotify=ok' if ctypes.CDLL(None).inotify_init1(0) >= 0 else 'inotify=exhausted')
            "
            """
        func hogRun(_ flags: [String]) throws -> String {
            try? FileManager.default.removeItem(atPath: hog + "/took")
            let started = try harness.run(
                ["run", "--detach", "--json", "--workspace", hog] + flags + ["--", "/usr/bin/python3", "-c", takeAll])
            #expect(started.status == 0, "\(started.standardError)")
            #expect(harness.waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: hog + "/took") })
            let took = Int((try? String(contentsOfFile: hog + "/took", encoding: .utf8)) ?? "") ?? 0
            #expect(took >= 100, "the hog held \(took) inotify instances")
            return try #require(started.json["id"] as? String)
        }
        let own = try hogRun([])
        let beside = try agent(harness, probe)
        #expect(beside.keyValues["inotify"] == "ok", "a run beside the hog: \(beside.standardOutput)")
        _ = try harness.run(["kill", own])
        let shared = try hogRun(["--user", "2000065535"])
        let sharing = try agent(harness, probe, flags: ["--user", "2000065535"])
        #expect(sharing.keyValues["inotify"] == "exhausted", "one uid, one allowance")
        _ = try harness.run(["kill", shared])
    }

    /// When a kernel resource the supervisor uses is short (here: every inotify instance of root's is
    /// taken, as an agent running as root once did), a new run is not refused: its tripwires are
    /// compared on every tick instead of notified, the run says so, and a tamper is still recorded.
    @Test func aShortKernelResourceDegradesTripwiresInsteadOfRefusingTheRun() throws {
        let harness = try WardenHarness()
        try harness.write("#!/bin/sh\nkill 1\n", to: harness.workspace + "/shutdown.sh")
        var held: [Int32] = []
        while held.count < 4096 {
            let fd = inotify_init1(Int32(IN_CLOEXEC))
            if fd < 0 { break }
            held.append(fd)
        }
        #expect(inotify_init1(Int32(IN_CLOEXEC)) < 0, "root's inotify instances are all taken")
        let started = try harness.run([
            "run", "--detach", "--json", "--workspace", harness.workspace, "--tripwire", "shutdown.sh", "--",
            "/bin/sh", "-c", "sleep 1; echo 'exit 0' > shutdown.sh; sleep 30",
        ])
        for fd in held { close(fd) }
        #expect(started.status == 0, "the run was refused: \(started.standardError)")
        #expect(started.standardError.contains("tripwires: watched by polling"), "\(started.standardError)")
        let id = try #require(started.json["id"] as? String)
        let warnings = try harness.events(id, kind: "warning")
        #expect(warnings.contains { $0["tripwires"] == "polling" }, "\(warnings)")
        #expect(
            try harness.waitUntil(timeout: 10) {
                try harness.events(id, kind: "tripwire").contains { $0["path"]?.hasSuffix("shutdown.sh") == true }
            }, "the tamper is still recorded")
        _ = try harness.run(["kill", id])
    }

    /// The operator's first `git status` in a workspace runs `core.fsmonitor`, `git checkout` runs the
    /// hooks. The repository's config, hooks and info are read-only for the agent; a `.git` of its own
    /// (the old one renamed away) and whatever else the host would run are named by the review.
    @Test func whatTheHostWouldRunIsReadOnlyOrReviewed() throws {
        let harness = try WardenHarness()
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        git.arguments = ["init", "-q", harness.workspace]
        try git.run()
        git.waitUntilExit()
        let result = try agent(
            harness,
            """
            git config core.fsmonitor 'touch /tmp/pwned' 2>/dev/null && echo config=written || echo config=refused
            echo 'touch /tmp/pwned' > .git/hooks/post-checkout 2>/dev/null && echo hook=written || echo hook=refused
            echo hi > tracked && git add tracked && git -c user.name=a -c user.email=a@b commit -q -m one && echo commit=ok
            mv .git .git-original && mkdir -p .git/hooks
            printf '[core]\n\tfsmonitor = touch /tmp/pwned\n[alias]\n\tst = !sh -c id\n' > .git/config
            printf '#!/bin/sh\ntouch /tmp/pwned\n' > .git/hooks/post-checkout && chmod +x .git/hooks/post-checkout
            mkfifo pipe; python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('sock')"
            echo planted=1
            """)
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        #expect(seen["config"] == "refused" && seen["hook"] == "refused", "\(seen)")
        #expect(seen["commit"] == "ok", "commits still work")
        #expect(seen["planted"] == "1")
        let runs =
            try JSONSerialization.jsonObject(
                with: Data(try harness.run(["ps", "--all", "--json"]).standardOutput.utf8)) as? [[String: Any]]
        let id = try #require(runs?.first?["id"] as? String)
        let review = try harness.events(id, kind: "workspace.review").first?["findings"] ?? ""
        for expected in [
            ".git/config: core.fsmonitor", ".git/config: alias.st", ".git/hooks/post-checkout: git hook", "pipe: FIFO",
            "sock: socket",
        ] {
            #expect(review.contains(expected), "review names \(expected): \(review)")
        }
        let inspect = try harness.run(["inspect", id]).standardOutput
        #expect(inspect.contains("review:      .git/config: core.fsmonitor"), "\(inspect)")
    }

    @Test func readAddsExactlyOnePath() throws {
        let harness = try WardenHarness()
        let tools = harness.outside + "/tools"
        let sibling = harness.outside + "/sibling"
        for directory in [tools, sibling] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try harness.write("tool\n", to: tools + "/t.txt")
        try harness.write("sibling\n", to: sibling + "/s.txt")
        let script = "echo tool=$(cat \(tools)/t.txt 2>/dev/null); echo sibling=$(cat \(sibling)/s.txt 2>/dev/null)"
        let without = try agent(harness, script).keyValues
        #expect(without["tool"] == "" && without["sibling"] == "", "outside paths are not in the default view")
        let with = try agent(
            harness, script + "; echo x > \(tools)/w 2>/dev/null || echo write=denied", flags: ["--read", tools])
        let seen = with.keyValues
        #expect(seen["tool"] == "tool")
        #expect(seen["sibling"] == "", "--read added its path only")
        #expect(seen["write"] == "denied", "--read is read-only")
    }

    @Test func theHostViewAndRootAreExplicitRecordedDowngrades() throws {
        let harness = try WardenHarness()
        let result = try agent(
            harness, "echo uid=$(id -u); test -d /var/lib && echo var=yes",
            flags: ["--view", "host", "--allow-degraded", "root"])
        #expect(result.status == 0, "\(result.standardError)")
        let seen = result.keyValues
        #expect(seen["uid"] == "0" && seen["var"] == "yes")
        #expect(result.standardError.contains("--view host") && result.standardError.contains("--allow-degraded root"))
        let runs =
            try JSONSerialization.jsonObject(
                with: Data(try harness.run(["ps", "--all", "--json"]).standardOutput.utf8)) as? [[String: Any]]
        let id = try #require(runs?.first?["id"] as? String)
        let warnings = try harness.events(id).filter { $0["kind"] as? String == "warning" }.compactMap {
            $0["subject"] as? String
        }
        #expect(Set(warnings).isSuperset(of: ["view", "identity"]), "\(warnings)")
        let layers = try harness.events(id, kind: "layer.degraded").compactMap { $0["layer"] }
        #expect(Set(layers).isSuperset(of: ["view", "identity"]), "\(layers)")
    }

    @Test func explainPrintsTheSandboxAndStartsNothing() throws {
        let harness = try WardenHarness()
        let result = try harness.run([
            "run", "--explain", "--json", "--read", harness.outside, "--workspace", harness.workspace, "--",
            "/bin/true",
        ])
        #expect(result.status == 0, "\(result.standardError)")
        let json = result.json
        #expect((json["identity"] as? String)?.contains("2000000000") == true)
        #expect((json["readable"] as? [String])?.contains(harness.outside) == true)
        #expect(
            (json["hidden"] as? [String])?.contains("/etc/shadow")
                == FileManager.default.fileExists(atPath: "/etc/shadow"))
        #expect(
            (json["environment"] as? [String: String])?["PATH"]
                == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: harness.stateDirectory + "/runs")) ?? []
        #expect(runs.isEmpty)
    }
}
