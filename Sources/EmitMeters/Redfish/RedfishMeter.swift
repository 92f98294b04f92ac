import AsyncHTTPClient
import EmitContract
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// How to reach a Redfish service and which chassis to meter.
public struct RedfishConnection: Sendable, Equatable {
    /// The service's base URL (scheme, host, port), e.g. https://bmc.example:443.
    public var url: URL
    /// The chassis `Id`; nil picks the first chassis that reports energy or power.
    public var chassis: String?
    public var username: String?
    public var passwordFile: String?
    /// PEM file with the CA that signed the BMC's certificate (BMCs rarely carry public ones).
    public var caFile: String?
    /// Log in once through the SessionService (X-Auth-Token) instead of sending the password
    /// with every request; the session is deleted on close.
    public var useSession: Bool

    public init(url: URL, chassis: String? = nil, username: String? = nil, passwordFile: String? = nil, caFile: String? = nil,
                useSession: Bool = false) {
        self.url = url
        self.chassis = chassis
        self.username = username
        self.passwordFile = passwordFile
        self.caFile = caFile
        self.useSession = useSession
    }
}

/// What a chassis is read from, in the order of preference: counters first (nothing lost between
/// samples), then power.
public struct RedfishReading: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case energyJoules, energyWh, energykWh, powerWatts

        var isCounter: Bool { self != .powerWatts }
        /// Counter units kept integral: mJ, mWh, mWh.
        var unitsPerJoule: Double {
            switch self {
            case .energyJoules: return 1000
            case .energyWh, .energykWh: return 1000 / 3600
            case .powerWatts: return 1
            }
        }
        var rawPerReading: Double { self == .energykWh ? 1_000_000 : 1000 }
    }

    public let kind: Kind
    /// Resource paths and the member path to the number inside each; several are summed (one
    /// counter per power supply).
    public let sources: [(path: String, member: [String])]
    /// Where it came from, for `emit sensors` and the stderr summary.
    public let label: String

    public static func == (a: RedfishReading, b: RedfishReading) -> Bool {
        a.kind == b.kind && a.label == b.label && a.sources.map(\.path) == b.sources.map(\.path)
            && a.sources.map(\.member) == b.sources.map(\.member)
    }
}

/// Node or chassis energy from a BMC's Redfish service.
///
/// Discovery order (DSP0268): `EnvironmentMetrics.EnergyJoules`, `EnergykWh`; a chassis-level
/// `Sensor` with `ReadingType` `EnergyJoules`, `EnergyWh` or `EnergykWh`; the power supplies'
/// `PowerSupplyMetrics.EnergykWh` summed; then power: `EnvironmentMetrics.PowerWatts`, a
/// `Sensor` of `ReadingType` `Power`, and the deprecated `Power.PowerControl[0].PowerConsumedWatts`.
public final class RedfishMeter: EnergyMeter, @unchecked Sendable {
    public let readsOverNetwork = true
    public let source = EnergySource.redfish
    public private(set) var devices: [MeteredDevice] = []
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil
    public private(set) var reading: RedfishReading?
    private let connection: RedfishConnection
    private let client: HTTPClient
    private let authorization: String?
    private let credentials: (username: String, password: String)?
    /// The session's token and its resource (to delete it), when logged in through a session.
    private var session: (token: String, location: String?)?
    private let timeout: Int64

    /// `device`: the id and class to report; its id defaults to the chassis `Id`.
    public init(connection: RedfishConnection, deviceClass: DeviceClass = .chassis, deviceID: String? = nil, timeout: Double = 5) {
        self.connection = connection
        self.timeout = Int64(timeout * 1000)
        var configuration = HTTPClient.Configuration()
        var startupProblem: String?
        if let caFile = connection.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caFile)]
            configuration.tlsConfiguration = tls
        }
        configuration.timeout = .init(connect: .milliseconds(self.timeout), read: .milliseconds(self.timeout))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        if let username = connection.username {
            var password = ""
            if let file = connection.passwordFile {
                if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                    password = text.trimmingCharacters(in: .newlines)
                } else {
                    startupProblem = "password file \(file) is not readable"
                }
            }
            credentials = (username, password)
            authorization = connection.useSession ? nil : "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
        } else {
            credentials = nil
            authorization = nil
        }
        if connection.useSession, credentials == nil { startupProblem = "a Redfish session needs a username and password file" }
        if let startupProblem {
            problems.append(MeterProblem(source: .redfish, deviceID: deviceID, reason: startupProblem))
            return
        }
        do {
            if connection.useSession { try logIn() }
            let (chassisID, found) = try discover()
            reading = found
            devices = [MeteredDevice(source: .redfish, device: Device(class: deviceClass, id: deviceID ?? chassisID, name: found.label))]
        } catch {
            problems.append(MeterProblem(source: .redfish, deviceID: deviceID ?? connection.chassis, reason: error.description))
        }
    }

    public var method: MeasurementMethod? { reading.map { $0.kind.isCounter ? .counterDelta : .powerIntegration } }
    public func method(of index: Int) -> MeasurementMethod { method ?? .counterDelta }

    public func sample() -> [SampleValue] {
        guard let reading else { return [] }
        var total = 0.0
        for source in reading.sources {
            do {
                let document = try get(source.path)
                guard let value = Self.number(in: document, at: source.member) else {
                    return [.unavailable(reason: "\(source.path) has no \(source.member.joined(separator: ".")) reading")]
                }
                total += value
            } catch {
                return [.unavailable(reason: error.description)]
            }
        }
        if reading.kind.isCounter {
            guard total >= 0, total.isFinite else { return [.unavailable(reason: "\(reading.label) is \(total)")] }
            return [.counter(raw: UInt64((total * reading.kind.rawPerReading).rounded()), unitsPerJoule: reading.kind.unitsPerJoule, wrapRange: nil)]
        }
        return [.power(watts: total)]
    }

    private var closed = false

    public func close() {
        guard !closed else { return }
        closed = true
        if let location = session?.location { _ = try? send(.DELETE, location) }
        try? client.syncShutdown()
    }

    /// POST /redfish/v1/SessionService/Sessions (DSP0266 §13.3.4): the token comes back in
    /// X-Auth-Token, the session's own URI in Location.
    private func logIn() throws(Failure) {
        guard let credentials else { return }
        var body: [UInt8] = []
        JSONWriter.write(.object([("UserName", .string(credentials.username)), ("Password", .string(credentials.password))]), sortKeys: false, into: &body)
        session = nil
        let response = try send(.POST, "/redfish/v1/SessionService/Sessions", body: body)
        guard response.status == .created || response.status == .ok, let token = response.headers.first(name: "X-Auth-Token") else {
            if response.status == .unauthorized { throw Failure(description: "session login: 401, check username and password file") }
            throw Failure(description: "session login: HTTP status \(response.status.code) without an X-Auth-Token")
        }
        session = (token, response.headers.first(name: "Location"))
    }

    private func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) throws(Failure) -> HTTPClient.Response {
        guard let target = URL(string: path, relativeTo: connection.url) else { throw Failure(description: "bad resource path \(path)") }
        var headers = HTTPHeaders([("Accept", "application/json")])
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        if let token = session?.token { headers.add(name: "X-Auth-Token", value: token) }
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        do {
            let request = try HTTPClient.Request(url: target.absoluteString, method: method, headers: headers, body: body.map { .bytes($0) })
            return try client.execute(request: request, deadline: .now() + .milliseconds(timeout)).wait()
        } catch {
            throw Failure(description: "\(target.absoluteString): \(error)")
        }
    }

    // The HTTP client must be shut down before it goes; a meter dropped unclosed does it here
    // (meters are released by the sampler's owner, never on an event loop).
    deinit { close() }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private func get(_ path: String) throws(Failure) -> JSONValue {
        var response = try send(.GET, path)
        // A session the BMC expired (or forgot on a reboot): log in again once.
        if response.status == .unauthorized, session != nil {
            try logIn()
            response = try send(.GET, path)
        }
        let target = URL(string: path, relativeTo: connection.url)?.absoluteString ?? path
        guard response.status == .ok else {
            if response.status == .unauthorized { throw Failure(description: "\(target): 401, check username and password file") }
            throw Failure(description: "\(target): HTTP status \(response.status.code)")
        }
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        do { return try JSONParser.parse(bytes) } catch { throw Failure(description: "\(target): not JSON (\(error))") }
    }

    static func number(in document: JSONValue, at member: [String]) -> Double? {
        var node: JSONValue? = document
        for key in member {
            if let index = Int(key), case .array(let items)? = node {
                node = index < items.count ? items[index] : nil
            } else {
                node = node?[key]
            }
        }
        return node?.numberValue
    }

    private static func link(_ document: JSONValue, _ key: String) -> String? {
        document[key]?["@odata.id"]?.stringValue
    }

    private func members(_ path: String) throws(Failure) -> [String] {
        guard case .array(let items)? = try get(path)["Members"] else { return [] }
        return items.compactMap { $0["@odata.id"]?.stringValue }
    }

    /// Finds the preferred reading of the configured (or first suitable) chassis.
    func discover() throws(Failure) -> (String, RedfishReading) {
        var tried: [String] = []
        var unreadable: [String] = []
        for path in try members("/redfish/v1/Chassis") {
            // Collections may list members a service cannot serve: one bad chassis is skipped.
            let chassis: JSONValue
            do { chassis = try get(path) } catch { unreadable.append(error.description); continue }
            let id = chassis["Id"]?.stringValue ?? String(path.split(separator: "/").last ?? "")
            if let wanted = connection.chassis, wanted != id { continue }
            if let found = readings(of: chassis).first { return (id, found) }
            tried.append(id)
        }
        if let wanted = connection.chassis, !tried.contains(wanted) {
            throw Failure(description: "no chassis \"\(wanted)\" at \(connection.url.absoluteString)/redfish/v1/Chassis"
                          + (unreadable.isEmpty ? "" : " (unreadable: \(unreadable.joined(separator: "; ")))"))
        }
        if tried.isEmpty, !unreadable.isEmpty { throw Failure(description: unreadable.joined(separator: "; ")) }
        throw Failure(description: tried.isEmpty ? "the service lists no chassis"
                      : "chassis \(tried.joined(separator: ", ")) report neither energy nor power")
    }

    /// Every reading the chassis offers, best first.
    func readings(of chassis: JSONValue) -> [RedfishReading] {
        var counters: [RedfishReading] = [], power: [RedfishReading] = []
        if let metricsPath = Self.link(chassis, "EnvironmentMetrics"), let metrics = try? get(metricsPath) {
            if Self.number(in: metrics, at: ["EnergyJoules", "Reading"]) != nil {
                counters.append(RedfishReading(kind: .energyJoules, sources: [(metricsPath, ["EnergyJoules", "Reading"])], label: "EnvironmentMetrics.EnergyJoules"))
            }
            if Self.number(in: metrics, at: ["EnergykWh", "Reading"]) != nil {
                counters.append(RedfishReading(kind: .energykWh, sources: [(metricsPath, ["EnergykWh", "Reading"])], label: "EnvironmentMetrics.EnergykWh"))
            }
            if Self.number(in: metrics, at: ["PowerWatts", "Reading"]) != nil {
                power.append(RedfishReading(kind: .powerWatts, sources: [(metricsPath, ["PowerWatts", "Reading"])], label: "EnvironmentMetrics.PowerWatts"))
            }
        }
        if let sensorsPath = Self.link(chassis, "Sensors") {
            var sensorCounters: [RedfishReading] = []
            for sensorPath in (try? members(sensorsPath)) ?? [] {
                guard let sensor = try? get(sensorPath), Self.number(in: sensor, at: ["Reading"]) != nil else { continue }
                // Per-supply or per-CPU sensors are parts; only a chassis-wide one is the whole.
                let context = sensor["PhysicalContext"]?.stringValue
                guard context == nil || context == "Chassis" || context == "SystemBoard" else { continue }
                if let state = sensor["Status"]?["State"]?.stringValue, state != "Enabled" { continue }
                let name = "Sensor \(sensor["Id"]?.stringValue ?? sensorPath) (\(sensor["ReadingType"]?.stringValue ?? "?"))"
                switch sensor["ReadingType"]?.stringValue {
                case "EnergyJoules": sensorCounters.append(RedfishReading(kind: .energyJoules, sources: [(sensorPath, ["Reading"])], label: name))
                case "EnergyWh": sensorCounters.append(RedfishReading(kind: .energyWh, sources: [(sensorPath, ["Reading"])], label: name))
                case "EnergykWh": sensorCounters.append(RedfishReading(kind: .energykWh, sources: [(sensorPath, ["Reading"])], label: name))
                case "Power": power.append(RedfishReading(kind: .powerWatts, sources: [(sensorPath, ["Reading"])], label: name))
                default: continue
                }
            }
            // The finest resolution first: J, then Wh, then kWh.
            let rank: [RedfishReading.Kind: Int] = [.energyJoules: 0, .energyWh: 1, .energykWh: 2]
            counters += sensorCounters.sorted { rank[$0.kind, default: 3] < rank[$1.kind, default: 3] }
        }
        if let subsystemPath = Self.link(chassis, "PowerSubsystem"), let subsystem = try? get(subsystemPath),
           let suppliesPath = Self.link(subsystem, "PowerSupplies") {
            var sources: [(String, [String])] = []
            var complete = true
            for supplyPath in (try? members(suppliesPath)) ?? [] {
                guard let supply = try? get(supplyPath) else { complete = false; continue }
                if let state = supply["Status"]?["State"]?.stringValue, state == "Absent" { continue }
                guard let metricsPath = Self.link(supply, "Metrics"), let metrics = try? get(metricsPath),
                      Self.number(in: metrics, at: ["EnergykWh", "Reading"]) != nil else { complete = false; continue }
                sources.append((metricsPath, ["EnergykWh", "Reading"]))
            }
            // A sum missing a present supply would under-count: only a complete set is a reading.
            if complete, !sources.isEmpty {
                counters.append(RedfishReading(kind: .energykWh, sources: sources, label: "PowerSupplyMetrics.EnergykWh of \(sources.count) supplies"))
            }
        }
        if let legacyPath = Self.link(chassis, "Power"), let legacy = try? get(legacyPath),
           Self.number(in: legacy, at: ["PowerControl", "0", "PowerConsumedWatts"]) != nil {
            power.append(RedfishReading(kind: .powerWatts, sources: [(legacyPath, ["PowerControl", "0", "PowerConsumedWatts"])], label: "Power.PowerControl[0].PowerConsumedWatts"))
        }
        return counters + power
    }
}
