import EmitContract
import EmitMeters

/// The meters of a session or of the node agent, read in rounds on one monotonic clock, each
/// device's samples kept by its `DeviceTracker`. Local meters (RAPL, NVML) are read in turn;
/// meters that read over the network each on a thread of their own (`ConcurrentReads`), so one
/// slow BMC never holds up the others. Used from one thread at a time.
final class SampleRounds {
    let meters: [EnergyMeter]
    let devices: [MeteredDevice]
    /// Each meter's devices, as indices into `devices` and `trackers`.
    let deviceRanges: [Range<Int>]
    private(set) var trackers: [DeviceTracker]
    /// Meters read over the network, each on a thread of its own; nil when every meter is local.
    private let concurrentReads: ConcurrentReads?
    /// Local meters: they answer in microseconds and are read in turn.
    private let promptMeters: [Int]
    /// Per meter: whether the last round has its answer at the round's own time.
    private var answeredThisRound: [Bool] = []

    init(meters: [EnergyMeter]) {
        self.meters = meters
        let remote = meters.indices.filter { meters[$0].readsOverNetwork }
        concurrentReads = remote.isEmpty ? nil : ConcurrentReads(meters: meters, indices: remote)
        promptMeters = meters.indices.filter { !meters[$0].readsOverNetwork }
        var next = 0
        deviceRanges = meters.map { meter in
            defer { next += meter.devices.count }
            return next..<(next + meter.devices.count)
        }
        devices = meters.flatMap(\.devices)
        trackers = Array(repeating: DeviceTracker(), count: devices.count)
    }

    var hasNetworkMeters: Bool { concurrentReads != nil }

    /// One round: every meter read, stamped with the round's time, which is also where a window
    /// opens or closes, so a window's coverage is exactly what its rounds observed. Returns that
    /// time. Network meters wait up to `networkWait` nanoseconds from the round's start (nil: for
    /// all of them); one that has not answered by then is fed when it does. (A slow network read
    /// shifts its samples by its delay; `promptReads` keeps the local ones exact.)
    @discardableResult
    func sampleAll(networkWait: UInt64?) -> UInt64 {
        let start = MonotonicClock.nanoseconds()
        answeredThisRound = Array(repeating: false, count: meters.count)
        concurrentReads?.begin()
        let (values, time) = promptMeters.isEmpty ? ([], start) : promptReads()
        for (index, meterValues) in zip(promptMeters, values) {
            feed(meter: index, meterValues, at: time)
            answeredThisRound[index] = true
        }
        guard let concurrentReads else { return time }
        for reading in concurrentReads.end(stampedAt: time, deadline: networkWait.map { start + $0 }) {
            feed(meter: reading.meter, reading.values, at: reading.time)
            if reading.time == time { answeredThisRound[reading.meter] = true }
        }
        return time
    }

    /// The narrowest bracket each of the last rounds of local reads fitted in (a ring).
    private var recentBrackets: [UInt64] = []
    private var nextBracket = 0
    /// Local reads taken again because a round's bracket was too wide to stamp it by.
    private(set) var rereads = 0
    /// A bracket is narrow enough within this, or four times the narrowest of the last rounds
    /// (eight GPUs read in turn take longer than one package's file): 1 ms is 0.1% of a 1 s window.
    static let bracketAllowance: UInt64 = 1_000_000
    static let promptAttempts = 3
    /// Rounds whose brackets set the pace: a meter that turned slow (a GPU falling off the bus
    /// makes NVML wait) sets a new pace after this many rounds rather than being read three
    /// times in each.
    static let paceRounds = 16

    /// The local meters read in turn between two clock readings, stamped at their midpoint. A
    /// reader preempted between the clock and a counter (a busy node's scheduler) would stamp
    /// energy read tens of milliseconds later at the earlier time, and the difference lands in
    /// the wrong window: 3% of a 1 s window was seen on two busy cores. So a bracket wider than
    /// the allowance is read again, and the narrowest attempt kept; when a second attempt is no
    /// quicker than half the first, the slowness is the meter's own and it is not read a third
    /// time. Reading a counter has no effect on it, so the extra reads change nothing they measure.
    private func promptReads() -> (values: [[SampleValue]], time: UInt64) {
        let allowance = max(Self.bracketAllowance, 4 * (recentBrackets.min() ?? 0))
        var best: (values: [[SampleValue]], from: UInt64, width: UInt64)?
        var first: UInt64 = 0
        for attempt in 1...Self.promptAttempts {
            let from = MonotonicClock.nanoseconds()
            let values = promptMeters.map { meters[$0].sample() }
            let width = MonotonicClock.nanoseconds() &- from
            if attempt == 1 { first = width }
            if width < best?.width ?? .max { best = (values, from, width) }
            if width <= allowance || attempt == Self.promptAttempts || (attempt > 1 && width >= first / 2) { break }
            rereads += 1
        }
        guard let best else { return ([], MonotonicClock.nanoseconds()) }
        if recentBrackets.count < Self.paceRounds {
            recentBrackets.append(best.width)
        } else {
            recentBrackets[nextBracket] = best.width
            nextBracket = (nextBracket + 1) % Self.paceRounds
        }
        return (best.values, best.from + best.width / 2)
    }

    /// Waits for the reads still running and feeds them; returns the time of the last answer.
    func finishReads() -> UInt64? {
        guard let concurrentReads else { return nil }
        let stragglers = concurrentReads.finish()
        for reading in stragglers { feed(meter: reading.meter, reading.values, at: reading.time) }
        return stragglers.last?.time
    }

    /// Waits for the reads still running without counting them (their window is dropped).
    func abandonReads() {
        _ = concurrentReads?.finish()
    }

    /// At a boundary at `time`: a meter still reading must not pair its next answer across it.
    func breakPairingOfUnanswered() {
        for (meter, answered) in answeredThisRound.enumerated() where !answered {
            for device in deviceRanges[meter] { trackers[device].breakPairing() }
        }
    }

    /// Every device's cumulative totals now, and whether its readings at `time` open a window.
    func mark(at time: UInt64) -> [DeviceMark] {
        trackers.map { DeviceMark(totals: $0.totals, openedWithCounter: $0.lastCounterTime == time, openedWithPower: $0.lastPowerTime == time) }
    }

    /// Puts a tracker resumed from a checkpoint in place before the first round.
    func restore(_ index: Int, _ tracker: DeviceTracker) {
        trackers[index] = tracker
    }

    func closeMeters() {
        for meter in meters { meter.close() }
    }

    private func feed(meter index: Int, _ values: [SampleValue], at time: UInt64) {
        for (device, i) in zip(deviceRanges[index], values.indices) { trackers[device].add(values[i], at: time) }
        // A meter that returned fewer values than devices: the missing ones were not read.
        for device in deviceRanges[index].dropFirst(values.count) { trackers[device].add(.unavailable(reason: "not read"), at: time) }
    }
}

/// One device at a window boundary: its cumulative totals, and whether a counter (power)
/// reading was taken exactly there (it then belongs to both windows and counts in each).
struct DeviceMark: Equatable, Codable, Sendable {
    var totals: DeviceTracker.Totals
    var openedWithCounter: Bool
    var openedWithPower: Bool

    /// What the window from `self` to `end` (`seconds` long) reports.
    func evidence(to end: DeviceMark, seconds: Double) -> WindowEvidence {
        WindowEvidence.choose(before: totals, now: end.totals, seconds: seconds,
                              openedWithCounter: openedWithCounter, openedWithPower: openedWithPower)
    }
}
