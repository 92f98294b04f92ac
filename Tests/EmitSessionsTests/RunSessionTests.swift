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
    let delay: Double

    init(id: String, delay: Double) {
        devices = [MeteredDevice(source: .ipmi, device: Device(class: .node, id: id))]
        self.delay = delay
    }

    func sample() -> [SampleValue] {
        Thread.sleep(forTimeInterval: delay)
        return [.power(watts: 100)]
    }

    func close() {}
}

@Suite struct ConcurrentReadsTests {
    @Test func slowMetersAreReadSideBySide() throws {
        let meters = (0..<4).map { SlowPowerMeter(id: "bmc-\($0)", delay: 0.3) }
        let session = MeteringSession(interval: 0.05, window: nil, meters: meters, concurrentReads: true,
                                      eventFactory: { device, window, joules, measurement, recordedAt in
                                          try RunMeterEventBuilder(runID: "r", source: device.source, device: device.device, nodeID: "n",
                                                                   window: window, energyJoules: joules, measurement: measurement)
                                              .build(recordedAt: recordedAt)
                                      }, deliver: { _ in })
        let start = Date()
        session.start()
        let first = Date().timeIntervalSince(start)
        let report = session.stop()
        // In turn, one round of four 0.3 s reads takes 1.2 s; side by side about 0.3 s.
        #expect(first < 0.9, "the first round took \(first) s")
        #expect(report.devices.allSatisfy { $0.samples >= 2 })
        #expect(report.devices.allSatisfy { abs($0.averageWatts - 100) < 1 || $0.seconds == 0 })
    }
}
