import Testing
import WardenCore

struct DurationSpecTests {
    @Test(arguments: [
        ("500ms", Int64(500_000_000)), ("10s", 10_000_000_000), ("1.5s", 1_500_000_000), ("2m", 120_000_000_000),
        ("1h", 3_600_000_000_000), ("0", 0), ("3", 3_000_000_000), (" 5s ", 5_000_000_000), ("250us", 250_000),
    ])
    func parsesUnits(text: String, nanoseconds: Int64) throws {
        #expect(try DurationSpec.parse(text, field: "--grace").nanoseconds == nanoseconds)
    }

    @Test(arguments: ["", "soon", "-1s", "5 minutes", "1e3s", "s", "1..2s", "400d"])
    func rejectsGarbageNamingTheField(text: String) {
        #expect(throws: WardenError.self) { try DurationSpec.parse(text, field: "--grace") }
        do {
            _ = try DurationSpec.parse(text, field: "--grace")
        } catch let error as WardenError {
            #expect(error.message.hasPrefix("--grace:"))
            #expect(error.code == .invalidInput)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test(arguments: ["5s", "2m", "1h", "250ms", "0s"])
    func formatRoundTrips(text: String) throws {
        #expect(DurationSpec.format(try DurationSpec.parse(text, field: "x")) == text)
    }
}

struct ByteSizeTests {
    @Test(arguments: [
        ("512M", UInt64(512 << 20)), ("2G", 2 << 30), ("1.5GiB", 3 << 29), ("65536", 65536), ("64k", 64 << 10),
        ("1T", 1 << 40),
    ])
    func parses(text: String, bytes: UInt64) throws {
        #expect(try ByteSize(parsing: text, field: "--memory-max").bytes == bytes)
    }

    @Test func maxIsUnlimited() throws {
        #expect(try ByteSize(parsing: "max", field: "x") == .unlimited)
        #expect(ByteSize.unlimited.description == "max")
    }

    @Test(arguments: ["", "lots", "12X", "-5M", "0", "M"])
    func rejects(text: String) {
        #expect(throws: WardenError.self) { try ByteSize(parsing: text, field: "--memory-max") }
    }
}

struct RunIDTests {
    @Test func randomIDsAreValidAndDistinct() {
        let ids = (0..<1000).map { _ in RunID.random() }
        #expect(Set(ids).count == 1000)
        for id in ids { #expect(RunID(id.rawValue) == id) }
    }

    @Test(arguments: ["", "abc", "ABCDEF012345", "0123456789abc", "g12345678901", "../../etc/pa"])
    func rejectsMalformed(text: String) {
        #expect(RunID(text) == nil)
    }
}

struct ProfileTests {
    @Test func parsesEveryKey() throws {
        let text = """
            # comment
            name = "coder"
            workspace = "ws"
            network = "host"
            pids_max = 512
            memory_max = "1G"
            cpu_max = 1.5
            protect = ["a.txt", 'b.txt']
            hide = [
              "/secrets",  # trailing comment
            ]
            tripwire = ["shutdown.sh"]
            on_tamper = "stop"
            grace = "3s"
            lease = "10m"
            allow_degraded = ["landlock"]
            pass_env = ["OPENAI_API_KEY"]
            command = ["python3", "agent.py"]
            """
        let profile = try RunProfileOverrides(toml: text, file: "p.toml", baseDirectory: "/etc/profiles")
        #expect(profile.name == "coder")
        #expect(profile.workspace == "/etc/profiles/ws")
        #expect(profile.network == .host)
        #expect(profile.pidsMax == .limit(512))
        #expect(profile.memoryMax?.bytes == 1 << 30)
        #expect(profile.cpuMax == 1.5)
        #expect(profile.protect == ["a.txt", "b.txt"])
        #expect(profile.hide == ["/secrets"])
        #expect(profile.tripwires == ["shutdown.sh"])
        #expect(profile.onTamper == .stop)
        #expect(profile.grace == .seconds(3))
        #expect(profile.lease == .seconds(600))
        #expect(profile.allowDegraded == [.landlock])
        #expect(profile.passEnvironment == ["OPENAI_API_KEY"])
        #expect(profile.command == ["python3", "agent.py"])
    }

    @Test(arguments: [
        ("pids_max = 0\n", "p.toml:1: pids_max"),
        ("pids_max = true\n", "expected an integer number of processes"),
        ("bogus = 1\n", "p.toml:1: unknown key 'bogus'"),
        ("name = \"a\"\nname = \"b\"\n", "p.toml:2: key 'name' is defined twice"),
        ("name = \"a\" extra\n", "p.toml:1:"),
        ("[[tables]]\n", "arrays of tables"),
        ("grace = 5\n", "expected a string"),
        ("allow_degraded = [\"cgroup\"]\n", "cannot be degraded"),
        ("network = \"wifi\"\n", "'wifi' is not a network mode"),
    ])
    func errorsNameFileLineAndKey(text: String, mentions: String) {
        do {
            _ = try RunProfileOverrides(toml: text, file: "p.toml", baseDirectory: "/")
            Issue.record("accepted \(text)")
        } catch let error as WardenError {
            #expect(error.message.contains(mentions), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func flagsWinAndListsCombine() {
        var profile = RunProfileOverrides()
        profile.grace = .seconds(9)
        profile.protect = ["a"]
        profile.name = "p"
        var flags = RunProfileOverrides()
        flags.grace = .seconds(1)
        flags.protect = ["b", "a"]
        let merged = RunProfile().merged(with: profile).merged(with: flags)
        #expect(merged.grace == .seconds(1))
        #expect(merged.protect == ["a", "b"])
        #expect(merged.name == "p")
        #expect(merged.pidsMax == 4096, "defaults survive")
    }
}

struct AgentUserTests {
    @Test func autoIsAUidOfTheRunsOwnAndNumbersAreFixed() throws {
        #expect(try AgentUser(parsing: "auto", field: "--user") == .perRun)
        #expect(try AgentUser(parsing: " AUTO ", field: "--user") == .perRun)
        #expect(try AgentUser(parsing: "1000:1001", field: "--user") == .fixed(AgentIdentity(uid: 1000, gid: 1001)))
        #expect(RunProfile().user == .perRun, "the default is a uid of the run's own")
    }

    @Test(arguments: ["0", "0:0", "root", "-1", "1000:", "auto:1"])
    func rejectsRootAndGarbageNamingTheField(text: String) {
        #expect {
            _ = try AgentUser(parsing: text, field: "user")
        } throws: { ($0 as? WardenError)?.message.hasPrefix("user:") == true }
    }
}
