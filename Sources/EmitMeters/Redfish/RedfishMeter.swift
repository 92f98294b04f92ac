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

/// One figure a chassis offers: an energy counter or a power reading, and where to read it.
public struct RedfishReading: Sendable, Equatable {
    /// Chosen by `ReadingType` (or the property's own name), never by `ReadingUnits`: services
    /// write "kW" or "kWh" where DSP0268 says "kW.h".
    public enum Kind: Sendable, Equatable {
        case energyJoules, energyWh, energykWh, powerWatts

        var isCounter: Bool { self != .powerWatts }
        /// Joules (counters) or watts (power) per unit of the reading.
        var scale: Double {
            switch self {
            case .energyJoules, .powerWatts: return 1
            case .energyWh: return 3600
            case .energykWh: return 3_600_000
            }
        }
        /// The units DSP0268 gives for the reading type (UCUM), and what services write instead.
        var units: (standard: String, accepted: Set<String>) {
            switch self {
            case .energyJoules: return ("J", ["J"])
            case .energyWh: return ("W.h", ["W.h", "Wh"])
            case .energykWh: return ("kW.h", ["kW.h", "kWh"])
            case .powerWatts: return ("W", ["W"])
            }
        }
    }

    public let kind: Kind
    /// Resource paths and the member path to the number inside each; several are summed (one
    /// counter per power supply).
    public let sources: [(path: String, member: [String])]
    /// Where it came from, for `emit sensors` and the stderr summary.
    public let label: String
    /// What a person should know about it (a unit that disagrees with the reading type).
    public var note: String?

    public static func == (a: RedfishReading, b: RedfishReading) -> Bool {
        a.kind == b.kind && a.label == b.label && a.sources.map(\.path) == b.sources.map(\.path)
            && a.sources.map(\.member) == b.sources.map(\.member) && a.note == b.note
    }
}

/// One chassis as discovery saw it: for `emit sensors`, and to say which chassis contain which.
public struct RedfishChassis: Sendable, Equatable {
    public let id: String
    public let path: String
    /// Chassis ids in its `Links.Contains`.
    public let contains: [String]
    /// Reachable only through another chassis's `Links.Contains`, not listed in the collection.
    public let onlyThroughContains: Bool
    public let counter: RedfishReading?
    public let power: RedfishReading?
}

/// Node or chassis energy from a BMC's Redfish service.
///
/// Per chassis, the best energy counter and the best power reading, each preferring a
/// chassis-wide figure over a sum of parts. Counters (DSP0268): `EnvironmentMetrics.EnergyJoules`,
/// `EnergykWh`; a chassis-wide `Sensor` of `ReadingType` `EnergyJoules`, `EnergyWh`, `EnergykWh`;
/// then parts, complete or not at all: the supplies' `EnergyJoules` sensors, their
/// `PowerSupplyMetrics.EnergykWh`. Power: `EnvironmentMetrics.PowerWatts`, a chassis-wide
/// `Sensor` of `ReadingType` `Power` (a total, never one phase or an output), the deprecated
/// `Power.PowerControl[0].PowerConsumedWatts`. Both are read each sample: the session uses the
/// counter where its steps (a whole-kWh counter shows 3.6 MJ steps) are fine against a window's
/// energy, and integrates the power otherwise.
public final class RedfishMeter: EnergyMeter, @unchecked Sendable {
    public let readsOverNetwork = true
    public let source = EnergySource.redfish
    public private(set) var devices: [MeteredDevice] = []
    public private(set) var problems: [MeterProblem] = []
    /// What to know about the metered chassis: units that disagree, chassis it contains.
    public private(set) var notes: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil
    public private(set) var counter: RedfishReading?
    public private(set) var power: RedfishReading?
    /// Every chassis the service showed at discovery (for `emit sensors`).
    public private(set) var chassis: [RedfishChassis] = []
    /// Per source of the counter, then of power: the finest decimal quantum seen so far.
    private var quanta: [Double] = []
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
        // A BMC that refuses connections is said at once (the HTTP client would retry to its deadline).
        if let host = connection.url.host,
           let refused = NetworkFailure.probe(host: host, port: connection.url.port ?? (connection.url.scheme == "https" ? 443 : 80), timeout: Double(self.timeout) / 1000) {
            problems.append(MeterProblem(source: .redfish, deviceID: deviceID ?? connection.chassis, reason: "\(connection.url.absoluteString): \(refused)"))
            return
        }
        do {
            if connection.useSession { try logIn() }
            let chosen = try discover()
            counter = chosen.counter
            power = chosen.power
            quanta = Array(repeating: .infinity, count: (counter?.sources.count ?? 0) + (power?.sources.count ?? 0))
            let label = [counter?.label, power?.label].compactMap { $0 }.joined(separator: " + ")
            devices = [MeteredDevice(source: .redfish, device: Device(class: deviceClass, id: deviceID ?? chosen.id, name: label))]
            for note in [counter?.note, power?.note].compactMap({ $0 }) {
                notes.append(MeterProblem(source: .redfish, deviceID: deviceID ?? chosen.id, reason: note))
            }
            if !chosen.contains.isEmpty {
                notes.append(MeterProblem(source: .redfish, deviceID: deviceID ?? chosen.id, reason:
                    "chassis \(chosen.id) contains \(chosen.contains.joined(separator: ", ")) (Links.Contains): its figure includes theirs; never add them up"))
            }
        } catch {
            problems.append(MeterProblem(source: .redfish, deviceID: deviceID ?? connection.chassis, reason: error.description))
        }
    }

    public var method: MeasurementMethod? {
        counter != nil ? .counterDelta : power != nil ? .powerIntegration : nil
    }
    public func method(of index: Int) -> MeasurementMethod { method ?? .counterDelta }

    public func sample() -> [SampleValue] {
        var powerReading: PowerReading?
        var powerFailure: String?
        if let power {
            switch read(power, quantaFrom: counter?.sources.count ?? 0) {
            case .success(let (watts, quantum)):
                if watts >= 0, watts.isFinite { powerReading = PowerReading(watts: watts, quantumWatts: quantum) }
                else { powerFailure = "\(power.label) is \(watts)" }
            case .failure(let failure): powerFailure = failure.description
            }
        }
        guard let counter else {
            if let powerReading { return [.power(watts: powerReading.watts, quantumWatts: powerReading.quantumWatts)] }
            return power == nil ? [] : [.unavailable(reason: powerFailure ?? "no power reading")]
        }
        switch read(counter, quantaFrom: 0) {
        case .success(let (joules, quantum)) where joules >= 0 && joules.isFinite && joules < 1.8e16:
            // Millijoules keep every reading integral (a kWh reading with 4 decimals is 360 J).
            return [.counter(raw: UInt64((joules * 1000).rounded()), unitsPerJoule: 1000, wrapRange: nil,
                             quantumJoules: quantum, power: powerReading)]
        case .success(let (joules, _)):
            // A counter that cannot be read this time: power of the same moment still counts.
            if let powerReading { return [.power(watts: powerReading.watts, quantumWatts: powerReading.quantumWatts)] }
            return [.unavailable(reason: "\(counter.label) is \(joules) J")]
        case .failure(let failure):
            if let powerReading { return [.power(watts: powerReading.watts, quantumWatts: powerReading.quantumWatts)] }
            return [.unavailable(reason: failure.description)]
        }
    }

    /// The reading's sources summed, scaled to J or W, with its quantum: the sum of each
    /// source's finest decimal step seen so far (a sum of parts is no finer than its parts).
    private func read(_ reading: RedfishReading, quantaFrom offset: Int) -> Result<(Double, Double), Failure> {
        var total = 0.0, quantum = 0.0
        for (index, source) in reading.sources.enumerated() {
            do {
                let document = try get(source.path)
                guard let value = Self.number(in: document, at: source.member) else {
                    return .failure(Failure(description: "\(source.path) has no \(source.member.joined(separator: ".")) reading"))
                }
                total += value
                quanta[offset + index] = min(quanta[offset + index], DecimalQuantum.of(value: value))
                quantum += quanta[offset + index]
            } catch {
                return .failure(error)
            }
        }
        return .success((total * reading.kind.scale, quantum * reading.kind.scale))
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
            throw Failure(description: "\(target.absoluteString): \(NetworkFailure.describe(error))")
        }
    }

    // The HTTP client must be shut down before it goes; a meter dropped unclosed does it here
    // (meters are released by the sampler's owner, never on an event loop).
    deinit { close() }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
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

    /// Every chassis the service shows: the collection's members, then those reachable only
    /// through `Links.Contains`, each with its best counter and power reading.
    public func survey() throws(Failure) -> (chassis: [RedfishChassis], unreadable: [String]) {
        var queue = try members("/redfish/v1/Chassis").map { ($0, false) }
        var seen = Set(queue.map { Self.trimmed($0.0) })
        var found: [RedfishChassis] = [], unreadable: [String] = []
        var next = 0
        while next < queue.count {
            let (path, onlyThroughContains) = queue[next]
            next += 1
            // Collections may list members a service cannot serve: one bad chassis is skipped.
            let document: JSONValue
            do { document = try get(path) } catch { unreadable.append(error.description); continue }
            var contains: [String] = []
            if case .array(let links)? = document["Links"]?["Contains"] {
                for link in links.compactMap({ $0["@odata.id"]?.stringValue }) {
                    contains.append(Self.lastComponent(link))
                    if seen.insert(Self.trimmed(link)).inserted { queue.append((link, true)) }
                }
            }
            let id = document["Id"]?.stringValue ?? Self.lastComponent(path)
            let offered = readings(of: document)
            found.append(RedfishChassis(id: id, path: Self.trimmed(path), contains: contains, onlyThroughContains: onlyThroughContains,
                                        counter: offered.first { $0.kind.isCounter }, power: offered.first { !$0.kind.isCounter }))
        }
        return (found, unreadable)
    }

    /// The configured chassis (by `Id` or by `@odata.id`), or the first with a counter or power.
    private func discover() throws(Failure) -> RedfishChassis {
        let (all, unreadable) = try survey()
        chassis = all
        if let wanted = connection.chassis {
            let target = Self.trimmed(wanted)
            guard let chassis = all.first(where: { $0.id == wanted || $0.path == target }) else {
                throw Failure(description: "no chassis \"\(wanted)\" at \(connection.url.absoluteString)/redfish/v1/Chassis"
                              + (all.isEmpty ? "" : " (it has \(all.map(\.id).joined(separator: ", ")))")
                              + (unreadable.isEmpty ? "" : " (unreadable: \(unreadable.joined(separator: "; ")))"))
            }
            guard chassis.counter != nil || chassis.power != nil else {
                throw Failure(description: "chassis \(chassis.id) reports neither energy nor power")
            }
            return chassis
        }
        if let chassis = all.first(where: { $0.counter != nil || $0.power != nil }) { return chassis }
        if all.isEmpty, !unreadable.isEmpty { throw Failure(description: unreadable.joined(separator: "; ")) }
        throw Failure(description: all.isEmpty ? "the service lists no chassis"
                      : "chassis \(all.map(\.id).joined(separator: ", ")) report neither energy nor power")
    }

    static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    static func lastComponent(_ path: String) -> String {
        String(trimmed(path).split(separator: "/").last ?? "")
    }

    /// A sensor's reading kind from its `ReadingType`, and a note when `ReadingUnits` disagrees.
    static func kind(ofSensor sensor: JSONValue, name: String) -> (RedfishReading.Kind, String?)? {
        let kind: RedfishReading.Kind
        switch sensor["ReadingType"]?.stringValue {
        case "EnergyJoules": kind = .energyJoules
        case "EnergyWh": kind = .energyWh
        case "EnergykWh": kind = .energykWh
        case "Power": kind = .powerWatts
        default: return nil
        }
        guard let units = sensor["ReadingUnits"]?.stringValue, !kind.units.accepted.contains(units) else { return (kind, nil) }
        return (kind, "\(name): ReadingUnits \"\(units)\" disagrees with ReadingType \(sensor["ReadingType"]?.stringValue ?? ""); read by ReadingType as \(kind.units.standard)")
    }

    /// Whether a sensor speaks for an output (a supply's output, a PDU's outlet side) rather than
    /// what the chassis draws. Names are the only hint some services give (`ps1_energy_out`).
    static func isOutput(_ sensor: JSONValue) -> Bool {
        if sensor["PhysicalSubContext"]?.stringValue == "Output" { return true }
        let name = (sensor["Id"]?.stringValue ?? "") + " " + (sensor["Name"]?.stringValue ?? "")
        let tokens = name.lowercased().split { !$0.isLetter && !$0.isNumber }
        return tokens.contains("out") || tokens.contains("output") || tokens.contains("pout")
    }

    /// Every reading the chassis offers, best first: counters, then power.
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
        // The finest unit first: J, then Wh, then kWh.
        let rank: (RedfishReading) -> Int = { [.energyJoules: 0, .energyWh: 1, .energykWh: 2][$0.kind] ?? 3 }
        var supplyEnergy: [(kind: RedfishReading.Kind, path: String, note: String?)] = []
        // DSP0268 fixes the collection's URI; a service that forgets the link still serves it.
        let ownPath = chassis["@odata.id"]?.stringValue.map { Self.trimmed($0) + "/Sensors" }
        if let sensorsPath = Self.link(chassis, "Sensors") ?? ownPath {
            var wholeCounters: [RedfishReading] = [], wholePower: [(rank: Int, reading: RedfishReading)] = []
            for sensorPath in (try? members(sensorsPath)) ?? [] {
                guard let sensor = try? get(sensorPath), Self.number(in: sensor, at: ["Reading"]) != nil else { continue }
                if let state = sensor["Status"]?["State"]?.stringValue, state != "Enabled" { continue }
                let id = sensor["Id"]?.stringValue ?? Self.lastComponent(sensorPath)
                let name = "Sensor \(id) (\(sensor["ReadingType"]?.stringValue ?? "?"))"
                guard let (kind, note) = Self.kind(ofSensor: sensor, name: name), !Self.isOutput(sensor) else { continue }
                let context = sensor["PhysicalContext"]?.stringValue
                if context == "PowerSupply" {
                    if kind.isCounter { supplyEnergy.append((kind, sensorPath, note)) }
                    continue
                }
                // Per-CPU, per-outlet or per-phase sensors are parts; only a chassis-wide total is the whole.
                guard context == nil || context == "Chassis" || context == "SystemBoard" else { continue }
                let electrical = sensor["ElectricalContext"]?.stringValue
                guard electrical == nil || electrical == "Total" else { continue }
                let reading = RedfishReading(kind: kind, sources: [(sensorPath, ["Reading"])], label: name, note: note)
                if kind.isCounter {
                    wholeCounters.append(reading)
                } else {
                    // A stated total first, then one whose name says total or chassis, then the rest.
                    let tokens = id.lowercased().split { !$0.isLetter && !$0.isNumber }
                    let named = tokens.contains("total") || tokens.contains("chassis")
                    wholePower.append((electrical == "Total" ? 0 : named ? 1 : 2, reading))
                }
            }
            counters += wholeCounters.sorted { rank($0) < rank($1) }
            power += wholePower.enumerated().sorted { ($0.element.rank, $0.offset) < ($1.element.rank, $1.offset) }.map(\.element.reading)
        }
        // Parts, only where they are complete: one reading per present supply.
        var presentSupplies: Int?
        var supplyMetrics: [(String, [String])] = []
        let subsystems = [Self.link(chassis, "PowerSubsystem"), chassis["@odata.id"]?.stringValue.map { Self.trimmed($0) + "/PowerSubsystem" }]
        if let suppliesPath = subsystems.lazy.compactMap({ $0 }).compactMap({ try? self.get($0) }).compactMap({ Self.link($0, "PowerSupplies") }).first {
            var complete = true, present = 0
            for supplyPath in (try? members(suppliesPath)) ?? [] {
                guard let supply = try? get(supplyPath) else { complete = false; continue }
                if let state = supply["Status"]?["State"]?.stringValue, state == "Absent" { continue }
                present += 1
                guard let metricsPath = Self.link(supply, "Metrics"), let metrics = try? get(metricsPath),
                      Self.number(in: metrics, at: ["EnergykWh", "Reading"]) != nil else { complete = false; continue }
                supplyMetrics.append((metricsPath, ["EnergykWh", "Reading"]))
            }
            presentSupplies = present
            if !complete { supplyMetrics = [] }
        }
        for kind in [RedfishReading.Kind.energyJoules, .energyWh, .energykWh] {
            let parts = supplyEnergy.filter { $0.kind == kind }
            // A sum missing a present supply would under-count: parts only when they match the supplies.
            guard !parts.isEmpty, presentSupplies == parts.count else { continue }
            let label = parts.count == 1 ? "supply Sensor \(Self.lastComponent(parts[0].path)) (\(kind.units.standard))"
                : "\(parts.count) supply Sensors (\(kind.units.standard)) summed"
            counters.append(RedfishReading(kind: kind, sources: parts.map { ($0.path, ["Reading"]) }, label: label,
                                           note: parts.compactMap(\.note).first))
        }
        if !supplyMetrics.isEmpty {
            counters.append(RedfishReading(kind: .energykWh, sources: supplyMetrics, label: "PowerSupplyMetrics.EnergykWh of \(supplyMetrics.count) supplies"))
        }
        if let legacyPath = Self.link(chassis, "Power"), let legacy = try? get(legacyPath),
           Self.number(in: legacy, at: ["PowerControl", "0", "PowerConsumedWatts"]) != nil {
            power.append(RedfishReading(kind: .powerWatts, sources: [(legacyPath, ["PowerControl", "0", "PowerConsumedWatts"])], label: "Power.PowerControl[0].PowerConsumedWatts"))
        }
        return counters + power
    }
}
