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
        meters = Self.openSideBySide(configuration.meters)
        let pueApplied = Dictionary(configuration.meters.map { ($0.device.id, $0.pueApplied) }, uniquingKeysWith: { a, _ in a })
        session = MeteringSession(
            interval: interval, window: window, meters: meters,
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

    /// Opening probes each meter (a BMC that does not answer takes its whole timeout), so the
    /// meters are opened at the same time, each on a thread of its own, in configuration order.
    static func openSideBySide(_ configurations: [FacilityMeterConfiguration]) -> [EnergyMeter] {
        let opened = OpenedMeters(count: configurations.count)
        let done = DispatchGroup()
        for (index, configuration) in configurations.enumerated() {
            done.enter()
            Thread {
                opened.set(index, open(configuration))
                done.leave()
            }.start()
        }
        done.wait()
        return opened.all
    }

    static func open(_ meter: FacilityMeterConfiguration) -> EnergyMeter {
        switch meter.connection {
        case .ipmi(let connection): return IPMIMeter(connection: connection, device: meter.device, keepUnreadable: true)
        case .redfish(let connection): return RedfishMeter(connection: connection, deviceClass: meter.device.deviceClass, deviceID: meter.device.id)
        case .ups(let connection): return UPSMeter(connection: connection, device: meter.device)
        case .pdu(let connection): return PDUMeter(connection: connection, device: meter.device)
        }
    }
}

/// The meters being opened, one slot each, filled by the opening threads.
private final class OpenedMeters: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [EnergyMeter?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ meter: EnergyMeter) {
        lock.lock()
        slots[index] = meter
        lock.unlock()
    }

    var all: [EnergyMeter] {
        lock.lock()
        defer { lock.unlock() }
        return slots.compactMap { $0 }
    }
}
