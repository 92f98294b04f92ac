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
