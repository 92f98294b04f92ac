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
    /// opens or closes, so a window's coverage is exactly what its rounds observed. (A slow meter
    /// read late in a round shifts its power samples by that delay, not its energy.) With
    /// network meters, one that has not answered by `deadline` is fed when it does.
    func sampleAll(at time: UInt64, deadline: UInt64?) {
        answeredThisRound = Array(repeating: false, count: meters.count)
        concurrentReads?.begin(round: time)
        for index in promptMeters {
            feed(meter: index, meters[index].sample(), at: time)
            answeredThisRound[index] = true
        }
        guard let concurrentReads else { return }
        for reading in concurrentReads.end(round: time, deadline: deadline) {
            feed(meter: reading.meter, reading.values, at: reading.time)
            if reading.time == time { answeredThisRound[reading.meter] = true }
        }
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
