import EmitContract
import EmitTestSupport
import Foundation
import Testing

/// `emit run` and `emit sensors` through the built binary, against powercap trees in the real
/// layout and a stand-in NVML library. The metered command itself changes the counters, so
/// every expectation is exact.
@Suite struct RunCLITests {
    static let noGPU = ["EMIT_NVML_LIBRARY": "/nonexistent/libnvidia-ml.so.1", "EMIT_NODE_ID": "node-test"]

    func events(_ path: String) throws -> [EnergyEvent] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try EnergyEvent(validating: try JSONParser.parse(String($0)))
        }
    }

    @Test func raplEnergyIsExactWithWrapsDuplicatesAndAVanishingZone() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [
            .init("intel-rapl:0", "package-0", energy: 1_000_000),
            .init("intel-rapl:0:0", "core", energy: 7),
            .init("intel-rapl:0:1", "dram", energy: 200_000),
            .init("intel-rapl:1", "package-1", energy: 99_000_000, range: 100_000_000),
            .init("intel-rapl:1:0", "dram", energy: 300_000),
            .init("intel-rapl:2", "psys", energy: 5),
            .init("intel-rapl-mmio:0", "package-0", energy: 42),
        ])
        let out = dir.file("events.jsonl")
        let script = """
            \(Shell.replace(tree.energyFile("intel-rapl:0"), with: 3500000))
            \(Shell.replace(tree.energyFile("intel-rapl:0:1"), with: 450000))
            \(Shell.replace(tree.energyFile("intel-rapl:1"), with: 1500000))
            \(Shell.replace(tree.energyFile("intel-rapl:1:0"), with: 400000))
            sleep 0.4
            rm '\(tree.energyFile("intel-rapl:1:0"))'
            sleep 0.2
            """
        let env = Self.noGPU.merging(["EMIT_POWERCAP_ROOT": tree.root]) { $1 }
        let result = try Programs.run(Programs.emit, ["run", "--run-id", "asg-1/run-1", "--interval", "50ms", "--out", out, "--", "sh", "-c", script], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let byDevice = Dictionary(uniqueKeysWithValues: try events(out).map { ($0.deviceID ?? "", $0) })
        #expect(Set(byDevice.keys) == ["package-0", "package-0/dram", "package-1", "package-1/dram"])
        #expect(byDevice["package-0"]?.energyJoules == 2.5)
        #expect(byDevice["package-0/dram"]?.energyJoules == 0.25)
        #expect(byDevice["package-1"]?.energyJoules == 2.5, "wrapped at 100 J: 99 J -> 100 J -> 1.5 J")
        #expect(byDevice["package-1"]?.json["measurement"]?["counter_wraps"] == .number(1))
        #expect(byDevice["package-1/dram"]?.energyJoules == 0.1)
        let lostCoverage = try #require(byDevice["package-1/dram"]?.json["measurement"]?["coverage"]?.numberValue)
        #expect(lostCoverage < 0.9 && lostCoverage > 0.3, "the vanished zone covers only what was observed: \(lostCoverage)")
        #expect(byDevice["package-0"]?.json["measurement"]?["coverage"] == .number(1))
        #expect(byDevice.values.allSatisfy { $0.json["producer"]?["node_id"] == .string("node-test") && !$0.pueApplied })
        #expect(result.stderr.contains("COVERAGE"))
        #expect(result.stderr.contains("1 wrap(s)"))
        #expect(result.stderr.contains("failed read(s)"))
    }

    @Test func gpuEnergyThroughNVMLWithAResetMidRun() throws {
        let fake = try FakeNVML(gpus: [FakeNVML.GPU(uuid: "GPU-aaaa", energyMillijoules: 1_000),
                                       FakeNVML.GPU(uuid: "GPU-bbbb", energyMillijoules: 50_000),
                                       FakeNVML.GPU(uuid: "GPU-none")])
        defer { fake.state.remove() }
        let out = fake.file("events.jsonl")
        let script = """
            \(Shell.replace(fake.file("gpu0/energy_mj"), with: 4000))
            \(Shell.replace(fake.file("gpu1/energy_mj"), with: 60000))
            sleep 0.3
            \(Shell.replace(fake.file("gpu1/energy_mj"), with: 500))
            sleep 0.3
            """
        let env = fake.environment.merging(["EMIT_POWERCAP_ROOT": "/nonexistent", "EMIT_NODE_ID": "node-gpu"]) { $1 }
        let result = try Programs.run(Programs.emit, ["run", "--run-id", "r-gpu", "--interval", "50ms", "--out", out, "--", "sh", "-c", script], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let byDevice = Dictionary(uniqueKeysWithValues: try events(out).map { ($0.deviceID ?? "", $0) })
        #expect(Set(byDevice.keys) == ["GPU-aaaa", "GPU-bbbb"])
        #expect(byDevice["GPU-aaaa"]?.energyJoules == 3)
        #expect(byDevice["GPU-aaaa"]?.source == .nvml)
        #expect(byDevice["GPU-aaaa"]?.json["device"]?["index"] == .number(0))
        #expect(byDevice["GPU-bbbb"]?.energyJoules == 10.5, "10 J before the reset, 0.5 J counted from zero after it")
        #expect(byDevice["GPU-bbbb"]?.json["measurement"]?["counter_resets"] == .number(1))
        let coverage = try #require(byDevice["GPU-bbbb"]?.json["measurement"]?["coverage"]?.numberValue)
        #expect(coverage < 1)
        #expect(result.stderr.contains("1 reset(s)"))
    }

    @Test func windowsTileTheRunAndAllValidate() throws {
        // A GPU that reports power only: every window is integrated power, whatever the timing.
        let fake = try FakeNVML(gpus: [FakeNVML.GPU(uuid: "GPU-w", powerMilliwatts: 120_000)])
        defer { fake.state.remove() }
        let out = fake.file("events.jsonl")
        let env = fake.environment.merging(["EMIT_POWERCAP_ROOT": "/nonexistent", "EMIT_NODE_ID": "node-test"]) { $1 }
        let result = try Programs.run(Programs.emit, ["run", "--run-id", "r-w", "--interval", "20ms", "--window", "100ms", "--out", out, "--", "sleep", "0.45"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let windows = try events(out)
        #expect(windows.count >= 4)
        for (a, b) in zip(windows, windows.dropFirst()) { #expect(a.window.to.text == b.window.from.text) }
        let total = windows.first.map { $0.window.from.seconds(until: windows.last?.window.to ?? $0.window.to) } ?? 0
        #expect(total > 0.44 && total < 1.5)
        for event in windows {
            #expect(abs(event.energyJoules / event.window.seconds - 120) < 120 * 1e-4)
            // NVML's power is in milliwatts: the window's energy is known to 1 mW × its length.
            let resolution = try #require(event.json["measurement"]?["resolution_joules"]?.numberValue)
            #expect(abs(resolution - 0.001 * event.window.seconds) < 1e-6)
        }
    }

    @Test func exitCodesAreTheCommandsOrTheSignalsOr125() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let out = dir.file("e.jsonl")
        let env = Self.noGPU.merging(["EMIT_POWERCAP_ROOT": "/nonexistent"]) { $1 }
        func run(_ args: [String]) throws -> ProcessResult {
            try Programs.run(Programs.emit, ["run", "--run-id", "r"] + args, environment: env)
        }
        #expect(try run(["--out", out, "--", "sh", "-c", "exit 3"]).status == 3)
        #expect(try run(["--out", out, "--", "sh", "-c", "kill -TERM $$"]).status == 128 + 15)
        let missing = try run(["--out", out, "--", "/nonexistent/command"])
        #expect(missing.status == 125)
        #expect(missing.stderr.contains("cannot start /nonexistent/command"))
        #expect(try run(["--interval", "soon", "--out", out, "--", "true"]).status == 125)
        #expect(try Programs.run(Programs.emit, ["run", "--out", out, "--", "true"], environment: env).status == 125, "missing --run-id")
        let noMeter = try run(["--out", out, "--", "true"])
        #expect(noMeter.status == 0)
        #expect(noMeter.stderr.contains("no physical meter is available"))
        #expect(!FileManager.default.fileExists(atPath: out), "nothing is invented when nothing is metered")
    }

    @Test func aCounterThatNeverMovesIsNotReportedAsZeroJoules() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 5), .init("intel-rapl:1", "package-1", energy: 0)])
        let out = dir.file("events.jsonl")
        let env = Self.noGPU.merging(["EMIT_POWERCAP_ROOT": tree.root]) { $1 }
        // package-1 holds, jumps 2 J, holds, jumps 2 J: it shows energy in 2 J steps.
        // Holds long enough (400 ms against 20 ms samples) that a loaded machine still sees both steps.
        let stepping = "sleep 0.1; \(Shell.replace(tree.energyFile("intel-rapl:1"), with: 2000000)); sleep 0.4; \(Shell.replace(tree.energyFile("intel-rapl:1"), with: 4000000)); sleep 0.3"
        let result = try Programs.run(Programs.emit, ["run", "--run-id", "r-still", "--interval", "20ms", "--out", out, "--", "sh", "-c", stepping], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        // package-0 never moved and RAPL reports no power: evidence of nothing, so no event, and
        // the summary says why. package-1's 4 J in 2 J steps is no better: not measured either.
        #expect(!FileManager.default.fileExists(atPath: out), "nothing is invented")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.contains { $0.contains("package-0") && $0.contains("not reported as measured: the counter did not advance") }, "\(result.stderr)")
        #expect(lines.contains { $0.contains("package-1") && $0.contains("the counter counted 4 J and it was seen to jump by 2 J, more than 1% of it") },
                "\(result.stderr)")
    }

    @Test func aStaleExporterCounterIsIntegratedFromItsPower() throws {
        // dcgm-exporter serves values it refreshed up to 30 s ago: a short run reads one counter
        // value at start and end, beside a positive power reading. That is never 0 J.
        let scrape = try Repository.text("Tests/EmitMetersTests/Fixtures/dcgm-exporter-mig.prom")
        let server = try StaticHTTPServer(files: ["metrics": scrape])
        defer { server.stop() }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let out = dir.file("events.jsonl")
        let env = Self.noGPU.merging(["EMIT_POWERCAP_ROOT": "/nonexistent"]) { $1 }
        let result = try Programs.run(Programs.emit, ["run", "--run-id", "r-dcgm", "--source", "dcgm", "--dcgm-url", server.url("metrics").absoluteString,
                                                      "--interval", "100ms", "--out", out, "--", "sleep", "0.6"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let byDevice = Dictionary(uniqueKeysWithValues: try events(out).map { ($0.deviceID ?? "", $0) })
        for (id, watts) in [("GPU-8c1b6f4e-2d3a-4b5c-9e7f-0a1b2c3d4e5f", 261.482), ("GPU-1f2e3d4c-5b6a-4798-8a9b-cdef01234567", 88.013)] {
            let event = try #require(byDevice[id])
            #expect(event.json["measurement"]?["method"] == .string("power_integration"))
            #expect(abs(event.energyJoules / event.window.seconds - watts) < watts * 0.02, "\(event.energyJoules) J in \(event.window.seconds) s")
        }
        #expect(result.stderr.contains("power ±"))
    }

    @Test func sensorsSayWhatAWindowWouldRestOn() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 1)])
        let env = Self.noGPU.merging(["EMIT_POWERCAP_ROOT": tree.root]) { $1 }
        let result = try Programs.run(Programs.emit, ["sensors", "--watch", "200ms", "--json"], environment: env)
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines))
        guard case let .array(devices)? = report["devices"] else { Issue.record("bad sensors JSON: \(result.stdout)"); return }
        // The stand-in counter never moves, and RAPL has no power reading: nothing measured, and why.
        #expect(devices.first?["evidence"] == .null)
        #expect(devices.first?["withheld"]?.stringValue?.hasPrefix("the counter did not advance") == true)
        let table = try Programs.run(Programs.emit, ["sensors", "--watch", "200ms"], environment: env)
        #expect(table.stdout.contains("EVIDENCE") && table.stdout.contains("not measured over the watch:"), "\(table.stdout)")
    }

    @Test func signalsAreForwardedAndTheWindowIsStillEmitted() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 0)])
        let out = dir.file("events.jsonl")
        let marker = dir.file("child-got-signal")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Programs.emit)
        process.arguments = ["run", "--run-id", "r-sig", "--interval", "50ms", "--out", out, "--",
                             "sh", "-c", "trap 'echo INT > \(marker); exit 130' INT; \(Shell.replace(tree.energyFile("intel-rapl:0"), with: 2000000)); while true; do sleep 0.05; done"]
        process.environment = ProcessInfo.processInfo.environment.merging(Self.noGPU.merging(["EMIT_POWERCAP_ROOT": tree.root]) { $1 }) { $1 }
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 0.6)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(FileManager.default.fileExists(atPath: marker), "the command received the forwarded SIGINT")
        let emitted = try events(out)
        #expect(emitted.count == 1)
        #expect(emitted.first?.energyJoules == 2)
    }

    @Test func sensorsNameEveryDeviceAndEveryReason() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 1), .init("intel-rapl:0:0", "dram", energy: 1)])
        let fake = try FakeNVML(gpus: [FakeNVML.GPU(uuid: "GPU-aaaa", energyMillijoules: 1), FakeNVML.GPU(uuid: "GPU-old")])
        defer { fake.state.remove() }
        let env = fake.environment.merging(["EMIT_POWERCAP_ROOT": tree.root]) { $1 }
        let result = try Programs.run(Programs.emit, ["sensors", "--json"], environment: env)
        #expect(result.status == 0)
        let report = try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines))
        guard case let .array(devices)? = report["devices"], case let .array(unavailable)? = report["unavailable"] else {
            Issue.record("bad sensors JSON: \(result.stdout)")
            return
        }
        #expect(devices.map { "\($0["source"]?.stringValue ?? ""):\($0["class"]?.stringValue ?? ""):\($0["id"]?.stringValue ?? "")" }
                == ["rapl:cpu_package:package-0", "rapl:dram:package-0/dram", "nvml:gpu:GPU-aaaa"])
        #expect(unavailable.contains { $0["id"]?.stringValue == "GPU-old" && $0["reason"]?.stringValue?.contains("cannot be metered") == true })
        let human = try Programs.run(Programs.emit, ["sensors"], environment: ["EMIT_POWERCAP_ROOT": "/nonexistent", "EMIT_NVML_LIBRARY": "/nonexistent/lib.so"])
        #expect(human.stdout.contains("NVML library not found: /nonexistent/lib.so"))
    }
}
