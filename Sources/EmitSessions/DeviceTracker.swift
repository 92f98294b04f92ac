import EmitContract
import EmitMeters

/// Turns one device's samples into energy, honestly: counter deltas with wraps undone and resets
/// counted, and trapezoid-integrated power where the device reports power (alone, or beside its
/// counter). Every unobserved stretch (a failed read, the gap before a reset) is excluded from
/// the observed time, which is what coverage is made of. All values are cumulative so a window
/// is the difference of two snapshots; `WindowEvidence.choose` then picks what the window reports.
struct DeviceTracker {
    struct Totals: Equatable, Codable, Sendable {
        /// Counter energy is kept in the counter's own integer units and converted once, so
        /// 100000 µJ reads as 0.1 J and not as an accumulation of rounding errors.
        var counterUnits: UInt64 = 0
        var unitsPerJoule = 1.0
        var counterObservedNanoseconds: UInt64 = 0
        var counterSamples = 0
        /// Sample pairs across which the counter moved.
        var counterAdvances = 0
        var wraps = 0
        var resets = 0
        var powerJoules = 0.0
        var powerObservedNanoseconds: UInt64 = 0
        var powerSamples = 0
        var failures = 0
        var lastFailure: String?

        // Resolution evidence: the largest seen so far (read at a window's end, never differenced).
        /// The counter's quantum in joules.
        var counterQuantumJoules = 0.0
        /// The largest jump of a counter seen after it held still for at least one sample: a
        /// counter refreshed less often than it is read (an exporter's 30 s cache, a board's
        /// own update period) shows energy in steps of that size, whatever its unit.
        var staleStepJoules = 0.0
        /// How often that was seen: one stall of the reader (or an idle device waking) is no
        /// refresh period; from the second on, the counter is taken to be stale. A hold while
        /// the device's own power reading was positive counts as two: stale beyond doubt.
        var staleJumps = 0
        var powerQuantumWatts = 0.0
        /// The step the counter shows energy in: its quantum, or the jumps of a stale counter.
        var counterStepJoules: Double { max(counterQuantumJoules, staleJumps >= 2 ? staleStepJoules : 0) }

        var counterJoules: Double { Double(counterUnits) / unitsPerJoule }
        /// Good samples of any kind.
        var samples: Int { max(counterSamples, powerSamples) }
    }

    /// A wrap is believed only when the energy it implies fits this power over the interval
    /// (the same generous bound that sizes the sampling interval).
    static let plausibleWrapWatts = RAPLMeter.generousMaximumWatts
    /// A counter delta is the window's evidence only where the counter's step is at most this
    /// share of the energy it counted.
    static let largestCounterStepShare = 0.01
    /// A counter that held still for less than this is not thereby stale: two reads a moment
    /// apart (a window mark right after a periodic read) can fall between two updates of a live
    /// counter (RAPL's come about every millisecond).
    static let shortestTellingHold: UInt64 = 10_000_000

    private(set) var totals = Totals()
    private var previous: (time: UInt64, value: SampleValue)?
    /// When the last good counter and power readings were taken (nil before the first).
    private(set) var lastCounterTime: UInt64?
    private(set) var lastPowerTime: UInt64?
    /// The counter has not moved since the last advance.
    private var counterHeld = false
    /// The device's own power reading was positive while its counter held still: then the
    /// counter is stale beyond doubt, and its first jump already shows its step.
    private var heldWhilePowered = false
    private(set) var hasCounter = false
    private(set) var hasPower = false

    /// What survives a restart of the process that samples: the totals, and the last counter
    /// reading, to pair the first reading after the restart with.
    struct State: Equatable, Codable, Sendable {
        var totals: Totals
        var lastCounter: UInt64?
        var wrapRange: UInt64?
    }

    var state: State {
        var counter: UInt64?, range: UInt64?
        if case let .counter(raw, _, wrapRange, _, _)? = previous?.value { (counter, range) = (raw, wrapRange) }
        return State(totals: totals, lastCounter: counter, wrapRange: range)
    }

    /// The next counter reading counts from zero as after a reset (a reboot reset the counters).
    private var resetPending = false

    /// A tracker that goes on from `state` after `downtime` nanoseconds unobserved, at monotonic
    /// `now`. In the same boot the first counter reading pairs with the last one across the
    /// downtime, as any two readings do (a decrease is a wrap only where a plausible power
    /// explains it, else a reset), unless the downtime is long enough for the counter to have
    /// wrapped more than once: then the stretch is a gap. After a reboot the counters restarted
    /// from zero: a reset, counted, and the downtime is a gap. Power is never integrated across
    /// a downtime.
    static func resumed(from state: State, downtime: UInt64, sameBoot: Bool, now: UInt64) -> DeviceTracker {
        var tracker = DeviceTracker()
        tracker.totals = state.totals
        guard let last = state.lastCounter else { return tracker }
        tracker.hasCounter = true
        guard sameBoot else {
            tracker.resetPending = true
            return tracker
        }
        if let range = state.wrapRange,
           Self.plausibleWrapWatts * Double(downtime) / 1e9 >= Double(range) / state.totals.unitsPerJoule {
            return tracker  // it may have wrapped more than once: unknowable
        }
        tracker.previous = (now &- downtime, .counter(raw: last, unitsPerJoule: state.totals.unitsPerJoule, wrapRange: state.wrapRange))
        return tracker
    }

    /// The next sample starts afresh instead of pairing with the last one: the stretch between
    /// them is a gap. Used at a window boundary the device was not sampled at, so energy between
    /// a sample before the boundary and one after it is never put into either window.
    mutating func breakPairing() {
        previous = nil
    }

    /// Feeds one sample taken at monotonic time `time`.
    mutating func add(_ value: SampleValue, at time: UInt64) {
        defer { previous = (time, value) }
        let power: PowerReading?
        switch value {
        case .unavailable(let reason):
            totals.failures += 1
            totals.lastFailure = reason
            return
        case let .counter(raw, unitsPerJoule, range, quantum, companion):
            hasCounter = true
            totals.counterSamples += 1
            totals.unitsPerJoule = unitsPerJoule
            totals.counterQuantumJoules = max(totals.counterQuantumJoules, quantum ?? 1 / unitsPerJoule)
            lastCounterTime = time
            if resetPending {
                resetPending = false
                totals.counterUnits += raw
                totals.resets += 1
            } else if case let .counter(before, _, _, _, _)? = previous?.value, let previous {
                if raw == before, time &- previous.time >= Self.shortestTellingHold,
                   (companion?.watts ?? 0) > 0, (Self.power(in: previous.value) ?? 0) > 0 {
                    heldWhilePowered = true
                }
                addCounter(from: before, to: raw, unitsPerJoule: unitsPerJoule, range: range, elapsed: time &- previous.time)
            }
            power = companion
        case let .power(watts, quantum):
            power = PowerReading(watts: watts, quantumWatts: quantum)
        }
        guard let power else { return }
        hasPower = true
        totals.powerSamples += 1
        totals.powerQuantumWatts = max(totals.powerQuantumWatts, power.quantumWatts)
        lastPowerTime = time
        if let previous, let before = Self.power(in: previous.value) {
            totals.powerJoules += (before + power.watts) / 2 * Double(time &- previous.time) / 1e9
            totals.powerObservedNanoseconds += time &- previous.time
        }
    }

    private static func power(in value: SampleValue) -> Double? {
        switch value {
        case let .power(watts, _): return watts
        case let .counter(_, _, _, _, power): return power?.watts
        case .unavailable: return nil
        }
    }

    private mutating func addCounter(from before: UInt64, to now: UInt64, unitsPerJoule: Double, range: UInt64?, elapsed: UInt64) {
        if now == before {
            totals.counterObservedNanoseconds += elapsed
            if elapsed >= Self.shortestTellingHold { counterHeld = true }
        } else if now > before {
            totals.counterUnits += now - before
            totals.counterObservedNanoseconds += elapsed
            totals.counterAdvances += 1
            if counterHeld {
                totals.staleStepJoules = max(totals.staleStepJoules, Double(now - before) / unitsPerJoule)
                totals.staleJumps += heldWhilePowered ? 2 : 1
            }
            counterHeld = false
            heldWhilePowered = false
        } else if let range, before <= range, now <= range,
                  Double(range - before + now) / unitsPerJoule <= Self.plausibleWrapWatts * Double(elapsed) / 1e9 {
            // The counter passed its range and restarted at zero: at most one wrap fits in a
            // sampling interval (the interval is sized for it).
            totals.counterUnits += range - before + now
            totals.counterObservedNanoseconds += elapsed
            totals.counterAdvances += 1
            totals.wraps += 1
            counterHeld = false
        } else {
            // A decrease that no plausible power can explain as a wrap is a reset (driver reload,
            // GPU reset): taking it for a wrap would invent up to a whole counter range of energy.
            // Energy since the reset counts from zero; the stretch before it was not observed, so
            // it lowers coverage.
            totals.counterUnits += now
            totals.resets += 1
            counterHeld = false
        }
    }
}

/// What one device's window reports.
enum WindowEvidence: Equatable {
    case energy(joules: Double, method: MeasurementMethod, samples: Int, observedSeconds: Double,
                wraps: Int, resets: Int, resolutionJoules: Double)
    /// Readings were taken, but none can stand as measured energy for the window: the reason.
    case withheld(String)
    /// Fewer than two readings of any kind: nothing to say.
    case none

    /// The best evidence between two snapshots: the counter's delta where it advanced and its
    /// step (quantum, or the jump of a stale counter) is at most 1% of what it counted; else
    /// integrated power of the same device; else nothing measured, with the reason. A counter
    /// that did not move while power was read is never taken as 0 J.
    static func choose(before: DeviceTracker.Totals, now: DeviceTracker.Totals, seconds: Double,
                       openedWithCounter: Bool, openedWithPower: Bool) -> WindowEvidence {
        var counterFault: String?
        let counterSamples = now.counterSamples - before.counterSamples + (openedWithCounter ? 1 : 0)
        let counterObserved = Double(now.counterObservedNanoseconds - before.counterObservedNanoseconds) / 1e9
        if counterSamples >= 2, counterObserved > 0 {
            let joules = Double(now.counterUnits - before.counterUnits) / now.unitsPerJoule
            let step = now.counterStepJoules
            if now.counterAdvances == before.counterAdvances || joules <= 0 {
                counterFault = String(format: "the counter did not advance in %.3g s", counterObserved)
            } else if step > joules * DeviceTracker.largestCounterStepShare {
                let what = step > now.counterQuantumJoules ? "it was seen to jump by" : "its quantum is"
                counterFault = String(format: "the counter counted %@ J and %@ %@ J, more than 1%% of it",
                                      Self.format(joules), what, Self.format(step))
            } else {
                return .energy(joules: joules, method: .counterDelta, samples: counterSamples,
                               observedSeconds: counterObserved, wraps: now.wraps - before.wraps,
                               resets: now.resets - before.resets, resolutionJoules: step)
            }
        }
        let powerSamples = now.powerSamples - before.powerSamples + (openedWithPower ? 1 : 0)
        let powerObserved = Double(now.powerObservedNanoseconds - before.powerObservedNanoseconds) / 1e9
        if powerSamples >= 2, powerObserved > 0 {
            return .energy(joules: now.powerJoules - before.powerJoules, method: .powerIntegration, samples: powerSamples,
                           observedSeconds: powerObserved, wraps: 0, resets: 0,
                           resolutionJoules: now.powerQuantumWatts * seconds)
        }
        if let counterFault { return .withheld(counterFault + ", and the device gives no power reading to integrate") }
        return .none
    }

    /// Joules for a person: no exponent, at most 6 significant digits.
    static func format(_ joules: Double) -> String {
        let text = String(format: "%.6g", joules)
        return text.contains("e") ? String(format: "%.0f", joules) : text
    }
}
