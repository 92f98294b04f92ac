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
