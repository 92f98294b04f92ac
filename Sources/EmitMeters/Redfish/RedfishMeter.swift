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
        // Every document of the round at once, each once (EnvironmentMetrics often holds the
        // counter and the power both): a BMC takes 100-300 ms an answer, and a power shelf's
        // seven sensors read one after another outlasted a 250 ms interval.
        var paths: [String] = []
        for source in (power?.sources ?? []) + (counter?.sources ?? []) where !paths.contains(source.path) { paths.append(source.path) }
        let documents = Dictionary(uniqueKeysWithValues: zip(paths, fetch(paths)))
        var powerReading: PowerReading?
        var powerFailure: String?
        if let power {
            switch read(power, from: documents, quantaFrom: counter?.sources.count ?? 0) {
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
        switch read(counter, from: documents, quantaFrom: 0) {
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
    private func read(_ reading: RedfishReading, from documents: [String: Result<JSONValue, Failure>],
                      quantaFrom offset: Int) -> Result<(Double, Double), Failure> {
        var total = 0.0, quantum = 0.0
        for (index, source) in reading.sources.enumerated() {
            guard let fetched = documents[source.path] else { return .failure(Failure(description: "\(source.path) was not fetched")) }
            guard case .success(let document) = fetched else { return fetched.map { _ in (0, 0) } }
            guard let value = RedfishDocuments.number(in: document, at: source.member) else {
                return .failure(Failure(description: "\(source.path) has no \(source.member.joined(separator: ".")) reading"))
            }
            total += value
            quanta[offset + index] = min(quanta[offset + index], DecimalQuantum.of(value: value))
            quantum += quanta[offset + index]
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
        try wait(for: start(method, path, body: body)).get()
    }

    /// A request on its way (the client's pool keeps up to 8 connections to the BMC).
    private func start(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil)
        -> Result<(target: String, answer: EventLoopFuture<HTTPClient.Response>), Failure> {
        guard let target = URL(string: path, relativeTo: connection.url) else { return .failure(Failure(description: "bad resource path \(path)")) }
        var headers = HTTPHeaders([("Accept", "application/json")])
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        if let token = session?.token { headers.add(name: "X-Auth-Token", value: token) }
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        do {
            let request = try HTTPClient.Request(url: target.absoluteString, method: method, headers: headers, body: body.map { .bytes($0) })
            return .success((target.absoluteString, client.execute(request: request, deadline: .now() + .milliseconds(timeout))))
        } catch {
            return .failure(Failure(description: "\(target.absoluteString): \(NetworkFailure.describe(error))"))
        }
    }

    private func wait(for started: Result<(target: String, answer: EventLoopFuture<HTTPClient.Response>), Failure>) -> Result<HTTPClient.Response, Failure> {
        started.flatMap { target, answer in
            do { return .success(try answer.wait()) } catch { return .failure(Failure(description: "\(target): \(NetworkFailure.describe(error))")) }
        }
    }

    // The HTTP client must be shut down before it goes; a meter dropped unclosed does it here
    // (meters are released by the sampler's owner, never on an event loop).
    deinit { close() }

    public typealias Failure = RedfishFailure

    private func get(_ path: String) throws(Failure) -> JSONValue {
        try fetch([path])[0].get()
    }

    /// The documents at `paths`, all requested before any answer is awaited.
    private func fetch(_ paths: [String]) -> [Result<JSONValue, Failure>] {
        var responses = paths.map { start(.GET, $0) }.map(wait(for:))
        // A session the BMC expired (or forgot on a reboot): log in again once, and ask again.
        let expired = responses.indices.filter { (try? responses[$0].get().status) == .unauthorized }
        if session != nil, !expired.isEmpty {
            do {
                try logIn()
                for (index, again) in zip(expired, expired.map { start(.GET, paths[$0]) }.map(wait(for:))) { responses[index] = again }
            } catch {
                for index in expired { responses[index] = .failure(error) }
            }
        }
        return zip(paths, responses).map { path, response in
            let target = URL(string: path, relativeTo: connection.url)?.absoluteString ?? path
            return response.flatMap { response in
                guard response.status == .ok else {
                    if response.status == .unauthorized { return .failure(Failure(description: "\(target): 401, check username and password file")) }
                    return .failure(Failure(description: "\(target): HTTP status \(response.status.code)"))
                }
                let bytes = response.body.map { Array($0.readableBytesView) } ?? []
                do { return .success(try JSONParser.parse(bytes)) } catch { return .failure(Failure(description: "\(target): not JSON (\(error))")) }
            }
        }
    }

    /// The configured chassis (by `Id` or by `@odata.id`), or the first with a counter or power.
    private func discover() throws(Failure) -> RedfishChassis {
        let (all, unreadable) = try survey()
        chassis = all
        if let wanted = connection.chassis {
            let target = RedfishDocuments.trimmed(wanted)
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

    /// The service's documents as this meter fetches them (sessions, retries on 401).
    var documents: RedfishDocuments { RedfishDocuments { path throws(Failure) in try self.get(path) } }

    /// Every chassis the service shows, as discovery sees it.
    public func survey() throws(Failure) -> (chassis: [RedfishChassis], unreadable: [String]) { try documents.survey() }

    /// Every reading the chassis offers, best first.
    func readings(of chassis: JSONValue) -> [RedfishReading] { documents.readings(of: chassis) }
}
