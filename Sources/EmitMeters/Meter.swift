import EmitContract

/// One metered device: which interface reads it and what it is.
public struct MeteredDevice: Sendable, Hashable {
    public let source: EnergySource
    public let device: Device
    /// `estimated` where the reading is inferred rather than metered (a UPS's load percentage
    /// times its nominal power); such a device never yields a `measured` event.
    public let provenance: Provenance

    public init(source: EnergySource, device: Device, provenance: Provenance = .measured) {
        self.source = source
        self.device = device
        self.provenance = provenance
    }
}

/// A power reading and the quantum it is given in (1 W for a BMC's integer watts, 1 mW for
/// NVML, 10^-digits W for a decimal reading): integrated power shows energy no finer than the
/// quantum times the window.
public struct PowerReading: Sendable, Equatable {
    public let watts: Double
    public let quantumWatts: Double

    public init(watts: Double, quantumWatts: Double) {
        self.watts = watts
        self.quantumWatts = quantumWatts
    }
}

/// What one read of one device gave.
public enum SampleValue: Sendable, Equatable {
    /// A cumulative energy counter in units of 1/`unitsPerJoule` J (1e6 for RAPL's microjoules,
    /// 1e3 for NVML's millijoules). `wrapRange` is the counter's range where it wraps to zero
    /// (RAPL); nil for counters that never wrap, where a decrease can only be a reset (NVML's
    /// 64-bit millijoules). `quantumJoules` is the smallest step the counter can show when it is
    /// coarser than one unit (a Redfish reading in whole kWh kept as mWh); nil means one unit.
    /// `power` is a power reading of the same device taken with the counter: the evidence the
    /// session falls back on in a window where the counter is stale or too coarse.
    case counter(raw: UInt64, unitsPerJoule: Double, wrapRange: UInt64?, quantumJoules: Double? = nil, power: PowerReading? = nil)
    /// An instantaneous power reading, integrated over time by the session.
    case power(watts: Double, quantumWatts: Double)
    /// The device could not be read this time (lost GPU, vanished file): a gap, never zero.
    case unavailable(reason: String)
}

/// The quantum of a decimal reading: 1 for "374", 0.01 for "3000.00", 0.001 for "8.969".
public enum DecimalQuantum {
    /// From the text as the device wrote it (its trailing zeros count: they are digits it shows).
    public static func of(text: some StringProtocol) -> Double {
        var fraction = 0, exponent = 0, seenDot = false
        var rest = Substring(text)
        if let e = rest.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(rest[rest.index(after: e)...]) ?? 0
            rest = rest[..<e]
        }
        for character in rest {
            if character == "." { seenDot = true } else if seenDot, character.isNumber { fraction += 1 }
        }
        return pow10(exponent - fraction)
    }

    /// From a parsed number (JSON): its shortest round-trip form, so a trailing zero the service
    /// wrote is not seen (46.20 reads as 46.2); a meter keeps the finest quantum it has seen.
    public static func of(value: Double) -> Double {
        guard value.isFinite else { return 1 }
        var text = "\(value)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        return of(text: text)
    }

    /// 10^n, exact for |n| <= 22 (one correctly rounded division for negative n).
    static func pow10(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<abs(n) { result *= 10 }
        return n >= 0 ? result : 1 / result
    }
}

/// A device that was found but cannot be metered, or a whole interface that is missing.
public struct MeterProblem: Sendable, Equatable {
    public let source: EnergySource
    public let deviceID: String?
    public let reason: String

    public init(source: EnergySource, deviceID: String? = nil, reason: String) {
        self.source = source
        self.deviceID = deviceID
        self.reason = reason
    }
}

/// A physical energy interface. Implementations only read: they never set a limit or a state.
///
/// A meter is used by one thread at a time (the session's sampler), which is why the classes
/// conforming to it are `@unchecked Sendable`.
public protocol EnergyMeter: AnyObject, Sendable {
    var source: EnergySource { get }
    /// The devices this meter reads, in the order `sample()` returns values.
    var devices: [MeteredDevice] { get }
    /// What was found but is not usable, with the reason and, where there is one, the fix.
    var problems: [MeterProblem] { get }
    /// What a person should know about devices that are metered (a unit that disagrees with
    /// its reading type, a chassis that contains another).
    var notes: [MeterProblem] { get }
    /// The longest sampling interval (seconds) that still guarantees at most one counter wrap
    /// between two samples; nil when the counters cannot wrap in practice.
    var longestSafeInterval: Double? { get }
    /// One value per device, in `devices` order.
    func sample() -> [SampleValue]
    /// How device `index` is read: a counter's deltas, or integrated power.
    func method(of index: Int) -> MeasurementMethod
    /// Releases what the meter holds (library handles, sessions).
    func close()
    /// Whether a read waits on another machine or a tool (a BMC, a PDU, an exporter) and may
    /// take up to its timeout: such meters are read on threads of their own, so they never
    /// hold up the others' sampling.
    var readsOverNetwork: Bool { get }
}

extension EnergyMeter {
    public func method(of index: Int) -> MeasurementMethod { .counterDelta }
    public var readsOverNetwork: Bool { false }
    public var notes: [MeterProblem] { [] }
}
