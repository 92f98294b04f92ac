import EmitContract
import EmitMeters
import Foundation

/// One live facility meter from the collect configuration.
public struct FacilityMeterConfiguration: Sendable, Equatable {
    public enum Connection: Sendable, Equatable {
        case ipmi(IPMIConnection)
        case redfish(RedfishConnection)
        case ups(NUTConnection)
        case pdu(SNMPConnection)
    }

    public var device: Device
    public var source: EnergySource
    public var pueApplied: Bool
    public var connection: Connection
}

/// `emit facility collect --config FILE`: the facility and its meters.
///
/// ```json
/// {"facility_id": "campus-a", "region": "eu-west", "grid_region": "DE",
///  "meters": [{"id": "rack-12-inlet", "source": "pdu", "class": "pdu_inlet", "pue_applied": false,
///              "host": "10.0.0.12", "community_file": "/etc/emit/pdu.community", "profile": "apc-rpdu2"}]}
/// ```
/// Credentials are named by file (`password_file`, `community_file`); a config holding a literal
/// `password` is refused so it is not copied around with secrets in it.
public struct CollectConfiguration: Sendable, Equatable {
    public var facilityID: String
    public var region: String?
    public var gridRegion: String?
    public var meters: [FacilityMeterConfiguration]

    /// Every problem of the file, each naming the field; nothing is half-accepted.
    public struct Invalid: Error, CustomStringConvertible {
        public let problems: [String]
        public var description: String { problems.joined(separator: "\n") }
    }

    public static func load(path: String) throws(Invalid) -> CollectConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else { throw Invalid(problems: ["\(path): cannot read the file"]) }
        return try parse(Array(data), file: path)
    }

    static let topMembers: Set<String> = ["facility_id", "region", "grid_region", "meters"]
    static let commonMembers: Set<String> = ["id", "source", "class", "pue_applied", "name"]
    static let connectionMembers: [EnergySource: Set<String>] = [
        .ipmi: ["host", "port", "username", "password_file", "cipher_suite", "sensor"],
        .redfish: ["url", "chassis", "username", "password_file", "ca_file", "session"],
        .ups: ["host", "port", "ups", "prefer"],
        .pdu: ["host", "port", "community", "community_file", "profile", "index", "outlet", "unit", "prefer"],
    ]

    public static func parse(_ bytes: [UInt8], file: String) throws(Invalid) -> CollectConfiguration {
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch { throw Invalid(problems: ["\(file): not valid JSON: \(error)"]) }
        guard case .object(let top) = root else { throw Invalid(problems: ["\(file): the configuration must be a JSON object"]) }
        var problems: [String] = []
        func problem(_ field: String, _ message: String) { problems.append("\(file): \(field): \(message)") }
        for (name, _) in top where !topMembers.contains(name) { problem(name, "unknown member (expected \(topMembers.sorted().joined(separator: ", ")))") }

        func string(_ value: JSONValue?, _ field: String, required: Bool) -> String? {
            guard let value else { if required { problem(field, "missing") }; return nil }
            guard let text = value.stringValue, !text.isEmpty else { problem(field, "must be a non-empty string"); return nil }
            return text
        }
        func integer(_ value: JSONValue?, _ field: String, in range: ClosedRange<Int>) -> Int? {
            guard let value else { return nil }
            guard let number = value.integerValue, range.contains(Int(number)) else {
                problem(field, "must be an integer in \(range.lowerBound)...\(range.upperBound)"); return nil
            }
            return Int(number)
        }

        func flag(_ value: JSONValue?, _ field: String) -> Bool {
            guard let value else { return false }
            guard let bool = value.boolValue else { problem(field, "must be true or false"); return false }
            return bool
        }
        /// `prefer`: "energy" (the default: a counter loses nothing between samples) or "power".
        func prefersPower(_ value: JSONValue?, _ field: String) -> Bool {
            guard let prefer = string(value, field, required: false) else { return false }
            if prefer != "energy", prefer != "power" { problem(field, "must be \"energy\" or \"power\"") }
            return prefer == "power"
        }

        let facilityID = string(root["facility_id"], "facility_id", required: true) ?? ""
        let region = string(root["region"], "region", required: false)
        let gridRegion = string(root["grid_region"], "grid_region", required: false)
        if root["region"] == nil, root["grid_region"] == nil { problem("region", "give region or grid_region (or both)") }

        var meters: [FacilityMeterConfiguration] = []
        var seenIDs = Set<String>()
        switch root["meters"] {
        case nil: problem("meters", "missing")
        case .array(let items)? where !items.isEmpty:
            for (index, item) in items.enumerated() {
                let at = "meters[\(index)]"
                guard case .object(let members) = item else { problem(at, "must be an object"); continue }
                let id = string(item["id"], "\(at).id", required: true)
                if let id, !seenIDs.insert(id).inserted { problem("\(at).id", "\"\(id)\" names another meter too") }
                var source: EnergySource?
                if let name = string(item["source"], "\(at).source", required: true) {
                    source = EnergySource(rawValue: name)
                    if source.flatMap({ connectionMembers[$0] }) == nil {
                        problem("\(at).source", "\"\(name)\" is not a live facility meter (choose from ipmi, redfish, ups, pdu)")
                        source = nil
                    }
                }
                var deviceClass: DeviceClass?
                if let name = string(item["class"], "\(at).class", required: true) {
                    deviceClass = DeviceClass(rawValue: name)
                    if !(deviceClass?.isAllowed(at: .facility) ?? false) {
                        problem("\(at).class", "\"\(name)\" is not a facility device class (choose from \(DeviceClass.facilityGrain.map(\.rawValue).sorted().joined(separator: ", ")))")
                        deviceClass = nil
                    }
                }
                var pueApplied: Bool?
                switch item["pue_applied"] {
                case nil: problem("\(at).pue_applied", "missing (true when the reading already includes facility overhead; never defaulted)")
                case .bool(let value)?: pueApplied = value
                default: problem("\(at).pue_applied", "must be true or false")
                }
                if item["password"] != nil { problem("\(at).password", "credentials are read from files: use password_file") }
                guard let source else { continue }
                let allowed = commonMembers.union(connectionMembers[source] ?? [])
                for (name, _) in members where !allowed.contains(name) && name != "password" {
                    problem("\(at).\(name)", "unknown member for source \(source.rawValue) (allowed: \(allowed.sorted().joined(separator: ", ")))")
                }
                let port = integer(item["port"], "\(at).port", in: 1...65535)
                var connection: FacilityMeterConfiguration.Connection?
                switch source {
                case .ipmi:
                    let host = string(item["host"], "\(at).host", required: false)
                    let username = string(item["username"], "\(at).username", required: false)
                    let passwordFile = string(item["password_file"], "\(at).password_file", required: false)
                    if host != nil, username != nil, passwordFile == nil { problem("\(at).password_file", "missing: a remote BMC user needs a password file") }
                    connection = .ipmi(IPMIConnection(
                        host: host, port: port, username: username, passwordFile: passwordFile,
                        cipherSuite: integer(item["cipher_suite"], "\(at).cipher_suite", in: 0...17) ?? 3,
                        sensor: string(item["sensor"], "\(at).sensor", required: false)))
                case .redfish:
                    if let text = string(item["url"], "\(at).url", required: true) {
                        if let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil {
                            connection = .redfish(RedfishConnection(
                                url: url, chassis: string(item["chassis"], "\(at).chassis", required: false),
                                username: string(item["username"], "\(at).username", required: false),
                                passwordFile: string(item["password_file"], "\(at).password_file", required: false),
                                caFile: string(item["ca_file"], "\(at).ca_file", required: false),
                                useSession: flag(item["session"], "\(at).session")))
                        } else {
                            problem("\(at).url", "\"\(text)\" is not an http(s) URL")
                        }
                    }
                case .ups:
                    let preferPower = prefersPower(item["prefer"], "\(at).prefer")
                    if let host = string(item["host"], "\(at).host", required: true), let ups = string(item["ups"], "\(at).ups", required: true) {
                        connection = .ups(NUTConnection(host: host, port: port ?? 3493, ups: ups, preferPower: preferPower))
                    }
                default:  // .pdu
                    let host = string(item["host"], "\(at).host", required: true)
                    var community = string(item["community"], "\(at).community", required: false)
                    if let file = string(item["community_file"], "\(at).community_file", required: false) {
                        if community != nil { problem("\(at).community_file", "give community or community_file, not both") }
                        if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                            community = text.trimmingCharacters(in: .whitespacesAndNewlines)
                        } else {
                            problem("\(at).community_file", "cannot read \(file)")
                        }
                    }
                    var profile: PDUProfile?
                    if let name = string(item["profile"], "\(at).profile", required: true) {
                        profile = PDUProfile(rawValue: name)
                        if profile == nil { problem("\(at).profile", "\"\(name)\" is not a PDU profile (choose from \(PDUProfile.allCases.map(\.rawValue).joined(separator: ", ")))") }
                    }
                    let preferPower = prefersPower(item["prefer"], "\(at).prefer")
                    if item["community"] == nil, item["community_file"] == nil { problem("\(at).community_file", "missing (or community)") }
                    if let host, let community, let profile {
                        connection = .pdu(SNMPConnection(
                            host: host, port: port ?? 161, community: community, profile: profile,
                            index: integer(item["index"], "\(at).index", in: 0...Int(Int32.max)) ?? 1,
                            outlet: integer(item["outlet"], "\(at).outlet", in: 1...Int(Int32.max)),
                            unit: integer(item["unit"], "\(at).unit", in: 1...256) ?? 1,
                            preferPower: preferPower))
                    }
                }
                if let id, let deviceClass, let pueApplied, let connection {
                    let device = Device(class: deviceClass, id: id, name: string(item["name"], "\(at).name", required: false))
                    meters.append(FacilityMeterConfiguration(device: device, source: source, pueApplied: pueApplied, connection: connection))
                }
            }
        default: problem("meters", "must be a non-empty array")
        }
        guard problems.isEmpty else { throw Invalid(problems: problems) }
        return CollectConfiguration(facilityID: facilityID, region: region, gridRegion: gridRegion, meters: meters)
    }
}
