import EmitContract
import EmitTestSupport
import Foundation
import Testing

/// The stable command surface (CLI.md), driven through the built binary the way a script does.
@Suite struct ValidateCLITests {
    func emit(_ args: [String], stdin: String? = nil, cwd: String? = nil) throws -> ProcessResult {
        try Programs.run(Programs.emit, args, stdin: stdin, cwd: cwd)
    }

    @Test func validFilesExitZeroWithACount() throws {
        let result = try emit(["validate", Repository.path("examples/run-node-a17.jsonl"), Repository.path("fixtures/conformance/valid/gpu-nvml.json")])
        #expect(result.status == 0)
        #expect(result.stdout == "7 valid, 0 invalid\n")
    }

    @Test func invalidEventsArePrintedWithFileLineAndCode() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let good = try Repository.text("fixtures/conformance/invalid/bad-channel.jsonl").replacingOccurrences(of: "\"telemetry\"", with: "\"emit\"")
        let bad = try Repository.text("fixtures/conformance/invalid/bad-energy-negative.jsonl")
        let file = try tree.write("e.jsonl", "\(bad)\n\(good.isEmpty ? "" : "")not json\n")
        let result = try emit(["validate", file])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(file):1: bad_energy: energy_joules: must be >= 0 joules, got -5"))
        #expect(lines.contains { $0.hasPrefix("\(file):3: invalid_json: ") })
        #expect(lines.last == "0 valid, 2 invalid")
    }

    @Test func stdinAndJSONArraysArePositional() throws {
        let valid = try Repository.text("fixtures/conformance/valid/token-system.json")
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let array = try tree.write("a.json", "[\(valid), {\"kind\": 1}]")
        let result = try emit(["validate", array])
        #expect(result.status == 1)
        #expect(result.stdout.contains("\(array):2: wrong_type: kind: must be a string, not an integer"))
        let piped = try emit(["validate"], stdin: String(decoding: try JSONParser.parse(valid).jsonLineBytes, as: UTF8.self) + "\n\n")
        #expect(piped.status == 0)
        #expect(piped.stdout == "1 valid, 0 invalid\n")
    }

    @Test func unreadableFileExitsTwo() throws {
        let result = try emit(["validate", "/nonexistent/events.jsonl"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("/nonexistent/events.jsonl"))
    }

    @Test func usageErrorsExitTwo() throws {
        #expect(try emit(["validate", "--bogus"]).status == 2)
        #expect(try emit(["frobnicate"]).status == 2)
        let help = try emit(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("validate"))
    }
}

@Suite struct CheckCLITests {
    @Test func theRepositoryChecksClean() throws {
        let result = try Programs.run(Programs.emit, ["check"], cwd: Repository.root.path)
        #expect(result.status == 0, "\(result.stdout)")
    }

    @Test func aBrandInAFixtureFailsWithFileAndLine() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let valid = try Repository.text("fixtures/conformance/valid/gpu-nvml.json")
        let file = try tree.write("fixtures/conformance/valid/gpu.json", valid.replacingOccurrences(of: "\"name\": \"emit\"", with: "\"name\": \"emit\",\n  \"comment\": \"openai\""))
        let result = try Programs.run(Programs.emit, ["check", tree.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("\(file):"))
        #expect(result.stdout.contains(": brand_name: column"))
        #expect(result.stdout.contains(": unknown_field: producer.comment"))
    }
}

@Suite struct ModelCLITests {
    let base = ["model", "--run-id", "asg-1/run-7", "--profile", "managed-balanced-v1", "--input-tokens", "1000",
                "--output-tokens", "200", "--from", "2026-11-27T09:00:00Z", "--to", "2026-11-27T09:00:30.25Z"]

    @Test func emitsOneValidModeledEvent() throws {
        let result = try Programs.run(Programs.emit, base + ["--out", "-"])
        #expect(result.status == 0, "\(result.stderr)")
        let event = try EnergyEvent(validating: try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines)))
        #expect(event.source == .tokenModel && event.provenance == .modeled)
        #expect(abs(event.energyJoules - 132) < 1e-9)
        #expect(!event.pueApplied)
        #expect(event.computeAssignmentRunID == "asg-1/run-7")
    }

    @Test func appendsToAFile() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let out = tree.file("events.jsonl")
        #expect(try Programs.run(Programs.emit, base + ["--out", out]).status == 0)
        #expect(try Programs.run(Programs.emit, base.map { $0 == "managed-balanced-v1" ? "managed-large-v1" : $0 } + ["--out", out]).status == 0)
        let validate = try Programs.run(Programs.emit, ["validate", out])
        #expect(validate.stdout == "2 valid, 0 invalid\n")
    }

    @Test(arguments: [
        ["--profile", "managed-unknown-v1"],
        ["--input-tokens=-1"],
        ["--to", "2026-11-27T08:59:59Z"],
        ["--to", "2026-11-27T09:00:00Z"],
        ["--from", "yesterday"],
    ])
    func badArgumentsWriteNothing(change: [String]) throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let out = tree.file("events.jsonl")
        var args = base
        for (i, arg) in change.enumerated() where arg.hasPrefix("--") {
            let name = arg.split(separator: "=")[0]
            if let at = args.firstIndex(of: String(name)) { args.removeSubrange(at...at + 1) }
            if arg.contains("=") { args.append(arg) } else { args += [arg, change[i + 1]] }
        }
        let result = try Programs.run(Programs.emit, args + ["--out", out])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(!result.stderr.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func anotherCoefficientTableCanBeUsed() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let table = try tree.write("c.json", """
            {"table_version": "t1", "profiles": [{"profile_id": "site-measured-v2", "model_family": "general-text", "model_tier": "small",
             "joules_per_input_token": 0.01, "joules_per_output_token": 0.1, "scope": "facility", "confidence": "high",
             "citation": "site measurement campaign 2026-10"}]}
            """)
        let args = base.map { $0 == "managed-balanced-v1" ? "site-measured-v2" : $0 } + ["--coefficients", table, "--out", "-"]
        let result = try Programs.run(Programs.emit, args)
        #expect(result.status == 0, "\(result.stderr)")
        let event = try EnergyEvent(validating: try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines)))
        #expect(abs(event.energyJoules - 30) < 1e-9)
        #expect(event.pueApplied)
        let listed = try Programs.run(Programs.emit, ["coefficients", "--json", "--coefficients", table])
        #expect(try JSONParser.parse(listed.stdout.trimmingCharacters(in: .newlines))["table_version"] == .string("t1"))
    }

    @Test func coefficientsListsTheTable() throws {
        let result = try Programs.run(Programs.emit, ["coefficients", "--json"])
        #expect(result.status == 0)
        let table = try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines))
        guard case let .array(profiles)? = table["profiles"] else { Issue.record("no profiles"); return }
        #expect(profiles.count >= 4)
        let human = try Programs.run(Programs.emit, ["coefficients"])
        #expect(human.stdout.contains("managed-reasoning-v1"))
    }
}

extension JSONValue {
    var jsonLineBytes: [UInt8] { Array(JSONWriter.line(self).utf8) }
}
