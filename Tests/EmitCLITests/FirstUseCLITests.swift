import EmitContract
import EmitTestSupport
import Foundation
import Testing

/// What a new user meets first: everything emit run can check is checked before the command
/// starts (exit 125, the command never run), and read-only commands do not invent state.
@Suite struct FirstUseCLITests {
    static let noMeters = ["EMIT_NVML_LIBRARY": "/nonexistent/libnvidia-ml.so.1", "EMIT_POWERCAP_ROOT": "/nonexistent", "EMIT_NODE_ID": "n"]

    /// Runs `emit run ARGS -- touch MARKER` and says whether the command ran.
    func run(_ arguments: [String], in dir: TemporaryDirectory, environment: [String: String] = noMeters) throws -> (ProcessResult, ran: Bool) {
        let marker = dir.file("ran-\(UUID().uuidString)")
        let result = try Programs.run(Programs.emit, ["run"] + arguments + ["--", "touch", marker],
                                      environment: environment.merging(["EMIT_HOME": dir.file("home")]) { $1 })
        return (result, FileManager.default.fileExists(atPath: marker))
    }

    @Test(arguments: [
        ("", "--run-id must not be empty"),
        (String(repeating: "r", count: 300), "--run-id has 300 characters; at most 256 are allowed"),
        ("line\nbreak", "--run-id must not contain control characters"),
    ])
    func aRunIDTheContractRefusesStopsBeforeTheCommand(runID: String, message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (result, ran) = try run(["--run-id", runID, "--out", "-"], in: dir)
        #expect(result.status == 125)
        #expect(!ran, "the command must not run")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func anOutTargetThatCannotBeWrittenStopsBeforeTheCommand() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (folder, ranInFolder) = try run(["--run-id", "r", "--out", dir.path], in: dir)
        #expect(folder.status == 125 && !ranInFolder)
        #expect(folder.stderr.contains("is a directory"), "\(folder.stderr)")
        let (missing, ranMissing) = try run(["--run-id", "r", "--out", dir.file("no/such/dir/e.jsonl")], in: dir)
        #expect(missing.status == 125 && !ranMissing)
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("no")), "no folder is created")
    }

    @Test func aNamedSourceThatCannotBeReadStopsBeforeTheCommand() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (named, ran) = try run(["--run-id", "r", "--source", "nvml", "--out", "-"], in: dir)
        #expect(named.status == 125 && !ran)
        #expect(named.stderr.contains("--source nvml cannot be read here") && named.stderr.contains("NVML library not found"), "\(named.stderr)")
        // Without --source nothing is named: the command runs and nothing is invented.
        let (all, ranAll) = try run(["--run-id", "r", "--out", "-"], in: dir)
        #expect(all.status == 0 && ranAll)
        #expect(all.stdout.isEmpty)
    }

    @Test func durationsAndAForgottenSeparatorAreExplained() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for (value, message) in [("0s", "--interval: 0s must be greater than zero"), ("-1s", "--interval: -1s must be greater than zero"),
                                 ("soon", "is not a duration")] {
            let (result, ran) = try run(["--run-id", "r", "--interval", value, "--out", "-"], in: dir)
            #expect(result.status == 125 && !ran)
            #expect(result.stderr.contains(message), "\(result.stderr)")
        }
        let forgot = try Programs.run(Programs.emit, ["run", "--run-id", "r", "sleep", "1"], environment: Self.noMeters)
        #expect(forgot.status == 125)
        #expect(forgot.stderr.contains("the command to meter goes after --"), "\(forgot.stderr)")
        let help = try Programs.run(Programs.emit, ["outbox", "flush", "--help"])
        #expect(help.stdout.contains("--batch <N>"), "\(help.stdout)")
    }

    @Test func readOnlyOutboxCommandsDoNotCreateAnOutbox() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let typo = dir.file("typo.sqlite")
        for arguments in [["outbox", "status", "--outbox", typo], ["outbox", "export", "--outbox", typo],
                          ["outbox", "flush", "--outbox", typo, "--to", "http://127.0.0.1:9"]] {
            let result = try Programs.run(Programs.emit, arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.contains("does not exist"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: typo))
    }
}

/// Servers and clients: safe by default, clear when the network says no.
@Suite struct NetworkFirstUseCLITests {
    @Test func theReceiverRefusesToStartUnsafelyOrOnABadPath() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let port = try StaticHTTPServer.freePort()
        let db = dir.file("r.sqlite")
        let open = try Programs.run(Programs.emit, ["receive", "--db", db, "--listen", "0.0.0.0:\(port)"])
        #expect(open.status == 2)
        #expect(open.stderr.contains("--token-file"), "\(open.stderr)")
        let remote = try Programs.run(Programs.emit, ["receive", "--db", db, "--listen", "0.0.0.0:\(port)", "--allow-unauthenticated"])
        #expect(remote.status == 2)
        #expect(remote.stderr.contains("only on a loopback address"), "\(remote.stderr)")
        let folder = dir.file("no/such/dir")
        let missing = try Programs.run(Programs.emit, ["receive", "--db", folder + "/r.sqlite", "--listen", "127.0.0.1:\(port)", "--allow-unauthenticated"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("no")), "no folder is created")
        #expect(!FileManager.default.fileExists(atPath: db), "nothing is left behind by a refused start")
        // A port another process holds: said in words, exit 2, no database left behind.
        let holder = try StaticHTTPServer(files: ["x": "x"])
        defer { holder.stop() }
        let busy = try Programs.run(Programs.emit, ["receive", "--db", db, "--listen", "127.0.0.1:\(holder.port)", "--allow-unauthenticated"])
        #expect(busy.status == 2)
        #expect(busy.stderr.contains("127.0.0.1:\(holder.port) is already in use"), "\(busy.stderr)")
        #expect(!busy.stderr.contains("errno"), "\(busy.stderr)")
        #expect(!FileManager.default.fileExists(atPath: db))
    }

    @Test func theIngestSpecIsValidOpenAPIAndTheReceiverAnswersAsItSays() throws {
        let check = try Programs.run("/usr/bin/env", ["python3", "-m", "openapi_spec_validator", Repository.path("docs/openapi.yaml")])
        if check.stderr.contains("No module named") {
            if Programs.peersRequired { Issue.record("openapi-spec-validator is required (EMIT_REQUIRE_PEERS=1)") }
        } else {
            #expect(check.status == 0 && check.stdout.contains("OK"), "\(check.stdout)\(check.stderr)")
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let port = try StaticHTTPServer.freePort()
        let receiver = try BackgroundProcess(Programs.emit, ["receive", "--db", dir.file("r.sqlite"), "--listen", "127.0.0.1:\(port)", "--allow-unauthenticated"],
                                             log: dir.file("r.log"))
        defer { receiver.kill9() }
        #expect(receiver.waitForPort(port), "\(receiver.output)")
        let url = "http://127.0.0.1:\(port)/v1/events"
        // A line that is not an event: 200, rejected with invalid_json, as the spec says.
        let garbage = HTTP.request(url, method: "POST", body: Data("garbage\n".utf8))
        #expect(garbage.status == 200)
        #expect(garbage.text.contains("invalid_json"), "\(garbage.text)")
        // A body that is not JSON Lines at all (not UTF-8): 400.
        let binary = HTTP.request(url, method: "POST", body: Data([0xFF, 0xFE, 0x00, 0x0A]))
        #expect(binary.status == 400, "\(binary.text)")
    }

    @Test func anUnauthenticatedLoopbackReceiverStartsWithAWarning() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let port = try StaticHTTPServer.freePort()
        let receiver = try BackgroundProcess(Programs.emit, ["receive", "--db", dir.file("r.sqlite"), "--listen", "127.0.0.1:\(port)", "--allow-unauthenticated"],
                                             log: dir.file("r.log"))
        defer { receiver.kill9() }
        #expect(receiver.waitForPort(port), "\(receiver.output)")
        #expect(receiver.output.contains("warning: no --token-file"), "\(receiver.output)")
    }

    @Test func aRefusedConnectionFailsAtOnceAndSaysSo() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let closed = try StaticHTTPServer.freePort()
        let environment = ["EMIT_HOME": dir.file("home")]
        #expect(try Programs.run(Programs.emit, ["outbox", "add", Repository.path("fixtures/conformance/valid/gpu-nvml.json")], environment: environment).status == 0)
        let started = Date()
        let flush = try Programs.run(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(closed)", "--give-up-after", "1s"], environment: environment)
        let took = Date().timeIntervalSince(started)
        #expect(flush.status == 3, "\(flush.stderr)")
        #expect(flush.stderr.contains("connection refused"), "\(flush.stderr)")
        #expect(!flush.stderr.contains("errno"), "\(flush.stderr)")
        #expect(took < 5, "--give-up-after 1s is honoured to within one attempt (took \(took) s)")
        let sensors = try Programs.run(Programs.emit, ["sensors", "--source", "dcgm", "--dcgm-url", "http://127.0.0.1:\(closed)/metrics", "--watch", "0s"])
        #expect(sensors.stdout.contains("connection refused"), "\(sensors.stdout)")
        #expect(!sensors.stdout.contains("errno"), "\(sensors.stdout)")
    }
}

/// When the sink still fails at the very end, nothing measured is lost.
@Suite struct LateFailureCLITests {
    @Test func eventsThatCannotBeStoredArePrintedAndTheExitCodeSaysSo() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        // A GPU that reports power only: the run certainly has an event to store.
        let fake = try FakeNVML(gpus: [FakeNVML.GPU(uuid: "GPU-full", powerMilliwatts: 90_000)])
        defer { fake.state.remove() }
        let environment = fake.environment.merging(["EMIT_POWERCAP_ROOT": "/nonexistent", "EMIT_NODE_ID": "n"]) { $1 }
        // /dev/full accepts the open and refuses every write with ENOSPC, as a full disk does.
        let result = try Programs.run(Programs.emit, ["run", "--run-id", "r-full", "--interval", "50ms", "--out", "/dev/full", "--", "sleep", "0.2"],
                                      environment: environment)
        #expect(result.status == 1, "the command succeeded; emit failed to store its events: \(result.stderr)")
        #expect(result.stderr.contains("No space left on device") && result.stderr.contains("printed above"), "\(result.stderr)")
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
        let events = try lines.map { try EnergyEvent(validating: try JSONParser.parse(String($0))) }
        #expect(events.map(\.deviceID) == ["GPU-full"], "the events are on stderr as JSON Lines")
        #expect(!result.stderr.contains("CommandFailure("), "\(result.stderr)")
    }
}
