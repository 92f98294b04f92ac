import Crypto

/// The identity of a fact (CONTRACT.md "Identity and event_id"): the same fact emitted twice
/// gets the same id, so every receiver can deduplicate.
public struct EventIdentity: Sendable, Equatable {
    public var kind: String = Contract.kind
    public var grain: String
    public var energySource: String
    public var computeAssignmentRunID: String?
    public var facilityID: String?
    public var nodeID: String?
    public var deviceID: String?
    public var validFrom: String
    public var validTo: String

    public init(grain: String, energySource: String, computeAssignmentRunID: String? = nil,
                facilityID: String? = nil, nodeID: String? = nil, deviceID: String? = nil,
                validFrom: String, validTo: String) {
        self.grain = grain
        self.energySource = energySource
        self.computeAssignmentRunID = computeAssignmentRunID
        self.facilityID = facilityID
        self.nodeID = nodeID
        self.deviceID = deviceID
        self.validFrom = validFrom
        self.validTo = validTo
    }

    /// The identity object; absent members are omitted, never written as null.
    public var jsonValue: JSONValue {
        var members: [(String, JSONValue)] = [
            ("kind", .string(kind)), ("grain", .string(grain)), ("energy_source", .string(energySource)),
        ]
        if let computeAssignmentRunID { members.append(("compute_assignment_run_id", .string(computeAssignmentRunID))) }
        if let facilityID { members.append(("facility_id", .string(facilityID))) }
        if let nodeID { members.append(("node_id", .string(nodeID))) }
        if let deviceID { members.append(("device_id", .string(deviceID))) }
        members.append(("valid_from", .string(validFrom)))
        members.append(("valid_to", .string(validTo)))
        return .object(members)
    }

    /// RFC 8785 serialization of the identity object.
    public var canonicalBytes: [UInt8] { JSONWriter.canonical(jsonValue) }

    /// Lowercase hex SHA-256 of the canonical identity.
    public var eventID: String {
        let digest = SHA256.hash(data: canonicalBytes)
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The identity members of an event object, when every present one is a string
    /// (a member of another type is a `wrong_type` finding, and then no id can be computed).
    public init?(event: JSONValue) {
        func string(_ value: JSONValue?) -> (ok: Bool, value: String?) {
            guard let value else { return (true, nil) }
            guard case let .string(s) = value else { return (false, nil) }
            return (true, s)
        }
        let grain = string(event["grain"]), source = string(event["energy_source"])
        let run = string(event["compute_assignment_run_id"]), facility = string(event["facility_id"])
        let node = string(event["producer"]?["node_id"]), device = string(event["device"]?["id"])
        let from = string(event["valid_from"]), to = string(event["valid_to"])
        guard grain.ok, source.ok, run.ok, facility.ok, node.ok, device.ok, from.ok, to.ok,
              let g = grain.value, let s = source.value, let f = from.value, let t = to.value,
              event["kind"]?.stringValue == Contract.kind
        else { return nil }
        self.init(grain: g, energySource: s, computeAssignmentRunID: run.value, facilityID: facility.value,
                  nodeID: node.value, deviceID: device.value, validFrom: f, validTo: t)
    }
}
