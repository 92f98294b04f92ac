import EmitContract
import Foundation

/// Which MIB a PDU speaks, and what to read from it.
public enum PDUProfile: String, Sendable, CaseIterable {
    /// APC PowerNet-MIB rPDU2: device (or outlet) power in hundredths of kW (outlets: W) and
    /// energy in tenths of kWh; -1 where the model does not measure.
    case apcRPDU2 = "apc-rpdu2"
    /// Raritan PDU2-MIB: inlet (or outlet) activePower (W) and activeEnergy (Wh), each scaled by
    /// its sensor's decimal digits.
    case raritanPDU2 = "raritan-pdu2"
    /// ENTITY-SENSOR-MIB (RFC 3433): a watts sensor with scale and precision; power only.
    case entitySensor = "entity-sensor"
}

/// How to reach a PDU and which of its meters to read.
public struct SNMPConnection: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var community: String
    public var profile: PDUProfile
    /// The device / inlet row (APC: rPDU2DeviceStatusIndex; Raritan: inlet; ENTITY: entPhysicalIndex).
    public var index: Int
    /// An outlet instead of the whole device or inlet (APC, Raritan).
    public var outlet: Int?
    /// Raritan's pduId (1 for a single PDU; daisy chains count up).
    public var unit: Int
    /// Prefer power over the energy counter (a counter in 0.1 kWh is too coarse for short windows).
    public var preferPower: Bool

    public init(host: String, port: Int = 161, community: String, profile: PDUProfile, index: Int = 1,
                outlet: Int? = nil, unit: Int = 1, preferPower: Bool = false) {
        self.host = host
        self.port = port
        self.community = community
        self.profile = profile
        self.index = index
        self.outlet = outlet
        self.unit = unit
        self.preferPower = preferPower
    }
}

/// What a profile reads each sample: an energy counter or a power value, with the OIDs to
/// scale it.
struct PDUReadPlan: Equatable {
    enum Kind: Equatable {
        /// value × `unitsPerJoule⁻¹` J; raw values are the counter.
        case counter(unitsPerJoule: Double)
        /// value × `wattsPerUnit` W.
        case power(wattsPerUnit: Double)
    }

    var oid: [UInt]
    var kind: Kind
    /// The variable's name, for reasons and errors.
    var description: String
}

/// A rack PDU (inlet, device or outlet) over SNMP v2c.
public final class PDUMeter: EnergyMeter, @unchecked Sendable {
    public let readsOverNetwork = true
    public let source = EnergySource.pdu
    public private(set) var devices: [MeteredDevice]
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil
    public private(set) var method: MeasurementMethod?
    private let connection: SNMPConnection
    private var client: SNMPClient?
    private var plan: PDUReadPlan?
    /// The power reading read beside an energy counter (APC counts tenths of kWh: 360 kJ steps).
    private var powerPlan: PDUReadPlan?

    public init(connection: SNMPConnection, device: Device, timeout: Double = 1) {
        self.connection = connection
        devices = [MeteredDevice(source: .pdu, device: device)]
        do {
            let client = try SNMPClient(host: connection.host, port: connection.port, community: connection.community, timeout: timeout)
            self.client = client
            (plan, powerPlan) = try Self.discover(connection, client)
            method = plan.map { if case .counter = $0.kind { .counterDelta } else { .powerIntegration } }
        } catch {
            problems.append(MeterProblem(source: .pdu, deviceID: device.id, reason: error.description))
        }
        if plan == nil { devices = [] }
    }

    public func method(of index: Int) -> MeasurementMethod { method ?? .counterDelta }

    public func sample() -> [SampleValue] {
        guard let client, let plan else { return [] }
        let values: [SNMPValue]
        do { values = try client.get([plan.oid] + (powerPlan.map { [$0.oid] } ?? [])) } catch { return [.unavailable(reason: error.description)] }
        let counter = Self.sample(values[0], plan)
        guard let powerPlan, values.count > 1, case let .counter(raw, unitsPerJoule, range, quantum, _) = counter,
              case let .power(watts, quantumWatts) = Self.sample(values[1], powerPlan) else { return [counter] }
        return [.counter(raw: raw, unitsPerJoule: unitsPerJoule, wrapRange: range, quantumJoules: quantum,
                         power: PowerReading(watts: watts, quantumWatts: quantumWatts))]
    }

    public func close() { client = nil }

    static func sample(_ value: SNMPValue, _ plan: PDUReadPlan) -> SampleValue {
        guard let number = value.number else { return .unavailable(reason: "\(plan.description): \(value)") }
        // -1 is how APC (and others) answer "this model does not measure that".
        guard number >= 0 else { return .unavailable(reason: "\(plan.description) is \(Int(number)): not supported by this PDU") }
        switch plan.kind {
        case .counter(let unitsPerJoule): return .counter(raw: UInt64(number), unitsPerJoule: unitsPerJoule, wrapRange: nil)
        case .power(let wattsPerUnit): return .power(watts: number * wattsPerUnit, quantumWatts: wattsPerUnit)
        }
    }

    /// Chooses what to read: the energy counter where the PDU has one (unless power is
    /// preferred), with the power reading beside it where there is one; else power. Fails with
    /// the reason when the PDU measures neither.
    static func discover(_ c: SNMPConnection, _ client: SNMPClient) throws(SNMPClient.Failure) -> (PDUReadPlan, PDUReadPlan?) {
        var candidates: [PDUReadPlan] = []
        switch c.profile {
        case .apcRPDU2:
            let i = UInt(c.index)
            if let outlet = c.outlet.map(UInt.init) {
                // rPDU2OutletMeteredStatusEnergy (0.1 kWh), rPDU2OutletMeteredStatusPower (W)
                candidates = [
                    PDUReadPlan(oid: [1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 9, 4, 3, 1, 11, outlet], kind: .counter(unitsPerJoule: 1 / 360_000), description: "rPDU2OutletMeteredStatusEnergy.\(outlet)"),
                    PDUReadPlan(oid: [1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 9, 4, 3, 1, 7, outlet], kind: .power(wattsPerUnit: 1), description: "rPDU2OutletMeteredStatusPower.\(outlet)"),
                ]
            } else {
                // rPDU2DeviceStatusEnergy (0.1 kWh), rPDU2DeviceStatusPower (0.01 kW)
                candidates = [
                    PDUReadPlan(oid: [1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 4, 3, 1, 9, i], kind: .counter(unitsPerJoule: 1 / 360_000), description: "rPDU2DeviceStatusEnergy.\(i)"),
                    PDUReadPlan(oid: [1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 4, 3, 1, 5, i], kind: .power(wattsPerUnit: 10), description: "rPDU2DeviceStatusPower.\(i)"),
                ]
            }
        case .raritanPDU2:
            let unit = UInt(c.unit), row = UInt(c.outlet ?? c.index)
            // measurements{Inlet,Outlet}SensorValue and {inlet,outlet}SensorDecimalDigits; sensor
            // types activeEnergy(8) and activePower(5).
            let value: [UInt] = c.outlet == nil ? [1, 3, 6, 1, 4, 1, 13742, 6, 5, 2, 3, 1, 4] : [1, 3, 6, 1, 4, 1, 13742, 6, 5, 4, 3, 1, 4]
            let digits: [UInt] = c.outlet == nil ? [1, 3, 6, 1, 4, 1, 13742, 6, 3, 3, 4, 1, 7] : [1, 3, 6, 1, 4, 1, 13742, 6, 3, 5, 4, 1, 7]
            let where_ = c.outlet == nil ? "inlet" : "outlet"
            let scales = try client.get([digits + [unit, row, 8], digits + [unit, row, 5]])
            if let d = scales[0].number {
                candidates.append(PDUReadPlan(oid: value + [unit, row, 8], kind: .counter(unitsPerJoule: pow(10, d) / 3600), description: "\(where_) \(row) activeEnergy"))
            }
            if let d = scales[1].number {
                candidates.append(PDUReadPlan(oid: value + [unit, row, 5], kind: .power(wattsPerUnit: pow(10, -d)), description: "\(where_) \(row) activePower"))
            }
        case .entitySensor:
            let i = UInt(c.index)
            let base: [UInt] = [1, 3, 6, 1, 2, 1, 99, 1, 1, 1]
            // entPhySensorType, Scale, Precision, OperStatus
            let meta = try client.get([base + [1, i], base + [2, i], base + [3, i], base + [5, i]])
            guard let type = meta[0].number, let scale = meta[1].number, let precision = meta[2].number else {
                throw SNMPClient.Failure(description: "entPhySensorTable has no sensor \(i) (\(meta[0]))")
            }
            guard type == 6 else { throw SNMPClient.Failure(description: "ENTITY-SENSOR \(i) is not a watts sensor (entPhySensorType \(Int(type)))") }
            if let status = meta[3].number, status != 1 {
                throw SNMPClient.Failure(description: "ENTITY-SENSOR \(i) entPhySensorOperStatus is \(Int(status)) (not ok)")
            }
            // SensorDataScale: units(9) = 10^0, each step a factor of 1000.
            let factor = pow(10, (scale - 9) * 3 - precision)
            candidates = [PDUReadPlan(oid: base + [4, i], kind: .power(wattsPerUnit: factor), description: "entPhySensorValue.\(i)")]
        }
        if c.preferPower {
            let isPower: (PDUReadPlan) -> Bool = { if case .power = $0.kind { true } else { false } }
            candidates = candidates.filter(isPower) + candidates.filter { !isPower($0) }
        }
        var refusals: [String] = []
        var usable: [PDUReadPlan] = []
        for candidate in candidates {
            let value = try client.get([candidate.oid])[0]
            if case .unavailable(let reason) = sample(value, candidate) { refusals.append(reason); continue }
            usable.append(candidate)
        }
        if let chosen = usable.first {
            guard case .counter = chosen.kind else { return (chosen, nil) }
            return (chosen, usable.first { if case .power = $0.kind { true } else { false } })
        }
        throw SNMPClient.Failure(description: refusals.isEmpty ? "the PDU offers no power or energy reading" : refusals.joined(separator: "; "))
    }
}
