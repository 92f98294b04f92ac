import EmitContract
import EmitMeters
import Foundation

/// What one device measured over the whole session.
public struct DeviceReport: Sendable {
    public let device: MeteredDevice
    public let joules: Double
    public let seconds: Double
    public let samples: Int
    public let coverage: Double
    public let wraps: Int
    public let resets: Int
    public let failedReads: Int
    public let lastFailure: String?
    /// The evidence the whole session's figure rests on (nil when nothing could be measured).
    public let method: MeasurementMethod?
    /// The smallest energy step that evidence can show over the session.
    public let resolutionJoules: Double?
    /// Windows whose readings could not stand as measured energy, and the last reason why.
    public let withheldWindows: Int
    public let withheldReason: String?
    public var averageWatts: Double { seconds > 0 ? joules / seconds : 0 }
}

public struct SessionReport: Sendable {
    public let window: TimeWindow?
    public let devices: [DeviceReport]
    public let problems: [MeterProblem]
    public let eventsEmitted: Int
    public let intervalSeconds: Double
    public let intervalNote: String?
    /// Events the builders refused (never expected; reported rather than dropped silently).
    public let buildFailures: [String]
}

/// Builds the event of one device for one closed window (run grain, facility grain, ...).
public typealias WindowEventFactory = @Sendable (_ device: MeteredDevice, _ window: TimeWindow, _ energyJoules: Double,
                                                 _ measurement: EmitContract.Measurement, _ recordedAt: Timestamp) throws -> EnergyEvent

/// Samples every meter at start, periodically on a monotonic clock (so wraps and resets are
/// caught) and at stop; emits one event per (source, device) per window through `eventFactory`.
/// `window` tiles the session exactly with consecutive, non-overlapping windows, delivered as
/// each closes. Run sessions and the facility collector are both made of it.
///
/// `start()` and `stop()` are called from one thread; sampling runs on a thread of its own.
public final class MeteringSession: @unchecked Sendable {
    public let window: Double?
    public let intervalSeconds: Double
    public let intervalNote: String?

    private let meters: [EnergyMeter]
    private let devices: [MeteredDevice]
    private let deliver: @Sendable ([EnergyEvent]) -> Void
    private let eventFactory: WindowEventFactory
    /// Meters read over the network, each on a thread of its own (see `ConcurrentReads`);
    /// nil when every meter is local.
    private let concurrentReads: ConcurrentReads?
    /// Local meters (RAPL, NVML): they answer in microseconds and are read in turn.
    private let promptMeters: [Int]
    /// Each meter's devices, as indices into `devices` and `trackers`.
    private let deviceRanges: [Range<Int>]
    private let windowClosed: (@Sendable (Int) -> Void)?
    private var windowsClosed = 0
    private var trackers: [DeviceTracker]
    private var windowStartTotals: [DeviceTracker.Totals] = []
    /// Per device: whether the current window opened with a good counter (power) reading at
    /// its start (that reading then belongs to both windows and counts in each).
    private var windowOpenedWithCounter: [Bool] = []
    private var windowOpenedWithPower: [Bool] = []
    /// Per device: windows withheld (readings that could not stand as measured energy) and why.
    private var withheld: [(count: Int, reason: String?)] = []
    /// Per meter: whether the last round has its answer at the round's own time.
    private var answeredThisRound: [Bool] = []
    private var windowStart: UInt64 = 0
    private var monoZero: UInt64 = 0
    private var wallZero: Int64 = 0
    private var eventsEmitted = 0
    private var buildFailures: [String] = []
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let stopLock = NSLock()
    private var stopRequested = false
    private var started = false

    /// `interval` is the requested sampling interval in seconds (shortened when a counter could
    /// wrap twice); `window` the window length, nil for one window over the whole session.
    /// `windowClosed` is told the number of windows closed so far, after each interim window.
    /// Meters that read over the network are read side by side, each on a thread of its own,
    /// and a round goes on at the next tick without one that has not answered by then (its
    /// answer joins a later round).
    public init(interval: Double, window: Double?, meters: [EnergyMeter],
                eventFactory: @escaping WindowEventFactory,
                windowClosed: (@Sendable (Int) -> Void)? = nil, deliver: @escaping @Sendable ([EnergyEvent]) -> Void) {
        let remote = meters.indices.filter { meters[$0].readsOverNetwork }
        concurrentReads = remote.isEmpty ? nil : ConcurrentReads(meters: meters, indices: remote)
        promptMeters = meters.indices.filter { !meters[$0].readsOverNetwork }
        var next = 0
        deviceRanges = meters.map { meter in
            defer { next += meter.devices.count }
            return next..<(next + meter.devices.count)
        }
        self.window = window
        self.meters = meters
        self.eventFactory = eventFactory
        self.windowClosed = windowClosed
        self.deliver = deliver
        devices = meters.flatMap(\.devices)
        trackers = Array(repeating: DeviceTracker(), count: devices.count)
        withheld = Array(repeating: (0, nil), count: devices.count)
        let safe = meters.compactMap(\.longestSafeInterval).min()
        if let safe, safe < interval {
            intervalSeconds = safe
            intervalNote = String(format: "sampling every %.3g s instead of %.3g s so that a counter cannot wrap twice between samples", safe, interval)
        } else {
            intervalSeconds = interval
            intervalNote = nil
        }
    }

    public var meteredDevices: [MeteredDevice] { devices }

    /// Takes the first sample now and starts periodic sampling.
    public func start() {
        precondition(!started, "a MeteringSession starts once")
        started = true
        wallZero = WallClock.nowNanoseconds()
        monoZero = MonotonicClock.nanoseconds()
        sampleAll(at: monoZero, deadline: monoZero + UInt64(intervalSeconds * 1e9))
        windowStart = monoZero
        markWindowStart(at: monoZero)
        guard !devices.isEmpty else { finished.signal(); return }
        let thread = Thread { [self] in samplingLoop() }
        thread.name = "emit-sampler"
        thread.start()
    }

    /// Takes the last sample now, closes the last window and returns what was measured.
    /// `emitPartialWindow: false` drops the stretch since the last window boundary (a collector
    /// told to stop after N whole windows).
    public func stop(emitPartialWindow: Bool = true) -> SessionReport {
        stopLock.lock()
        stopRequested = true
        stopLock.unlock()
        wake.signal()
        finished.wait()
        guard emitPartialWindow else {
            // The session is its whole windows. Reads still running are waited for (their meters
            // are about to close) but not counted: they belong to the window that is dropped.
            _ = concurrentReads?.finish()
            for meter in meters { meter.close() }
            return report(end: windowStart, totals: windowStartTotals)
        }
        let end: UInt64
        if let concurrentReads {
            // The last round waits for its reads, then for any still running from earlier rounds;
            // the session ends at the last answer, so every sample lies inside it.
            let last = MonotonicClock.nanoseconds()
            sampleAll(at: last, deadline: nil)
            let stragglers = concurrentReads.finish()
            for reading in stragglers { feed(meter: reading.meter, reading.values, at: reading.time) }
            end = max(last, stragglers.last?.time ?? last)
        } else {
            end = MonotonicClock.nanoseconds()
            sampleAll(at: end, deadline: nil)
        }
        closeWindow(at: end, final: true)
        for meter in meters { meter.close() }
        return report(end: end, totals: trackers.map(\.totals))
    }

    private var isStopping: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    private func samplingLoop() {
        defer { finished.signal() }
        let step = UInt64(intervalSeconds * 1e9)
        let windowLength = window.map { UInt64($0 * 1e9) }
        var nextTick = monoZero + step
        var nextBoundary = windowLength.map { monoZero + $0 }
        while true {
            let deadline = min(nextTick, nextBoundary ?? .max)
            let now = MonotonicClock.nanoseconds()
            if deadline > now {
                _ = wake.wait(timeout: .now() + .nanoseconds(Int(min(deadline - now, UInt64(Int.max)))))
            }
            if isStopping { return }
            let time = MonotonicClock.nanoseconds()
            sampleAll(at: time, deadline: time + step)
            if let boundary = nextBoundary, time >= boundary, let length = windowLength {
                // The window ends where its energy was read: at this sample, a moment after the
                // scheduled boundary, so energy and window agree; the next one starts there.
                closeWindow(at: time, final: false)
                windowsClosed += 1
                windowClosed?(windowsClosed)
                // After a stall (a suspended process) the boundaries missed are merged into this
                // window rather than closed one round apart as slivers.
                var next = boundary + length
                while next <= time { next += length }
                nextBoundary = next
            }
            while nextTick <= time { nextTick += step }
        }
    }

    /// One round: every meter read, stamped with the round's time, which is also where a window
    /// opens or closes, so a window's coverage is exactly what its rounds observed. (A slow meter
    /// read late in a round shifts its power samples by that delay, not its energy.) With
    /// network meters, one that has not answered by `deadline` is fed when it does.
    private func sampleAll(at time: UInt64, deadline: UInt64?) {
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

    private func feed(meter index: Int, _ values: [SampleValue], at time: UInt64) {
        for (device, i) in zip(deviceRanges[index], values.indices) { trackers[device].add(values[i], at: time) }
        // A meter that returned fewer values than devices: the missing ones were not read.
        for device in deviceRanges[index].dropFirst(values.count) { trackers[device].add(.unavailable(reason: "not read"), at: time) }
    }

    private func wall(_ mono: UInt64) -> Timestamp {
        WallClock.timestamp(nanoseconds: wallZero + Int64(mono &- monoZero))
    }

    private func closeWindow(at end: UInt64, final: Bool) {
        let window = TimeWindow(from: wall(windowStart), to: wall(end))
        defer {
            windowStart = end
            // A meter still reading at the boundary: its next answer must not pair across it.
            if !final {
                for (meter, answered) in answeredThisRound.enumerated() where !answered {
                    for device in deviceRanges[meter] { trackers[device].breakPairing() }
                }
            }
            markWindowStart(at: end)
        }
        guard window.from < window.to else { return }
        let seconds = Double(end - windowStart) / 1e9
        var events: [EnergyEvent] = []
        let recordedAt = WallClock.now()
        for (index, tracker) in trackers.enumerated() {
            let evidence = WindowEvidence.choose(
                before: windowStartTotals[index], now: tracker.totals, seconds: seconds,
                openedWithCounter: windowOpenedWithCounter[index], openedWithPower: windowOpenedWithPower[index])
            switch evidence {
            case .none: continue
            case .withheld(let reason):
                withheld[index].count += 1
                withheld[index].reason = reason
            case let .energy(joules, method, samples, observed, wraps, resets, resolution):
                let measurement = Measurement(
                    method: method, samples: samples, intervalMilliseconds: intervalSeconds * 1000,
                    coverage: min(1, observed / seconds), counterWraps: wraps, counterResets: resets,
                    resolutionJoules: resolution)
                do {
                    events.append(try eventFactory(devices[index], window, joules, measurement, recordedAt))
                } catch {
                    buildFailures.append("\(devices[index].device.id): \(error)")
                }
            }
        }
        eventsEmitted += events.count
        if !events.isEmpty { deliver(events) }
    }

    private func markWindowStart(at time: UInt64) {
        windowStartTotals = trackers.map(\.totals)
        windowOpenedWithCounter = trackers.map { $0.lastCounterTime == time }
        windowOpenedWithPower = trackers.map { $0.lastPowerTime == time }
    }

    private func report(end: UInt64, totals: [DeviceTracker.Totals]) -> SessionReport {
        let seconds = Double(end - monoZero) / 1e9
        let reports = devices.enumerated().map { index, device -> DeviceReport in
            let t = totals[index]
            // The whole session judged as one window, by the same rule as each window.
            let evidence = WindowEvidence.choose(before: DeviceTracker.Totals(), now: t, seconds: seconds,
                                                 openedWithCounter: false, openedWithPower: false)
            var joules = 0.0, observed = 0.0, method: MeasurementMethod?, resolution: Double?
            var withheldReason = withheld[index].reason
            switch evidence {
            case let .energy(j, m, _, o, _, _, r): (joules, observed, method, resolution) = (j, o, m, r)
            case .withheld(let reason): withheldReason = withheldReason ?? reason
            case .none: break
            }
            return DeviceReport(
                device: device, joules: joules, seconds: seconds, samples: t.samples,
                coverage: seconds > 0 ? min(1, observed / seconds) : 0,
                wraps: t.wraps, resets: t.resets, failedReads: t.failures, lastFailure: t.lastFailure,
                method: method, resolutionJoules: resolution, withheldWindows: withheld[index].count,
                withheldReason: withheldReason)
        }
        let window = wall(monoZero) < wall(end) ? TimeWindow(from: wall(monoZero), to: wall(end)) : nil
        return SessionReport(window: window, devices: reports, problems: meters.flatMap(\.problems),
                         eventsEmitted: eventsEmitted, intervalSeconds: intervalSeconds, intervalNote: intervalNote,
                         buildFailures: buildFailures)
    }
}
