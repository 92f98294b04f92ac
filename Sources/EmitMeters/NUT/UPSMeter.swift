import EmitContract
import Foundation

/// A UPS served by a NUT `upsd` (the NUT network protocol, TCP 3493 by default).
public struct NUTConnection: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The UPS name as upsd knows it (`ups` in `ups@host`).
    public var ups: String
    /// Integrate ups.realpower even where an energy counter exists (the counter counts whole Wh).
    public var preferPower: Bool

    public init(host: String, port: Int = 3493, ups: String, preferPower: Bool = false) {
        self.host = host
        self.port = port
        self.ups = ups
        self.preferPower = preferPower
    }
}

/// What a UPS offers, in order of preference.
public enum UPSReading: Sendable, Equatable {
    /// A cumulative output energy counter in Wh (`experimental.output.energy`, NUT's apc_modbus
    /// driver; NUT has no standard energy variable).
    case energyCounter(variable: String)
    /// `ups.realpower`: real output power in W, integrated.
    case realPower
    /// `ups.load` (%) × `ups.realpower.nominal` (W): an inference, so the device is `estimated`.
    case loadTimesNominal
}

/// UPS output energy through NUT. `ups.power` is apparent power (VA) and is never read as watts.
public final class UPSMeter: EnergyMeter, @unchecked Sendable {
    public let readsOverNetwork = true
    public let source = EnergySource.ups
    public private(set) var devices: [MeteredDevice]
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil
    public private(set) var reading: UPSReading?
    private let connection: NUTConnection
    private let timeout: Double
    private var socket: SocketConnection?
    private var hasRealPower = false

    static let energyCounterVariable = "experimental.output.energy"

    public init(connection: NUTConnection, device: Device, timeout: Double = 3) {
        self.connection = connection
        self.timeout = timeout
        devices = [MeteredDevice(source: .ups, device: device)]
        do {
            let variables = try listVariables()
            let number = { (name: String) in variables[name].flatMap(Double.init) }
            hasRealPower = number("ups.realpower") != nil
            if let refusal = Self.implausibility(of: variables, ups: connection.ups) {
                problems.append(MeterProblem(source: .ups, deviceID: device.id, reason: refusal))
            } else if !connection.preferPower, number(Self.energyCounterVariable) != nil {
                reading = .energyCounter(variable: Self.energyCounterVariable)
            } else if hasRealPower {
                reading = .realPower
            } else if number("ups.load") != nil, number("ups.realpower.nominal") != nil {
                reading = .loadTimesNominal
                devices = [MeteredDevice(source: .ups, device: device, provenance: .estimated)]
            } else {
                let apparent = variables["ups.power"] != nil ? " (it has ups.power, which is VA, not W)" : ""
                let pdu = variables["input.realpower"] != nil ? " (it has input.realpower: NUT serves a PDU here; meter the PDU over SNMP)" : ""
                problems.append(MeterProblem(source: .ups, deviceID: device.id, reason: "UPS \(connection.ups) has no ups.realpower, energy counter or ups.load with ups.realpower.nominal\(apparent)\(pdu)"))
            }
        } catch {
            problems.append(MeterProblem(source: .ups, deviceID: device.id, reason: error.description))
        }
        if reading == nil { devices = [] }
    }

    /// The smallest real-power rating a UPS plausibly has; NUT drivers are known to serve less
    /// (usbhid-ups reads 88 W on some CyberPower units rated 600 W).
    static let smallestPlausibleRatingWatts = 150.0

    /// Why what upsd serves cannot be metered honestly, or nil. Checked once, at open: values
    /// that are not numbers, a nominal rating no UPS has, a real power above its own rating, and
    /// the all-zero output a driver serves where it cannot read the power.
    static func implausibility(of variables: [String: String], ups: String) -> String? {
        let number = { (name: String) in variables[name].flatMap(Double.init) }
        for name in ["ups.realpower", "ups.load", "ups.realpower.nominal", energyCounterVariable] {
            if let text = variables[name], Double(text) == nil {
                return "UPS \(ups): \(name) is \"\(text)\", not a number"
            }
        }
        let nominal = number("ups.realpower.nominal")
        if let nominal, nominal < smallestPlausibleRatingWatts, number("ups.realpower") == nil {
            return "UPS \(ups): ups.realpower.nominal is \(Self.format(nominal)) W, not a plausible UPS rating (some drivers misread it), and there is no ups.realpower; ups.load × nominal would be wrong"
        }
        if let watts = number("ups.realpower"), let nominal, nominal >= smallestPlausibleRatingWatts, watts > nominal * 1.5 {
            return "UPS \(ups): ups.realpower \(Self.format(watts)) W is above 1.5 × its own rating ups.realpower.nominal \(Self.format(nominal)) W"
        }
        if number("ups.realpower") == 0, number("ups.load") == 0, number("ups.power") ?? 0 == 0,
           number(energyCounterVariable) == nil {
            return "UPS \(ups): ups.realpower, ups.load and ups.power are all 0, what drivers serve where they cannot read output power; 0 W would be a claim without evidence"
        }
        return nil
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    public func method(of index: Int) -> MeasurementMethod {
        if case .energyCounter = reading { return .counterDelta }
        return .powerIntegration
    }

    public func sample() -> [SampleValue] {
        guard let reading else { return [] }
        do {
            switch reading {
            case .energyCounter(let variable):
                let (wh, digits) = try number(variable)
                guard wh >= 0 else { return [.unavailable(reason: "\(variable) is negative (\(wh))")] }
                // The real power beside the counter: a whole-Wh counter is too coarse for short windows.
                let power = hasRealPower ? try? number("ups.realpower") : nil
                // Wh to mWh keeps the counter integral for any decimals the driver prints.
                return [.counter(raw: UInt64((wh * 1000).rounded()), unitsPerJoule: 1000 / 3600, wrapRange: nil,
                                 quantumJoules: digits * 3600,
                                 power: power.map { PowerReading(watts: $0.value, quantumWatts: $0.quantum) })]
            case .realPower:
                let (watts, quantum) = try number("ups.realpower")
                return [.power(watts: watts, quantumWatts: quantum)]
            case .loadTimesNominal:
                let (load, loadQuantum) = try number("ups.load")
                let (nominal, _) = try number("ups.realpower.nominal")
                return [.power(watts: load / 100 * nominal, quantumWatts: loadQuantum / 100 * nominal)]
            }
        } catch {
            socket = nil  // reconnect on the next sample
            return [.unavailable(reason: error.description)]
        }
    }

    public func close() {
        if let socket { try? socket.send(Array("LOGOUT\n".utf8)) }
        socket = nil
    }

    private func connected() throws(SocketConnection.Failure) -> SocketConnection {
        if let socket { return socket }
        let fresh = try SocketConnection(host: connection.host, port: connection.port, kind: .tcp, timeout: timeout)
        socket = fresh
        return fresh
    }

    /// A variable's value and the quantum of the text upsd sent ("25.94" → 0.01).
    private func number(_ variable: String) throws(SocketConnection.Failure) -> (value: Double, quantum: Double) {
        let socket = try connected()
        try socket.send(Array("GET VAR \(connection.ups) \(variable)\n".utf8))
        let line = try socket.readLine()
        if let error = NUTProtocol.error(in: line) { throw .init(description: "upsd answered \(error) for \(variable) of \(connection.ups)") }
        guard let text = NUTProtocol.value(ofVarLine: line, ups: connection.ups, variable: variable), let value = Double(text) else {
            throw .init(description: "unexpected answer to GET VAR \(variable): \(line)")
        }
        return (value, DecimalQuantum.of(text: text))
    }

    private func listVariables() throws(SocketConnection.Failure) -> [String: String] {
        let socket = try connected()
        try socket.send(Array("LIST VAR \(connection.ups)\n".utf8))
        let first = try socket.readLine()
        if let error = NUTProtocol.error(in: first) { throw .init(description: "upsd answered \(error) for UPS \(connection.ups)") }
        guard first == "BEGIN LIST VAR \(connection.ups)" else { throw .init(description: "unexpected answer to LIST VAR: \(first)") }
        var variables: [String: String] = [:]
        while true {
            let line = try socket.readLine()
            if line == "END LIST VAR \(connection.ups)" { return variables }
            let parts = line.split(separator: " ", maxSplits: 3)
            if parts.count == 4, parts[0] == "VAR", let value = NUTProtocol.value(ofVarLine: line, ups: connection.ups, variable: String(parts[2])) {
                variables[String(parts[2])] = value
            }
        }
    }
}
