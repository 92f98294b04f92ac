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

    private let rounds: SampleRounds
    private let deliver: @Sendable ([EnergyEvent]) -> Void
    private let eventFactory: WindowEventFactory
    private let windowClosed: (@Sendable (Int) -> Void)?
    private var windowsClosed = 0
    private var windowStart: UInt64 = 0
    private var windowStartMarks: [DeviceMark] = []
    /// Per device: windows withheld (readings that could not stand as measured energy) and why.
    private var withheld: [(count: Int, reason: String?)] = []
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
        rounds = SampleRounds(meters: meters)
        self.window = window
        self.eventFactory = eventFactory
        self.windowClosed = windowClosed
        self.deliver = deliver
        withheld = Array(repeating: (0, nil), count: rounds.devices.count)
        (intervalSeconds, intervalNote) = Self.interval(interval, meters: meters)
    }

    /// The requested interval, shortened where a counter could wrap twice between samples.
    static func interval(_ requested: Double, meters: [EnergyMeter]) -> (Double, String?) {
        guard let safe = meters.compactMap(\.longestSafeInterval).min(), safe < requested else { return (requested, nil) }
        return (safe, String(format: "sampling every %g s instead of %g s so that a counter cannot wrap twice between samples", safe, requested))
    }

    public var meteredDevices: [MeteredDevice] { rounds.devices }

    /// Rounds of local reads taken again because their clock bracket was too wide.
    var promptRereads: Int { rounds.rereads }

    /// Takes the first sample now and starts periodic sampling.
    public func start() {
        precondition(!started, "a MeteringSession starts once")
        started = true
        let wallAnchor = WallClock.nowNanoseconds()
        let monoAnchor = MonotonicClock.nanoseconds()
        // The session starts where its first round was stamped.
        monoZero = rounds.sampleAll(networkWait: UInt64(intervalSeconds * 1e9))
        wallZero = wallAnchor + Int64(bitPattern: monoZero &- monoAnchor)
        windowStart = monoZero
        windowStartMarks = rounds.mark(at: monoZero)
        guard !rounds.devices.isEmpty else { finished.signal(); return }
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
            rounds.abandonReads()
            rounds.closeMeters()
            return report(end: windowStart, marks: windowStartMarks)
        }
        // The last round waits for its reads, then for any still running from earlier rounds;
        // the session ends at the last answer, so every sample lies inside it.
        let last = rounds.sampleAll(networkWait: nil)
        let end = max(last, rounds.finishReads() ?? last)
        closeWindow(at: end, final: true)
        rounds.closeMeters()
        return report(end: end, marks: rounds.mark(at: end))
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
            let time = rounds.sampleAll(networkWait: step)
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

    private func wall(_ mono: UInt64) -> Timestamp {
        WallClock.timestamp(nanoseconds: wallZero + Int64(mono &- monoZero))
    }

    private func closeWindow(at end: UInt64, final: Bool) {
        let window = TimeWindow(from: wall(windowStart), to: wall(end))
        defer {
            windowStart = end
            if !final { rounds.breakPairingOfUnanswered() }
            windowStartMarks = rounds.mark(at: end)
        }
        guard window.from < window.to else { return }
        let seconds = Double(end - windowStart) / 1e9
        let endMarks = rounds.mark(at: end)
        var events: [EnergyEvent] = []
        let recordedAt = WallClock.now()
        for index in rounds.devices.indices {
            switch windowStartMarks[index].evidence(to: endMarks[index], seconds: seconds) {
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
                    events.append(try eventFactory(rounds.devices[index], window, joules, measurement, recordedAt))
                } catch {
                    buildFailures.append("\(rounds.devices[index].device.id): \(error)")
                }
            }
        }
        eventsEmitted += events.count
        if !events.isEmpty { deliver(events) }
    }

    private func report(end: UInt64, marks: [DeviceMark]) -> SessionReport {
        let seconds = Double(end - monoZero) / 1e9
        let reports = rounds.devices.enumerated().map { index, device -> DeviceReport in
            let t = marks[index].totals
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
        return SessionReport(window: window, devices: reports, problems: rounds.meters.flatMap(\.problems),
                             eventsEmitted: eventsEmitted, intervalSeconds: intervalSeconds, intervalNote: intervalNote,
                             buildFailures: buildFailures)
    }
}
