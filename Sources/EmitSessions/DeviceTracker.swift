import EmitContract
import EmitMeters

/// Turns one device's samples into energy, honestly: counter deltas with wraps undone and resets
/// counted, or trapezoid-integrated power; every unobserved stretch (a failed read, the gap
/// before a reset) is excluded from `observedSeconds`, which is what coverage is made of.
/// All values are cumulative so a window is the difference of two snapshots.
struct DeviceTracker {
    struct Totals: Equatable {
        /// Counter energy is kept in the counter's own integer units and converted once, so
        /// 100000 µJ reads as 0.1 J and not as an accumulation of rounding errors.
        var counterUnits: UInt64 = 0
        var unitsPerJoule = 1.0
        var integratedJoules = 0.0
        var joules: Double { Double(counterUnits) / unitsPerJoule + integratedJoules }

        /// Energy since an earlier snapshot, converted from the unit difference.
        func joules(since earlier: Totals) -> Double {
            Double(counterUnits - earlier.counterUnits) / unitsPerJoule + (integratedJoules - earlier.integratedJoules)
        }
        var observedNanoseconds: UInt64 = 0
        var samples = 0
        var wraps = 0
        var resets = 0
        var failures = 0
        var lastFailure: String?
    }

    /// A wrap is believed only when the energy it implies fits this power over the interval
    /// (the same generous bound that sizes the sampling interval).
    static let plausibleWrapWatts = RAPLMeter.generousMaximumWatts

    private(set) var totals = Totals()
    private(set) var method: MeasurementMethod?
    private var previous: (time: UInt64, value: SampleValue)?
    /// When the last good sample was taken (nil before the first).
    private(set) var lastSampleTime: UInt64?

    /// The next sample starts afresh instead of pairing with the last one: the stretch between
    /// them is a gap. Used at a window boundary the device was not sampled at, so energy between
    /// a sample before the boundary and one after it is never put into either window.
    mutating func breakPairing() {
        previous = nil
    }

    /// Feeds one sample taken at monotonic time `time`.
    mutating func add(_ value: SampleValue, at time: UInt64) {
        defer { previous = (time, value) }
        switch value {
        case .unavailable(let reason):
            totals.failures += 1
            totals.lastFailure = reason
            return
        case .counter:
            method = .counterDelta
        case .power:
            method = .powerIntegration
        }
        totals.samples += 1
        lastSampleTime = time
        guard let previous else { return }
        let elapsed = time &- previous.time
        switch (previous.value, value) {
        case let (.counter(before, _, _), .counter(now, unitsPerJoule, range)):
            totals.unitsPerJoule = unitsPerJoule
            if now >= before {
                totals.counterUnits += now - before
                totals.observedNanoseconds += elapsed
            } else if let range, before <= range, now <= range,
                      Double(range - before + now) / unitsPerJoule <= Self.plausibleWrapWatts * Double(elapsed) / 1e9 {
                // The counter passed its range and restarted at zero: at most one wrap fits in a
                // sampling interval (the interval is sized for it).
                totals.counterUnits += range - before + now
                totals.observedNanoseconds += elapsed
                totals.wraps += 1
            } else {
                // A decrease that no plausible power can explain as a wrap is a reset: taking it
                // for a wrap would invent up to a whole counter range of energy.
                // Reset (driver reload, GPU reset): energy since the reset counts from zero; the
                // stretch before the reset was not observed, so it lowers coverage.
                totals.counterUnits += now
                totals.resets += 1
            }
        case let (.power(before), .power(now)):
            totals.integratedJoules += (before + now) / 2 * Double(elapsed) / 1e9
            totals.observedNanoseconds += elapsed
        default:
            break  // after a failed read there is nothing to pair with: a gap
        }
    }
}
