import EmitContract
import EmitMeters
import Foundation

/// One sampler for any number of windows that open and close at any time (the node agent's
/// runs): every meter read in rounds on one monotonic clock, each device's totals cumulative, so
/// a window is the difference of two marks and a hundred open windows cost no more sampling
/// than one. A mark takes a round of its own at that instant (serialized with the periodic
/// rounds), so a window starts and ends exactly where it was asked to.
///
/// The state survives a restart of the process: `checkpoint()` is what to store, and a sampler
/// made with `resume:` goes on from it (see `DeviceTracker.resumed`), so marks taken before the
/// restart stay valid.
public final class ContinuousSampler: @unchecked Sendable {
    /// The instant a window opens or closes: each device's cumulative totals there.
    public struct Mark: Sendable, Codable, Equatable {
        public let wallNanoseconds: Int64
        /// Per device key (`DeviceKey`), its totals and whether a reading was taken right there.
        let devices: [String: DeviceMark]

        public var timestamp: Timestamp { WallClock.timestamp(nanoseconds: wallNanoseconds) }
    }

    /// What to store to go on after a restart.
    public struct Checkpoint: Sendable, Codable, Equatable {
        public let wallNanoseconds: Int64
        /// The kernel's boot id: counters reset when it changes.
        public let bootID: String?
        let devices: [String: DeviceTracker.State]
    }

    /// One device's share of a window.
    public struct DeviceWindow: Sendable {
        public let device: MeteredDevice
        /// The energy and its measurement, or nil with the reason it is not measured energy.
        public let measurement: (joules: Double, measurement: EmitContract.Measurement)?
        public let withheldReason: String?
    }

    public let intervalSeconds: Double
    public let intervalNote: String?
    private let rounds: SampleRounds
    private let keys: [String]
    private let bootID: String?
    private let lock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var stopRequested = false
    private var started = false
    private var roundsTaken = 0
    private var lastRoundMono: UInt64 = 0
    // The offset from this process's monotonic clock to the wall clock, fixed at start.
    private let wallZero: Int64
    private let monoZero: UInt64

    /// `resume`: a checkpoint of an earlier process on this node; devices found in it go on
    /// from their stored totals and last counter reading.
    public init(meters: [EnergyMeter], interval: Double, resume: Checkpoint? = nil, bootID: String? = ContinuousSampler.currentBootID(),
                sharedRoundAge: Double = 0.001) {
        self.sharedRoundAge = UInt64(sharedRoundAge * 1e9)
        rounds = SampleRounds(meters: meters)
        keys = rounds.devices.map(Self.key)
        self.bootID = bootID
        (intervalSeconds, intervalNote) = MeteringSession.interval(interval, meters: meters)
        wallZero = WallClock.nowNanoseconds()
        monoZero = MonotonicClock.nanoseconds()
        if let resume {
            let downtime = UInt64(max(0, wallZero - resume.wallNanoseconds))
            let sameBoot = resume.bootID != nil && resume.bootID == bootID
            for (index, key) in keys.enumerated() {
                guard let state = resume.devices[key] else { continue }
                rounds.restore(index, DeviceTracker.resumed(from: state, downtime: downtime, sameBoot: sameBoot, now: monoZero))
            }
        }
    }

    /// `source:id`, stable across restarts and device enumeration order.
    public static func key(_ device: MeteredDevice) -> String { "\(device.source.rawValue):\(device.device.id)" }

    public var devices: [MeteredDevice] { rounds.devices }

    /// /proc/sys/kernel/random/boot_id: a new value after every boot.
    public static func currentBootID() -> String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Takes the first round and starts the periodic ones.
    public func start() {
        lock.lock()
        precondition(!started, "a ContinuousSampler starts once")
        started = true
        roundLocked(waitForNetwork: true)
        lock.unlock()
        guard !rounds.devices.isEmpty else { finished.signal(); return }
        let thread = Thread { [self] in loop() }
        thread.name = "emit-agent-sampler"
        thread.start()
    }

    /// Stops the periodic rounds and closes the meters.
    public func stop() {
        lock.lock()
        stopRequested = true
        lock.unlock()
        wake.signal()
        finished.wait()
        lock.lock()
        _ = rounds.finishReads()
        rounds.closeMeters()
        lock.unlock()
    }

    /// Marks that arrive together share a round: one taken at most this long ago (nanoseconds)
    /// is reused, so a burst of runs beginning and ending costs a round per millisecond, not per
    /// request. The mark then stands where that round was taken.
    private let sharedRoundAge: UInt64

    /// A round now (or one taken within the last millisecond), and every device's totals at it.
    public func mark() -> Mark {
        lock.lock()
        defer { lock.unlock() }
        let now = MonotonicClock.nanoseconds()
        let time = roundsTaken > 0 && now &- lastRoundMono <= sharedRoundAge ? lastRoundMono : roundLocked(waitForNetwork: false)
        let marks = rounds.mark(at: time)
        return Mark(wallNanoseconds: wall(time), devices: Dictionary(uniqueKeysWithValues: zip(keys, marks)))
    }

    public func checkpoint() -> Checkpoint {
        lock.lock()
        defer { lock.unlock() }
        let states = rounds.trackers.map(\.state)
        return Checkpoint(wallNanoseconds: wall(lastRoundMono), bootID: bootID, devices: Dictionary(uniqueKeysWithValues: zip(keys, states)))
    }

    /// Rounds taken since start, and each device's cumulative energy by its best evidence so
    /// far (for a metrics endpoint), with its failed reads.
    public func totals() -> (rounds: Int, devices: [(device: MeteredDevice, joules: Double?, failedReads: Int)]) {
        lock.lock()
        defer { lock.unlock() }
        let devices = rounds.trackers.enumerated().map { index, tracker in
            let t = tracker.totals
            let joules: Double? = tracker.hasCounter ? t.counterJoules : tracker.hasPower ? t.powerJoules : nil
            return (rounds.devices[index], joules, t.failures)
        }
        return (roundsTaken, devices)
    }

    /// The window between two marks for each device in `scope` (device keys; nil: all).
    public func window(from start: Mark, to end: Mark, scope: Set<String>? = nil) -> [DeviceWindow] {
        let seconds = Double(end.wallNanoseconds - start.wallNanoseconds) / 1e9
        var result: [DeviceWindow] = []
        for (index, key) in keys.enumerated() where scope?.contains(key) ?? true {
            guard let from = start.devices[key], let to = end.devices[key], seconds > 0 else { continue }
            switch from.evidence(to: to, seconds: seconds) {
            case .none:
                result.append(DeviceWindow(device: rounds.devices[index], measurement: nil, withheldReason: "fewer than two readings in the window"))
            case .withheld(let reason):
                result.append(DeviceWindow(device: rounds.devices[index], measurement: nil, withheldReason: reason))
            case let .energy(joules, method, samples, observed, wraps, resets, resolution):
                let measurement = EmitContract.Measurement(
                    method: method, samples: samples, intervalMilliseconds: intervalSeconds * 1000,
                    coverage: min(1, observed / seconds), counterWraps: wraps, counterResets: resets, resolutionJoules: resolution)
                result.append(DeviceWindow(device: rounds.devices[index], measurement: (joules, measurement), withheldReason: nil))
            }
        }
        return result
    }

    private func wall(_ mono: UInt64) -> Int64 { wallZero + Int64(bitPattern: mono &- monoZero) }

    /// A round now. Periodic rounds wait for network meters up to the next tick; a mark waits
    /// for none (a request is answered now; a network meter's answer joins when it arrives).
    @discardableResult
    private func roundLocked(waitForNetwork: Bool) -> UInt64 {
        let time = rounds.sampleAll(networkWait: waitForNetwork ? UInt64(intervalSeconds * 1e9) : 0)
        roundsTaken += 1
        lastRoundMono = time
        return time
    }

    private func loop() {
        defer { finished.signal() }
        let step = UInt64(intervalSeconds * 1e9)
        var next = MonotonicClock.nanoseconds() + step
        while true {
            let now = MonotonicClock.nanoseconds()
            if next > now { _ = wake.wait(timeout: .now() + .nanoseconds(Int(min(next - now, UInt64(Int.max))))) }
            lock.lock()
            if stopRequested { lock.unlock(); return }
            let time = roundLocked(waitForNetwork: true)
            lock.unlock()
            while next <= time { next += step }
        }
    }
}
