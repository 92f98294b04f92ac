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

    /// RFC 8785 serialization of the identity object. The member names are fixed ASCII, so
    /// their canonical (UTF-16) order is fixed too: written directly, without sorting.
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(320)
        out.append(UInt8(ascii: "{"))
        func member(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            out.append(contentsOf: "\":".utf8)
            JSONWriter.writeString(value, into: &out)
        }
        member("compute_assignment_run_id", computeAssignmentRunID)
        member("device_id", deviceID)
        member("energy_source", energySource)
        member("facility_id", facilityID)
        member("grain", grain)
        member("kind", kind)
        member("node_id", nodeID)
        member("valid_from", validFrom)
        member("valid_to", validTo)
        out.append(UInt8(ascii: "}"))
        return out
    }

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
        self.init(kind: event["kind"], grain: event["grain"], energySource: event["energy_source"],
                  computeAssignmentRunID: event["compute_assignment_run_id"], facilityID: event["facility_id"],
                  nodeID: event["producer"]?["node_id"], deviceID: event["device"]?["id"],
                  validFrom: event["valid_from"], validTo: event["valid_to"])
    }

    init?(kind: JSONValue?, grain: JSONValue?, energySource: JSONValue?, computeAssignmentRunID: JSONValue?,
          facilityID: JSONValue?, nodeID: JSONValue?, deviceID: JSONValue?, validFrom: JSONValue?, validTo: JSONValue?) {
        func string(_ value: JSONValue?) -> (ok: Bool, value: String?) {
            guard let value else { return (true, nil) }
            guard case let .string(s) = value else { return (false, nil) }
            return (true, s)
        }
        let g = string(grain), s = string(energySource), run = string(computeAssignmentRunID)
        let facility = string(facilityID), node = string(nodeID), device = string(deviceID)
        let from = string(validFrom), to = string(validTo)
        guard g.ok, s.ok, run.ok, facility.ok, node.ok, device.ok, from.ok, to.ok,
              let gv = g.value, let sv = s.value, let fv = from.value, let tv = to.value,
              kind?.stringValue == Contract.kind
        else { return nil }
        self.init(grain: gv, energySource: sv, computeAssignmentRunID: run.value, facilityID: facility.value,
                  nodeID: node.value, deviceID: device.value, validFrom: fv, validTo: tv)
    }
}
