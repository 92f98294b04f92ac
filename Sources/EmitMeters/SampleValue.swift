// What a read of one device gives: the values every meter hands the session. No other
// dependency, so the parsers that make them can be fuzzed on their own (Fuzz/).

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
