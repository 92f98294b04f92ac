import EmitContract
import EmitMeters
import EmitTestSupport
import Foundation
import Synchronization
import Testing
@testable import EmitSessions

/// A counter the test moves by hand, in microjoules, with an optional wrap range.
final class HandCounter: EnergyMeter, @unchecked Sendable {
    let source = EnergySource.rapl
    let devices: [MeteredDevice]
    let problems: [MeterProblem] = []
    let longestSafeInterval: Double? = nil
    let value = Mutex<UInt64>(0)
    let range: UInt64?

    init(id: String = "package-0", start: UInt64 = 0, range: UInt64? = nil) {
        devices = [MeteredDevice(source: .rapl, device: Device(class: .cpuPackage, id: id, index: 0))]
        value.withLock { $0 = start }
        self.range = range
    }

    func set(_ raw: UInt64) { value.withLock { $0 = raw } }
    func sample() -> [SampleValue] { [.counter(raw: value.withLock { $0 }, unitsPerJoule: 1e6, wrapRange: range)] }
    func close() {}
}

@Suite struct ContinuousSamplerTests {
    func joules(_ windows: [ContinuousSampler.DeviceWindow]) -> Double? { windows.first?.measurement?.joules }

    @Test func overlappingWindowsAreDifferencesOfOneSampler() throws {
        let meter = HandCounter()
        let sampler = ContinuousSampler(meters: [meter], interval: 3600, sharedRoundAge: 0)
        sampler.start()
        defer { sampler.stop() }
        let a = sampler.mark()
        meter.set(1_000_000)
        let b = sampler.mark()
        meter.set(3_000_000)
        let c = sampler.mark()
        meter.set(6_000_000)
        let d = sampler.mark()
        #expect(joules(sampler.window(from: a, to: d)) == 6)
        #expect(joules(sampler.window(from: b, to: c)) == 2)
        #expect(joules(sampler.window(from: b, to: d)) == 5)
        let window = try #require(sampler.window(from: a, to: d).first?.measurement?.measurement)
        #expect(window.samples == 4 && window.coverage == 1 && window.resolutionJoules == 1e-6)
        #expect(sampler.window(from: a, to: d, scope: ["rapl:package-1"]).isEmpty)
    }

    @Test func aRestartInTheSameBootKeepsTheDeltaAcrossTheDowntime() throws {
        let meter = HandCounter(start: 5_000_000)
        let first = ContinuousSampler(meters: [meter], interval: 3600, bootID: "boot-1", sharedRoundAge: 0)
        first.start()
        meter.set(6_000_000)
        let begin = first.mark()
        meter.set(7_000_000)
        _ = first.mark()
        let checkpoint = first.checkpoint()
        first.stop()
        // The agent is gone (kill -9) while the counter goes on.
        meter.set(9_500_000)
        Thread.sleep(forTimeInterval: 0.05)
        let second = ContinuousSampler(meters: [meter], interval: 3600, resume: checkpoint, bootID: "boot-1", sharedRoundAge: 0)
        second.start()
        defer { second.stop() }
        meter.set(10_000_000)
        let end = second.mark()
        let window = try #require(second.window(from: begin, to: end).first?.measurement)
        #expect(window.joules == 4, "6 J to 10 J, the downtime included")
        #expect(window.measurement.counterResets == 0)
        #expect(window.measurement.coverage > 0.999, "the counter's delta covers the downtime")
    }

    @Test func aRebootSaysSoAndCountsFromZero() throws {
        let meter = HandCounter(start: 5_000_000)
        let first = ContinuousSampler(meters: [meter], interval: 3600, bootID: "boot-1", sharedRoundAge: 0)
        first.start()
        let begin = first.mark()
        meter.set(8_000_000)
        _ = first.mark()
        let checkpoint = first.checkpoint()
        first.stop()
        meter.set(500_000)  // the node rebooted: the counter restarted from zero
        let second = ContinuousSampler(meters: [meter], interval: 3600, resume: checkpoint, bootID: "boot-2", sharedRoundAge: 0)
        second.start()
        defer { second.stop() }
        meter.set(1_500_000)
        let end = second.mark()
        let window = try #require(second.window(from: begin, to: end).first?.measurement)
        #expect(window.joules == 3 + 1.5, "3 J before, 1.5 J since the reset; never negative, never double")
        #expect(window.measurement.counterResets == 1)
        #expect(window.measurement.coverage < 1, "the downtime was not observed")
    }

    @Test func aDowntimeLongEnoughForTwoWrapsIsAGap() throws {
        // A 1 J range: at the plausible 1500 W it can wrap in under a millisecond.
        let meter = HandCounter(start: 100_000, range: 1_000_000)
        let first = ContinuousSampler(meters: [meter], interval: 3600, bootID: "b", sharedRoundAge: 0)
        first.start()
        let begin = first.mark()
        meter.set(300_000)
        _ = first.mark()
        let checkpoint = first.checkpoint()
        first.stop()
        Thread.sleep(forTimeInterval: 0.01)
        meter.set(400_000)
        let second = ContinuousSampler(meters: [meter], interval: 3600, resume: checkpoint, bootID: "b", sharedRoundAge: 0)
        second.start()
        defer { second.stop() }
        meter.set(450_000)
        let end = second.mark()
        let window = try #require(second.window(from: begin, to: end).first?.measurement)
        #expect(abs(window.joules - 0.25) < 1e-12, "0.2 J before the downtime and 0.05 J after it; the downtime is unknowable")
        #expect(window.measurement.coverage < 1)
    }

    @Test func marksAndCheckpointsSurviveJSON() throws {
        let meter = HandCounter(start: 1)
        let sampler = ContinuousSampler(meters: [meter], interval: 3600, bootID: "b", sharedRoundAge: 0)
        sampler.start()
        defer { sampler.stop() }
        let mark = sampler.mark()
        let checkpoint = sampler.checkpoint()
        #expect(try JSONDecoder().decode(ContinuousSampler.Mark.self, from: JSONEncoder().encode(mark)) == mark)
        #expect(try JSONDecoder().decode(ContinuousSampler.Checkpoint.self, from: JSONEncoder().encode(checkpoint)) == checkpoint)
    }
}

@Suite struct SharedRoundTests {
    @Test func marksWithinAMillisecondShareARound() throws {
        let meter = HandCounter(start: 0)
        let sampler = ContinuousSampler(meters: [meter], interval: 3600, sharedRoundAge: 60)
        sampler.start()
        defer { sampler.stop() }
        let a = sampler.mark()
        meter.set(1_000_000)
        let b = sampler.mark()
        #expect(a == b, "the second mark stands where the first round was taken")
        #expect(sampler.totals().rounds == 1)
    }
}

/// The agent's state written by hand (StateJSON.swift) is what Codable writes: JSONDecoder reads
/// it back as the same value, with the same members, every one of them set here.
@Suite struct StateJSONTests {
    func fragment(_ value: some JSONFragmentWriting) throws -> Data { try HandWrittenJSON.data(value) }
    func keys(_ data: Data) throws -> Set<String> { try HandWrittenJSON.memberPaths(data) }

    @Test func everyMemberIsWrittenAsCodableWritesIt() throws {
        var totals = DeviceTracker.Totals()
        totals.counterUnits = .max
        totals.unitsPerJoule = 1e6
        totals.counterObservedNanoseconds = 1_795_770_900_412_000_123
        totals.counterSamples = 3
        totals.counterAdvances = 2
        totals.wraps = 1
        totals.resets = 4
        totals.powerJoules = 0.1 + 0.2
        totals.powerObservedNanoseconds = 7
        totals.powerSamples = 5
        totals.failures = 6
        totals.lastFailure = "read \"energy_uj\": EIO\n"
        totals.counterQuantumJoules = 1e-6
        totals.staleStepJoules = 2.5
        totals.staleJumps = 2
        totals.powerQuantumWatts = 0.001
        let state = DeviceTracker.State(totals: totals, lastCounter: 123_456_789_012, wrapRange: 262_143_328_850)
        let mark = ContinuousSampler.Mark(wallNanoseconds: 1_795_770_900_412_000_123,
                                          devices: ["rapl:package-0": DeviceMark(totals: totals, openedWithCounter: true, openedWithPower: false),
                                                    "nvml:GPU-1": DeviceMark(totals: .init(), openedWithCounter: false, openedWithPower: true)])
        let checkpoint = ContinuousSampler.Checkpoint(wallNanoseconds: -5, bootID: "b0e1", devices: ["rapl:package-0": state, "x": .init(totals: .init())])
        let encoder = JSONEncoder()
        #expect(try JSONDecoder().decode(DeviceTracker.Totals.self, from: try fragment(totals)) == totals)
        #expect(try keys(try fragment(totals)) == keys(try encoder.encode(totals)), "the same members as Codable")
        #expect(try JSONDecoder().decode(ContinuousSampler.Mark.self, from: try fragment(mark)) == mark)
        #expect(try keys(try fragment(mark)) == keys(try encoder.encode(mark)))
        #expect(try JSONDecoder().decode(ContinuousSampler.Checkpoint.self, from: try fragment(checkpoint)) == checkpoint)
        #expect(try keys(try fragment(checkpoint)) == keys(try encoder.encode(checkpoint)))
        var broken = totals
        broken.powerJoules = .nan
        #expect(throws: JSONFragment.NotFinite.self) { try fragment(broken) }
    }
}
