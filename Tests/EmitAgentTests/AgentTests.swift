import EmitContract
import EmitMeters
import EmitSessions
import EmitTestSupport
import Foundation
import Synchronization
import Testing
@testable import EmitAgent

/// Counters the test moves by hand: RAPL packages in µJ and GPUs in mJ.
final class HandMeter: EnergyMeter, @unchecked Sendable {
    let source: EnergySource
    let devices: [MeteredDevice]
    let problems: [MeterProblem] = []
    let longestSafeInterval: Double? = nil
    private let values: Mutex<[UInt64]>
    private let unitsPerJoule: Double

    init(source: EnergySource, devices: [Device]) {
        self.source = source
        self.devices = devices.map { MeteredDevice(source: source, device: $0) }
        values = Mutex(Array(repeating: 0, count: devices.count))
        unitsPerJoule = source == .rapl ? 1e6 : 1e3
    }

    /// Adds `joules` to device `index`.
    func add(_ joules: Double, to index: Int = 0) {
        values.withLock { $0[index] += UInt64((joules * unitsPerJoule).rounded()) }
    }

    func sample() -> [SampleValue] {
        values.withLock { $0 }.map { .counter(raw: $0, unitsPerJoule: unitsPerJoule, wrapRange: nil) }
    }

    func close() {}

    static func gpus(_ count: Int) -> HandMeter {
        HandMeter(source: .nvml, devices: (0..<count).map { Device(class: .gpu, id: "GPU-\($0)", index: $0) })
    }

    static func packages(_ count: Int) -> HandMeter {
        HandMeter(source: .rapl, devices: (0..<count).flatMap { [Device(class: .cpuPackage, id: "package-\($0)", index: $0),
                                                                 Device(class: .dram, id: "package-\($0)/dram", index: $0)] })
    }
}

@Suite(.serialized) struct AgentTests {
    func agent(_ dir: TemporaryDirectory, _ meters: [EnergyMeter]) throws -> Agent {
        let agent = try Agent(configuration: AgentConfiguration(stateDirectory: dir.path, nodeID: "node-1", interval: 3600, sharedRoundAge: 0), meters: meters)
        agent.start()
        return agent
    }

    @Test func aRunIsTheCounterDeltaBetweenItsBeginAndEnd() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(2)
        let agent = try agent(dir, [gpus])
        defer { agent.stop() }
        gpus.add(100)
        _ = try agent.begin(runID: "job/1", uid: 1000, scope: .init(), labels: ["queue": "batch"])
        gpus.add(250, to: 0)
        gpus.add(40, to: 1)
        let result = try agent.end(runID: "job/1", uid: 1000)
        #expect(result.events.map(\.energyJoules) == [250, 40])
        #expect(result.events.allSatisfy { $0.computeAssignmentRunID == "job/1" && $0.json["labels"]?["queue"] == .string("batch") })
        #expect(result.events.first?.json["labels"]?[Agent.sharedLabel] == nil, "one run alone on its devices")
        #expect(agent.openRuns(uid: 0).isEmpty)
    }

    @Test func onlyTheOwnerOrRootReadsOrEndsARun() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let agent = try agent(dir, [HandMeter.gpus(1)])
        defer { agent.stop() }
        _ = try agent.begin(runID: "r", uid: 1000, scope: .init(), labels: [:])
        #expect(throws: AgentError.self) { try agent.end(runID: "r", uid: 1001) }
        do { _ = try agent.show(runID: "r", uid: 1001) } catch { #expect(error.status == 403) }
        #expect(agent.openRuns(uid: 1001).isEmpty)
        #expect(try agent.show(runID: "r", uid: 0).uid == 1000)
        do { _ = try agent.begin(runID: "r", uid: 1000, scope: .init(), labels: [:]) } catch { #expect(error.status == 409) }
        do { _ = try agent.end(runID: "nope", uid: 0) } catch { #expect(error.status == 404) }
        do { _ = try agent.begin(runID: "", uid: 1, scope: .init(), labels: [:]) } catch { #expect(error.field == "run_id") }
        do { _ = try agent.begin(runID: "x", uid: 1, scope: .init(), labels: ["Bad Key": "v"]) } catch { #expect(error.field == "labels.Bad Key") }
        _ = try agent.end(runID: "r", uid: 0)
    }

    @Test func twoRunsOnOneDeviceAreEachLabeledAndNothingIsDivided() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(4)
        let agent = try agent(dir, [gpus])
        defer { agent.stop() }
        _ = try agent.begin(runID: "a", uid: 1, scope: .init(visibleDevices: "0,1"), labels: [:])
        gpus.add(10, to: 1)
        gpus.add(2, to: 0)
        _ = try agent.begin(runID: "b", uid: 2, scope: .init(devices: ["1", "2"]), labels: [:])
        gpus.add(5, to: 1)
        gpus.add(7, to: 2)
        let b = try agent.end(runID: "b", uid: 2)
        let a = try agent.end(runID: "a", uid: 1)
        let aByDevice = Dictionary(uniqueKeysWithValues: a.events.map { ($0.deviceID ?? "", $0) })
        let bByDevice = Dictionary(uniqueKeysWithValues: b.events.map { ($0.deviceID ?? "", $0) })
        #expect(Set(aByDevice.keys) == ["GPU-0", "GPU-1"])
        #expect(Set(bByDevice.keys) == ["GPU-1", "GPU-2"])
        #expect(aByDevice["GPU-1"]?.energyJoules == 15, "each run gets the whole device's energy over its own window")
        #expect(bByDevice["GPU-1"]?.energyJoules == 5)
        #expect(aByDevice["GPU-1"]?.json["labels"]?[Agent.sharedLabel] == .string("2"))
        #expect(bByDevice["GPU-1"]?.json["labels"]?[Agent.sharedLabel] == .string("2"))
        #expect(aByDevice["GPU-0"]?.json["labels"]?[Agent.sharedLabel] == nil)
        #expect(bByDevice["GPU-2"]?.json["labels"]?[Agent.sharedLabel] == nil)
        // GPU-3 was in no run; a device whose counter did not move is not reported as 0 J.
        #expect(a.withheld.isEmpty && b.withheld.isEmpty)
    }

    @Test func openRunsSurviveAKilledAgentAndTheDowntimeStillCounts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(1)
        let first = try agent(dir, [gpus])
        gpus.add(3)
        _ = try first.begin(runID: "long", uid: 1000, scope: .init(), labels: [:])
        gpus.add(20)
        try first.checkpoint()
        // Killed: no stop, nothing written after the last checkpoint. The GPU works on.
        gpus.add(30)
        let second = try agent(dir, [gpus])
        defer { second.stop() }
        #expect(second.openRuns(uid: 1000).map(\.runID) == ["long"])
        gpus.add(1)
        let result = try second.end(runID: "long", uid: 1000)
        #expect(result.events.first?.energyJoules == 51)
        #expect(result.events.first?.json["measurement"]?["counter_resets"] == .number(0))
        first.stop()
    }

    @Test func theJournalReplaysBeginsSharesAndEndsAndDropsALineCutShort() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(1)
        let first = try agent(dir, [gpus])
        _ = try first.begin(runID: "a", uid: 1, scope: .init(), labels: [:])
        _ = try first.begin(runID: "b", uid: 2, scope: .init(), labels: [:])
        _ = try first.begin(runID: "c", uid: 3, scope: .init(), labels: [:])
        _ = try first.end(runID: "b", uid: 2)
        // A crash in the middle of appending the next record, which was never acknowledged.
        let handle = try #require(FileHandle(forWritingAtPath: dir.file("agent-runs.jsonl")))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"begin":{"runID":"d","#.utf8))
        try handle.close()
        let replayed = try RunsJournal.replay(dir.file("agent-runs.jsonl"))
        #expect(Set(replayed.keys) == ["a", "c"])
        #expect(replayed["a"]?.sharedBy["nvml:GPU-0"] == 3, "a shared its GPU with b and c at once")
        first.stop()
        let second = try agent(dir, [gpus])
        defer { second.stop() }
        #expect(second.openRuns(uid: 0).map(\.runID) == ["a", "c"])
        let compacted = try String(contentsOfFile: dir.file("agent-runs.jsonl"), encoding: .utf8)
        #expect(compacted.split(separator: "\n").count == 2, "rewritten with the open runs only")
    }

    @Test func sharesAreWorkedOutOnReplayExactlyAsTheAgentCountedThem() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(2)
        let first = try agent(dir, [gpus])
        defer { first.stop() }
        let both = DeviceScope.Request(), zero = DeviceScope.Request(visibleDevices: "0"), one = DeviceScope.Request(visibleDevices: "1")
        _ = try first.begin(runID: "a", uid: 1, scope: both, labels: [:])
        _ = try first.begin(runID: "b", uid: 1, scope: zero, labels: [:])
        _ = try first.begin(runID: "c", uid: 1, scope: one, labels: [:])
        _ = try first.end(runID: "b", uid: 1)
        _ = try first.begin(runID: "d", uid: 1, scope: both, labels: [:])
        _ = try first.end(runID: "a", uid: 1, continuing: true)
        _ = try first.begin(runID: "e", uid: 1, scope: zero, labels: [:])
        _ = try first.end(runID: "c", uid: 1)
        let journal = try String(contentsOfFile: dir.file("agent-runs.jsonl"), encoding: .utf8)
        #expect(journal.split(separator: "\n").count == 8, "one record per begin or end, however many runs share")
        let live = first.openRuns(uid: 0)
        #expect(live.map(\.runID) == ["a", "d", "e"])
        #expect(live.first { $0.runID == "d" }?.sharedBy == ["nvml:GPU-0": 3, "nvml:GPU-1": 3])
        let replayed = try RunsJournal.replay(dir.file("agent-runs.jsonl"))
        #expect(Set(replayed.keys) == Set(live.map(\.runID)))
        for run in live { #expect(replayed[run.runID]?.sharedBy == run.sharedBy, "\(run.runID)") }
    }

    @Test func theCheckpointIsWrittenEveryIntervalWhileARunIsOpenAndOnceAMinuteIdle() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(1)
        let agent = try Agent(configuration: AgentConfiguration(stateDirectory: dir.path, nodeID: "node-1", interval: 0.05, sharedRoundAge: 0), meters: [gpus])
        agent.start()
        defer { agent.stop() }
        func newestSequence() -> Int {
            ["agent-sampler.1", "agent-sampler.2"].compactMap { name -> Int? in
                guard let text = try? String(contentsOfFile: dir.file(name), encoding: .utf8) else { return nil }
                let fields = text.prefix { $0 != "\n" }.split(separator: " ")
                return fields.count == 5 ? Int(fields[2]) : nil
            }.max() ?? 0
        }
        Thread.sleep(forTimeInterval: 0.6)
        #expect(newestSequence() == 1, "idle: written once at start, then once a minute")
        _ = try agent.begin(runID: "r", uid: 1, scope: .init(), labels: [:])
        Thread.sleep(forTimeInterval: 0.6)
        let open = newestSequence()
        #expect(open >= 4, "a run open: every 50 ms (\(open) writes)")
        _ = try agent.end(runID: "r", uid: 1)
        // Once the end is fsynced the writes stop (waited for: a loaded machine runs late).
        var settled = newestSequence()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.3)
            let now = newestSequence()
            if now == settled { break }
            settled = now
        }
        Thread.sleep(forTimeInterval: 0.6)
        #expect(newestSequence() == settled, "idle again once the end is fsynced")
    }

    @Test func aLongJournalIsRewrittenWithTheOpenRunsWhileTheAgentRuns() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gpus = HandMeter.gpus(1)
        let configuration = AgentConfiguration(stateDirectory: dir.path, nodeID: "node-1", interval: 0.1, sharedRoundAge: 0)
        let first = try Agent(configuration: configuration, meters: [gpus])
        first.start()
        _ = try first.begin(runID: "kept", uid: 1, scope: .init(), labels: [:])
        for index in 0..<(RunsJournal.compactAfter / 2) {
            _ = try first.begin(runID: "brief-\(index)", uid: 2, scope: .init(), labels: [:])
            _ = try first.end(runID: "brief-\(index)", uid: 2)
        }
        func lines() throws -> Int { try String(contentsOfFile: dir.file("agent-runs.jsonl"), encoding: .utf8).split(separator: "\n").count }
        #expect(try lines() >= RunsJournal.compactAfter)
        let deadline = Date().addingTimeInterval(10)
        while try lines() > 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try lines() == 1, "the writer rewrote the journal with the one open run")
        gpus.add(7)
        _ = try first.begin(runID: "after", uid: 3, scope: .init(), labels: [:])
        first.stop()
        let second = try Agent(configuration: configuration, meters: [gpus])
        #expect(second.openRuns(uid: 0).map(\.runID).sorted() == ["after", "kept"])
        #expect(second.openRuns(uid: 0).first { $0.runID == "kept" }?.sharedBy["nvml:GPU-0"] == 2)
    }

    #if os(Linux)
    @Test func theExecutablesTouchedPagesAreGivenBackAndFaultedInAgain() throws {
        func residentFileKiB() throws -> Int {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssFile:") })
            return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
        let before = try residentFileKiB()
        let advised = StartupPages.release()
        let after = try residentFileKiB()
        #expect(advised > 0, "the test binary's mappings were advised")
        #expect(after < before, "RssFile \(before) KiB before, \(after) KiB after")
        // The code runs on: pages needed again come back.
        #expect(try DeviceScope.resolve(.init(visibleDevices: "1"), devices: HandMeter.gpus(2).devices).keys == ["nvml:GPU-1"])
    }
    #endif

    @Test func pagesAreGivenBackOnceAfterTheFirstUseOfEachKindWhenQuiet() {
        let releases = Mutex(0)
        let firstUse = StartupPages.AfterFirstUse(quiet: 1) { releases.withLock { $0 += 1 } }
        func waitFor(_ count: Int) {
            let deadline = Date().addingTimeInterval(10)  // a loaded machine runs the timer late
            while releases.withLock({ $0 }) < count, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        }
        firstUse.used("/v1/runs")
        firstUse.used("/v1/runs/end")  // first used together: one release for both
        // Busy: work every 50 ms for a second holds the release back.
        for _ in 0..<20 {
            firstUse.used("/v1/runs")
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(releases.withLock { $0 } == 0, "nothing given back while work goes on")
        waitFor(1)
        Thread.sleep(forTimeInterval: 1.2)
        #expect(releases.withLock { $0 } == 1)
        firstUse.used("/v1/runs/end")
        firstUse.used("/v1/runs")
        Thread.sleep(forTimeInterval: 2.2)
        #expect(releases.withLock { $0 } == 1, "kinds used before give nothing back again")
        firstUse.used("/v1/health")
        waitFor(2)
        #expect(releases.withLock { $0 } == 2)
    }

    @Test func aCorruptStateFileIsRefusedNotOverwritten() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try dir.write("agent-runs.jsonl", "{not json\n{\"end\": \"x\"}\n")
        #expect(throws: AgentError.self) { _ = try Agent(configuration: AgentConfiguration(stateDirectory: dir.path, nodeID: "n"), meters: []) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{not json\n{\"end\": \"x\"}\n")
    }

    @Test func scopesNameGPUsByIndexOrUUIDAndPackagesByID() throws {
        let devices = (HandMeter.gpus(4).devices + HandMeter.packages(2).devices)
        func keys(_ request: DeviceScope.Request) throws(AgentError) -> [String] { try DeviceScope.resolve(request, devices: devices).keys }
        let packages = ["rapl:package-0", "rapl:package-0/dram", "rapl:package-1", "rapl:package-1/dram"]
        #expect(try keys(.init(visibleDevices: "2,3")) == ["nvml:GPU-2", "nvml:GPU-3"] + packages)
        #expect(try keys(.init(visibleDevices: "GPU-1")) == ["nvml:GPU-1"] + packages)
        #expect(try keys(.init(visibleDevices: "none")) == packages)
        #expect(try keys(.init(visibleDevices: "all")) == devices.map(ContinuousSampler.key))
        #expect(try keys(.init(devices: ["0,package-1"])) == ["nvml:GPU-0", "rapl:package-1", "rapl:package-1/dram"])
        #expect(try keys(.init(devices: ["package-0"])) == ["nvml:GPU-0", "nvml:GPU-1", "nvml:GPU-2", "nvml:GPU-3", "rapl:package-0", "rapl:package-0/dram"])
        do { _ = try keys(.init(devices: ["7"])) } catch { #expect(error.message.contains("no GPU with index 7")) }
        do { _ = try keys(.init(devices: ["eth0"])) } catch { #expect(error.field == "devices") }
        let listing = """
            GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)
              MIG 3g.20gb     Device  0: (UUID: MIG-aaaa)
            GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1)
              MIG 1g.5gb      Device  0: (UUID: MIG-bbbb)
            """
        #expect(MIGParents.parent(of: "MIG-bbbb", listing: listing) == "GPU-1")
        #expect(MIGParents.parent(of: "MIG-cccc", listing: listing) == nil)
    }

    @Test func requestBodiesNameTheFieldAtFault() throws {
        func begin(_ text: String) -> AgentError? {
            do { _ = try AgentProtocol.BeginRequest(json: try JSONParser.parse(text)); return nil } catch let error as AgentError { return error } catch { return nil }
        }
        #expect(begin(#"{"devices": ["0"]}"#)?.field == "run_id")
        #expect(begin(#"{"run_id": 7}"#)?.code == "wrong_type")
        #expect(begin(#"{"run_id": "r", "devices": [1]}"#)?.field == "devices[0]")
        #expect(begin(#"{"run_id": "r", "cost": 1}"#)?.code == "unknown_field")
        #expect(begin(#"[1]"#)?.field == "body")
        let parsed = try AgentProtocol.BeginRequest(json: try JSONParser.parse(#"{"run_id": "r", "visible_devices": "0", "labels": {"k": "v"}}"#))
        #expect(parsed == AgentProtocol.BeginRequest(runID: "r", scope: .init(visibleDevices: "0"), labels: ["k": "v"]))
        #expect(try AgentProtocol.BeginRequest(json: parsed.json) == parsed)
    }
}
