import EmitContract
import EmitMeters
import Foundation
import Synchronization
import Testing
@testable import EmitSessions

/// A meter whose counter advances by a fixed amount per read, standing in for hardware so the
/// session's windowing and event building can be checked exactly.
final class SteppingMeter: EnergyMeter, @unchecked Sendable {
    let source = EnergySource.rapl
    let devices = [MeteredDevice(source: .rapl, device: Device(class: .cpuPackage, id: "package-0", index: 0))]
    let problems: [MeterProblem] = []
    let longestSafeInterval: Double?
    private let step: UInt64
    private let reads = Mutex<UInt64>(0)

    init(step: UInt64, safeInterval: Double? = nil) {
        self.step = step
        longestSafeInterval = safeInterval
    }

    var readCount: UInt64 { reads.withLock { $0 } }

    func sample() -> [SampleValue] {
        let n = reads.withLock { value -> UInt64 in
            value += 1
            return value
        }
        return [.counter(raw: (n - 1) * step, unitsPerJoule: 1e6, wrapRange: 1 << 40)]
    }

    func close() {}
}

extension MeteringSession {
    /// A session whose events are run events of run "r" on node "n".
    static func forTests(interval: Double, window: Double?, meters: [EnergyMeter], deliver: @escaping @Sendable ([EnergyEvent]) -> Void) -> MeteringSession {
        MeteringSession(interval: interval, window: window, meters: meters,
                        eventFactory: { device, window, joules, measurement, recordedAt in
                            try RunMeterEventBuilder(runID: "r", source: device.source, device: device.device, nodeID: "n",
                                                     window: window, energyJoules: joules, measurement: measurement)
                                .build(recordedAt: recordedAt)
                        }, deliver: deliver)
    }
}

final class Collected: @unchecked Sendable {
    private let events = Mutex<[[EnergyEvent]]>([])
    func add(_ batch: [EnergyEvent]) { events.withLock { $0.append(batch) } }
    var batches: [[EnergyEvent]] { events.withLock { $0 } }
}

@Suite struct RunSessionTests {
    @Test func oneEventCoversTheRunWithTheCounterDelta() throws {
        let meter = SteppingMeter(step: 1_000_000)
        let collected = Collected()
        let config = RunConfiguration(runID: "run-1", nodeID: "node-1", interval: 0.02)
        let (_, report) = RunSession.measure(configuration: config, meters: [meter], deliver: collected.add) {
            Thread.sleep(forTimeInterval: 0.15)
        }
        let events = collected.batches.flatMap { $0 }
        #expect(events.count == 1)
        let event = try #require(events.first)
        let reads = meter.readCount
        #expect(event.energyJoules == Double(reads - 1), "every read advanced the counter by exactly 1 J")
        #expect(event.json["measurement"]?["samples"] == .number(Double(reads)))
        #expect(event.json["measurement"]?["coverage"] == .number(1))
        #expect(event.json["measurement"]?["interval_ms"] == .number(20))
        #expect(event.computeAssignmentRunID == "run-1")
        #expect(report.devices.first?.joules == Double(reads - 1))
        #expect(report.window == event.window)
        #expect(Validator.standard.validate(event.json).isEmpty)
    }

    @Test func windowsTileTheRunExactly() throws {
        let meter = SteppingMeter(step: 1_000_000)
        let collected = Collected()
        let config = RunConfiguration(runID: "run-2", nodeID: "node-1", interval: 0.01, window: 0.05)
        let (_, report) = RunSession.measure(configuration: config, meters: [meter], deliver: collected.add) {
            Thread.sleep(forTimeInterval: 0.23)
        }
        let events = collected.batches.flatMap { $0 }
        #expect(events.count >= 4)
        #expect(collected.batches.count == events.count, "each window is delivered as it closes")
        let run = try #require(report.window)
        #expect(events.first?.window.from == run.from)
        #expect(events.last?.window.to == run.to)
        for (a, b) in zip(events, events.dropFirst()) {
            #expect(a.window.to.text == b.window.from.text, "windows are consecutive and never overlap")
        }
        #expect(events.map(\.energyJoules).reduce(0, +) == Double(meter.readCount - 1))
        #expect(Set(events.map(\.eventID)).count == events.count)
    }

    @Test func theIntervalShrinksWhenACounterCouldWrapTwice() {
        let meter = SteppingMeter(step: 1, safeInterval: 0.5)
        let session = RunSession(configuration: RunConfiguration(runID: "r", nodeID: "n", interval: 2), meters: [meter], deliver: { _ in })
        #expect(session.intervalSeconds == 0.5)
        #expect(session.intervalNote?.contains("wrap") == true)
    }

    @Test func noMeterMeansNoEvent() {
        let collected = Collected()
        let (value, report) = RunSession.measure(configuration: RunConfiguration(runID: "r", nodeID: "n"), meters: [], deliver: collected.add) { 42 }
        #expect(value == 42)
        #expect(report.eventsEmitted == 0)
        #expect(collected.batches.isEmpty)
    }
}

/// A network meter that takes `delay` seconds to answer, with a steady 100 W.
final class SlowPowerMeter: EnergyMeter, @unchecked Sendable {
    let source = EnergySource.ipmi
    let devices: [MeteredDevice]
    let problems: [MeterProblem] = []
    let longestSafeInterval: Double? = nil
    let readsOverNetwork = true
    let delay: Double
    /// Reads after the first take `laterDelay` (a BMC that stops answering promptly).
    let laterDelay: Double?
    private let reads = Mutex(0)

    init(id: String, delay: Double, laterDelay: Double? = nil) {
        devices = [MeteredDevice(source: .ipmi, device: Device(class: .node, id: id))]
        self.delay = delay
        self.laterDelay = laterDelay
    }

    func sample() -> [SampleValue] {
        let first = reads.withLock { count -> Bool in
            count += 1
            return count == 1
        }
        Thread.sleep(forTimeInterval: first ? delay : laterDelay ?? delay)
        return [.power(watts: 100, quantumWatts: 1)]
    }

    func close() {}
}

@Suite struct ConcurrentReadsTests {
    @Test func slowMetersAreReadSideBySide() throws {
        let meters = (0..<4).map { SlowPowerMeter(id: "bmc-\($0)", delay: 0.3) }
        let session = MeteringSession.forTests(interval: 0.05, window: nil, meters: meters, deliver: { _ in })
        let start = Date()
        session.start()
        let started = Date().timeIntervalSince(start)
        Thread.sleep(forTimeInterval: 1.2)
        let report = session.stop()
        // The first round waits one tick, not for the slow reads (they join later rounds).
        #expect(started < 0.25, "start waited \(started) s")
        // Side by side each 0.3 s meter answers three or four times in 1.2 s; read in turn, one
        // round of all four would take the whole 1.2 s.
        #expect(report.devices.allSatisfy { $0.samples >= 3 }, "\(report.devices.map(\.samples))")
        // 100 W over the time each meter was observed (reads that outlive a 50 ms tick are fed
        // when they answer, so coverage is below 1).
        #expect(report.devices.allSatisfy { $0.coverage > 0.3 && abs($0.joules / ($0.coverage * $0.seconds) - 100) < 1 })
    }

    @Test func aMeterThatStopsAnsweringPromptlyDoesNotHoldUpTheOthers() throws {
        // The stuck meter answers at once, then 0.7 s after each read starts: at about 0, 0.75,
        // 1.5, 2.25 and, waited for at stop, 3.0. Windows of 1 s put two answers into the first
        // window and two into the last, each a quarter second from a boundary, so the test does
        // not depend on which side of a boundary an answer lands on a loaded machine.
        let stuck = SlowPowerMeter(id: "bmc-stuck", delay: 0, laterDelay: 0.7)
        let counter = SteppingMeter(step: 1_000_000)
        let collected = Collected()
        let session = MeteringSession.forTests(interval: 0.05, window: 1.0, meters: [stuck, counter], deliver: collected.add)
        session.start()
        Thread.sleep(forTimeInterval: 2.6)
        let report = session.stop()
        let stuckReport = try #require(report.devices.first { $0.device.device.id == "bmc-stuck" })
        let counterReport = try #require(report.devices.first { $0.device.device.id == "package-0" })
        // Rounds that waited for the stuck meter would give the counter about 5 samples; on the
        // 50 ms ticks it gets about 50.
        #expect(counterReport.samples >= 20, "the counter was read \(counterReport.samples) times")
        #expect(stuckReport.samples >= 3 && stuckReport.samples <= 6, "the stuck meter answered \(stuckReport.samples) times")
        #expect(counterReport.joules == Double(counter.readCount - 1), "every counter read was fed once")
        // Late answers are fed at the time they arrived: energy never exceeds 100 W over what was
        // observed, and the windows of each device tile the session.
        #expect(stuckReport.coverage > 0)
        #expect(abs(stuckReport.averageWatts * stuckReport.seconds / stuckReport.coverage - 100 * stuckReport.seconds) < 1)
        // The counter's windows tile the session; the stuck meter's are some of the same windows,
        // each holding no more than 100 W over its own length: energy between an answer before a
        // boundary and one after it is a gap, never put into either window.
        let events = collected.batches.flatMap { $0 }
        let counterWindows = events.filter { $0.json["device"]?["id"] == .string("package-0") }.map(\.window)
        #expect(counterWindows.count >= 3, "\(counterWindows.count) windows")
        #expect(zip(counterWindows, counterWindows.dropFirst()).allSatisfy { $0.to == $1.from }, "the counter's windows tile")
        #expect(counterWindows.reduce(0) { $0 + $1.from.seconds(until: $1.to) } > 2.5)
        let stuckEvents = events.filter { $0.json["device"]?["id"] == .string("bmc-stuck") }
        #expect(!stuckEvents.isEmpty)
        for event in stuckEvents {
            #expect(counterWindows.contains(event.window))
            let seconds = event.window.from.seconds(until: event.window.to)
            #expect(event.energyJoules <= 100 * seconds + 1e-6, "no energy beyond its window: \(event.energyJoules) J in \(seconds) s")
            let samples = event.json["measurement"]?["samples"]?.integerValue ?? 0
            #expect(samples >= 2 && samples <= 3, "\(samples) samples in one window")
        }
    }
}
