import EmitContract
import EmitMeters
import Foundation
import Synchronization
import Testing
@testable import EmitSessions

/// A local counter that draws a steady `watts` on the monotonic clock, so every window's true
/// energy is known from its length. A stalled read waits `stall` seconds before reading (a
/// reader preempted between taking the time and reading the counter): with
/// `stallEveryOtherRound`, the first read of every other round (reads 30 ms or more after the
/// last one ended), so window boundaries are stamped late and early in turn; `everyRead`
/// seconds are spent on every read (a meter whose reads are slow by nature).
final class ClockCounter: EnergyMeter, @unchecked Sendable {
    let source = EnergySource.nvml
    let devices = [MeteredDevice(source: .nvml, device: Device(class: .gpu, id: "GPU-0", index: 0))]
    let problems: [MeterProblem] = []
    let longestSafeInterval: Double? = nil
    let watts: Double
    private let zero = MonotonicClock.nanoseconds()
    private let stall: Double
    private let everyRead: Mutex<Double>
    private let stallEveryOtherRound: Bool
    private let state = Mutex((rounds: 0, lastReadEnded: UInt64(0), stallNext: false))

    init(watts: Double, stall: Double = 0.06, stallEveryOtherRound: Bool = false, everyRead: Double = 0) {
        self.watts = watts
        self.stall = stall
        self.stallEveryOtherRound = stallEveryOtherRound
        self.everyRead = Mutex(everyRead)
    }

    /// Every read from now on takes `seconds` (a GPU whose driver turned slow).
    func slowDown(to seconds: Double) { everyRead.withLock { $0 = seconds } }

    /// The next read stalls.
    func stallNextRead() { state.withLock { $0.stallNext = true } }

    func sample() -> [SampleValue] {
        let now = MonotonicClock.nanoseconds()
        let stalls = state.withLock { s -> Bool in
            defer { s.stallNext = false }
            guard now - s.lastReadEnded >= 30_000_000 else { return s.stallNext }
            s.rounds += 1
            return s.stallNext || (stallEveryOtherRound && s.rounds % 2 == 0)
        }
        if stalls { Thread.sleep(forTimeInterval: stall) }
        let slowness = everyRead.withLock { $0 }
        if slowness > 0 { Thread.sleep(forTimeInterval: slowness) }
        let read = MonotonicClock.nanoseconds()
        state.withLock { $0.lastReadEnded = read }
        return [.counter(raw: UInt64(watts * Double(read - zero) / 1e6), unitsPerJoule: 1e3, wrapRange: nil)]
    }

    func close() {}
}

@Suite struct ReadTimingTests {
    static func seconds(_ window: TimeWindow) -> Double {
        Double(window.to.epochSeconds - window.from.epochSeconds) + Double(window.to.nanoseconds - window.from.nanoseconds) / 1e9
    }

    /// Without the bracket, every window was 60 ms of energy (12% of 0.5 s) off, one too much and
    /// the next too little: its boundary reads were stamped early in turn.
    @Test func aReadPreemptedBeforeItsCounterIsTakenAgainSoWindowsHoldTheirOwnEnergy() throws {
        let meter = ClockCounter(watts: 250, stallEveryOtherRound: true)
        let collected = Collected()
        let session = MeteringSession.forTests(interval: 0.1, window: 0.5, meters: [meter], deliver: collected.add)
        session.start()
        Thread.sleep(forTimeInterval: 1.65)
        let report = session.stop()
        let events = collected.batches.flatMap { $0 }
        #expect(events.count >= 3)
        for event in events {
            let expected = 250 * Self.seconds(event.window)
            // 2% of a 0.5 s window is 10 ms, well inside the 60 ms stalls.
            #expect(abs(event.energyJoules - expected) <= max(0.02 * expected, 0.5),
                    "\(event.window.from)-\(event.window.to): \(event.energyJoules) J against \(expected) J")
        }
        #expect(session.promptRereads >= 5, "each stalled read was taken again")
        let device = try #require(report.devices.first)
        #expect(abs(device.joules - 250 * device.seconds) <= 0.01 * 250 * device.seconds)
    }

    @Test func aMarkWhoseReadStalledIsStampedWhereTheCounterWasRead() throws {
        let meter = ClockCounter(watts: 400)
        let sampler = ContinuousSampler(meters: [meter], interval: 3600, sharedRoundAge: 0)
        sampler.start()
        defer { sampler.stop() }
        let begin = sampler.mark()
        Thread.sleep(forTimeInterval: 0.3)
        meter.stallNextRead()
        let end = sampler.mark()
        let seconds = Double(end.wallNanoseconds - begin.wallNanoseconds) / 1e9
        let joules = try #require(sampler.window(from: begin, to: end).first?.measurement?.joules)
        // A 60 ms stall stamped early would read 24 J more than the window's 400 W.
        #expect(abs(joules - 400 * seconds) <= 0.02 * 400 * seconds, "\(joules) J over \(seconds) s")
    }

    /// A meter slow by nature (eight GPUs read in turn) is read twice in its first round, then
    /// once: its second read was no quicker, and the allowance is four times its pace.
    @Test func aMeterSlowOnEveryReadIsReadAgainOnlyWhileItsPaceIsLearned() {
        let meter = ClockCounter(watts: 100, everyRead: 0.003)
        let session = MeteringSession.forTests(interval: 0.02, window: nil, meters: [meter], deliver: { _ in })
        session.start()
        Thread.sleep(forTimeInterval: 0.4)
        let report = session.stop()
        #expect(report.devices.first?.samples ?? 0 >= 10)
        // More only where the test itself was preempted by more than four reads' worth.
        #expect(session.promptRereads >= 1 && session.promptRereads <= 4, "\(session.promptRereads) rereads")
    }

    /// A meter that turns slow mid-session (NVML waiting on a GPU that fell off the bus) is read
    /// twice per round only until the last rounds set its new pace, never three times.
    @Test func aMeterThatTurnsSlowSetsANewPaceWithinSixteenRounds() {
        let meter = ClockCounter(watts: 100)
        let session = MeteringSession.forTests(interval: 0.01, window: nil, meters: [meter], deliver: { _ in })
        session.start()
        Thread.sleep(forTimeInterval: 0.2)
        let before = session.promptRereads
        meter.slowDown(to: 0.015)
        Thread.sleep(forTimeInterval: 1.0)
        let report = session.stop()
        let slowRounds = report.devices.first.map { $0.samples } ?? 0
        // About 40 slow rounds of 25 ms: one extra read in each of the first 16 at most (three
        // in each of them all, had the fastest read ever seen set the pace).
        #expect(session.promptRereads - before <= 18, "\(session.promptRereads - before) rereads over \(slowRounds) samples")
        #expect(session.promptRereads - before >= 8, "the first slow rounds were read again: \(session.promptRereads - before)")
    }
}
