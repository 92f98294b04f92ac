import EmitContract
import EmitMeters
import Foundation

/// How a run is metered.
public struct RunConfiguration: Sendable {
    public var runID: String
    public var nodeID: String
    /// Requested sampling interval in seconds (shortened when a counter could wrap twice).
    public var interval: Double
    /// Interim window length in seconds; nil for one window covering the whole run.
    public var window: Double?
    public var labels: [String: String]

    public init(runID: String, nodeID: String, interval: Double = 1, window: Double? = nil, labels: [String: String] = [:]) {
        self.runID = runID
        self.nodeID = nodeID
        self.interval = interval
        self.window = window
        self.labels = labels
    }
}

/// What one device measured over the whole run.
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
    public let method: MeasurementMethod?
    public var averageWatts: Double { seconds > 0 ? joules / seconds : 0 }
}

public struct RunReport: Sendable {
    public let runID: String
    public let window: TimeWindow?
    public let devices: [DeviceReport]
    public let problems: [MeterProblem]
    public let eventsEmitted: Int
    public let intervalSeconds: Double
    public let intervalNote: String?
    /// Events the builders refused (never expected; reported rather than dropped silently).
    public let buildFailures: [String]
}

/// Meters a run: samples every meter just before the work starts, periodically on a monotonic
/// clock while it runs (so wraps and resets are caught), and right after it ends; emits one event
/// per (source, device) per window through the builders. `window` tiles the run exactly with
/// consecutive, non-overlapping windows, delivered as each closes.
///
/// `start()` and `stop()` are called from one thread; sampling runs on a thread of its own.
public final class RunSession: @unchecked Sendable {
    public let configuration: RunConfiguration
    public let intervalSeconds: Double
    public let intervalNote: String?

    private let meters: [EnergyMeter]
    private let devices: [MeteredDevice]
    private let deliver: @Sendable ([EnergyEvent]) -> Void
    private var trackers: [DeviceTracker]
    private var windowStartTotals: [DeviceTracker.Totals] = []
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

    public init(configuration: RunConfiguration, meters: [EnergyMeter], deliver: @escaping @Sendable ([EnergyEvent]) -> Void) {
        self.configuration = configuration
        self.meters = meters
        self.deliver = deliver
        devices = meters.flatMap(\.devices)
        trackers = Array(repeating: DeviceTracker(), count: devices.count)
        let safe = meters.compactMap(\.longestSafeInterval).min()
        if let safe, safe < configuration.interval {
            intervalSeconds = safe
            intervalNote = String(format: "sampling every %.3g s instead of %.3g s so that a RAPL counter cannot wrap twice between samples", safe, configuration.interval)
        } else {
            intervalSeconds = configuration.interval
            intervalNote = nil
        }
    }

    public var meteredDevices: [MeteredDevice] { devices }

    /// Takes the first sample now and starts periodic sampling.
    public func start() {
        precondition(!started, "a RunSession starts once")
        started = true
        wallZero = WallClock.nowNanoseconds()
        monoZero = MonotonicClock.nanoseconds()
        sampleAll(at: monoZero)
        windowStart = monoZero
        windowStartTotals = trackers.map(\.totals)
        guard !devices.isEmpty else { finished.signal(); return }
        let thread = Thread { [self] in samplingLoop() }
        thread.name = "emit-sampler"
        thread.start()
    }

    /// Takes the last sample now, closes the last window and returns what was measured.
    public func stop() -> RunReport {
        stopLock.lock()
        stopRequested = true
        stopLock.unlock()
        wake.signal()
        finished.wait()
        let end = MonotonicClock.nanoseconds()
        sampleAll(at: end)
        closeWindow(at: end, final: true)
        for meter in meters { meter.close() }
        return report(end: end)
    }

    /// Meters `body` and returns its result with the report.
    public static func measure<T>(configuration: RunConfiguration, meters: [EnergyMeter],
                                  deliver: @escaping @Sendable ([EnergyEvent]) -> Void,
                                  _ body: () throws -> T) rethrows -> (T, RunReport) {
        let session = RunSession(configuration: configuration, meters: meters, deliver: deliver)
        session.start()
        do {
            let result = try body()
            return (result, session.stop())
        } catch {
            _ = session.stop()
            throw error
        }
    }

    private var isStopping: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    private func samplingLoop() {
        defer { finished.signal() }
        let step = UInt64(intervalSeconds * 1e9)
        let windowLength = configuration.window.map { UInt64($0 * 1e9) }
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
            sampleAll(at: time)
            if let boundary = nextBoundary, time >= boundary, let length = windowLength {
                closeWindow(at: boundary, final: false)
                nextBoundary = boundary + length
            }
            while nextTick <= time { nextTick += step }
        }
    }

    private func sampleAll(at time: UInt64) {
        var offset = 0
        for meter in meters {
            let values = meter.sample()
            for (i, value) in values.enumerated() where offset + i < trackers.count {
                trackers[offset + i].add(value, at: time)
            }
            // A meter that returned fewer values than devices: the missing ones were not read.
            if values.count < meter.devices.count {
                for i in values.count..<meter.devices.count {
                    trackers[offset + i].add(.unavailable(reason: "not read"), at: time)
                }
            }
            offset += meter.devices.count
        }
    }

    private func wall(_ mono: UInt64) -> Timestamp {
        WallClock.timestamp(nanoseconds: wallZero + Int64(mono &- monoZero))
    }

    private func closeWindow(at end: UInt64, final: Bool) {
        let window = TimeWindow(from: wall(windowStart), to: wall(end))
        defer {
            windowStart = end
            windowStartTotals = trackers.map(\.totals)
        }
        guard window.from < window.to else { return }
        let seconds = Double(end - windowStart) / 1e9
        var events: [EnergyEvent] = []
        let recordedAt = WallClock.now()
        for (index, tracker) in trackers.enumerated() {
            let before = windowStartTotals[index], now = tracker.totals
            let samples = now.samples - before.samples + (before.samples > 0 ? 1 : 0)
            let observed = Double(now.observedNanoseconds - before.observedNanoseconds) / 1e9
            guard samples >= 2, observed > 0, let method = tracker.method else { continue }
            let measurement = Measurement(
                method: method, samples: samples, intervalMilliseconds: intervalSeconds * 1000,
                coverage: min(1, observed / seconds), counterWraps: now.wraps - before.wraps,
                counterResets: now.resets - before.resets)
            let builder = RunMeterEventBuilder(
                runID: configuration.runID, source: devices[index].source, device: devices[index].device,
                nodeID: configuration.nodeID, window: window, energyJoules: now.joules(since: before),
                measurement: measurement, labels: configuration.labels)
            do { events.append(try builder.build(recordedAt: recordedAt)) } catch {
                buildFailures.append("\(devices[index].device.id): \(error)")
            }
        }
        eventsEmitted += events.count
        if !events.isEmpty { deliver(events) }
    }

    private func report(end: UInt64) -> RunReport {
        let seconds = Double(end - monoZero) / 1e9
        let reports = devices.enumerated().map { index, device -> DeviceReport in
            let t = trackers[index].totals
            return DeviceReport(
                device: device, joules: t.joules, seconds: seconds, samples: t.samples,
                coverage: seconds > 0 ? min(1, Double(t.observedNanoseconds) / 1e9 / seconds) : 0,
                wraps: t.wraps, resets: t.resets, failedReads: t.failures, lastFailure: t.lastFailure,
                method: trackers[index].method)
        }
        let window = wall(monoZero) < wall(end) ? TimeWindow(from: wall(monoZero), to: wall(end)) : nil
        return RunReport(runID: configuration.runID, window: window, devices: reports, problems: meters.flatMap(\.problems),
                         eventsEmitted: eventsEmitted, intervalSeconds: intervalSeconds, intervalNote: intervalNote,
                         buildFailures: buildFailures)
    }
}
