import EmitContract
import EmitMeters
import EmitSessions
import Foundation

/// Samples every configured facility meter and emits one facility-grain event per meter per
/// window, the windows tiling time exactly (the metering session's windows).
public final class FacilityCollector: Sendable {
    public let configuration: CollectConfiguration
    public let meters: [EnergyMeter]
    private let session: MeteringSession

    /// Opens every meter (each reports what it found, or why it cannot be used) and prepares the
    /// session. `windowClosed` is told the count of whole windows emitted so far.
    public init(configuration: CollectConfiguration, interval: Double, window: Double,
                windowClosed: (@Sendable (Int) -> Void)? = nil, deliver: @escaping @Sendable ([EnergyEvent]) -> Void) {
        self.configuration = configuration
        meters = configuration.meters.map(Self.open)
        let pueApplied = Dictionary(configuration.meters.map { ($0.device.id, $0.pueApplied) }, uniquingKeysWith: { a, _ in a })
        session = MeteringSession(
            interval: interval, window: window, meters: meters, concurrentReads: true,
            eventFactory: { metered, window, joules, measurement, recordedAt in
                try FacilityWindowEventBuilder(
                    facilityID: configuration.facilityID, region: configuration.region, gridRegion: configuration.gridRegion,
                    source: metered.source, provenance: metered.provenance, window: window, energyJoules: joules,
                    pueApplied: pueApplied[metered.device.id] ?? false, device: metered.device, measurement: measurement
                ).build(recordedAt: recordedAt)
            },
            windowClosed: windowClosed, deliver: deliver)
    }

    public var meteredDevices: [MeteredDevice] { session.meteredDevices }
    public var problems: [MeterProblem] { meters.flatMap(\.problems) }

    public func start() { session.start() }

    /// Stops sampling; `emitPartialWindow` writes the stretch since the last whole window.
    public func stop(emitPartialWindow: Bool) -> SessionReport { session.stop(emitPartialWindow: emitPartialWindow) }

    static func open(_ meter: FacilityMeterConfiguration) -> EnergyMeter {
        switch meter.connection {
        case .ipmi(let connection): return IPMIMeter(connection: connection, device: meter.device, keepUnreadable: true)
        case .redfish(let connection): return RedfishMeter(connection: connection, deviceClass: meter.device.deviceClass, deviceID: meter.device.id)
        case .ups(let connection): return UPSMeter(connection: connection, device: meter.device)
        case .pdu(let connection): return PDUMeter(connection: connection, device: meter.device)
        }
    }
}
