import SwiftASN1

/// One SNMP variable's value, as far as the PDU profiles need.
public enum SNMPValue: Sendable, Equatable {
    case integer(Int64)
    /// Counter32, Gauge32, TimeTicks, Counter64: unsigned.
    case unsigned(UInt64)
    case octets([UInt8])
    /// noSuchObject, noSuchInstance or endOfMibView: the agent does not have this variable.
    case missing(String)
    case other(String)

    var number: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .unsigned(let v): return Double(v)
        default: return nil
        }
    }
}

struct SNMPFailure: Error, CustomStringConvertible {
    let description: String
}

/// SNMP v2c messages (RFC 3416) in BER, written and read with swift-asn1; apart from the socket
/// so that what an agent sends can be fuzzed on its own (scripts/fuzz.sh snmp).
enum SNMPMessage {
    typealias Failure = SNMPFailure

    static let getRequestTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let responseTag = ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)

    static func getRequest(requestID: Int32, community: String, oids: [[UInt]]) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { message in
            try message.serialize(1)  // version-2c
            try message.serialize(ASN1OctetString(contentBytes: ArraySlice(community.utf8)))
            try message.appendConstructedNode(identifier: getRequestTag) { pdu in
                try pdu.serialize(requestID)
                try pdu.serialize(0)  // error-status
                try pdu.serialize(0)  // error-index
                try pdu.appendConstructedNode(identifier: .sequence) { bindings in
                    for oid in oids {
                        try bindings.appendConstructedNode(identifier: .sequence) { binding in
                            try binding.serialize(try ASN1ObjectIdentifier(elements: oid))
                            try binding.serialize(ASN1Null())
                        }
                    }
                }
            }
        }
        return serializer.serializedBytes
    }

    /// The values of a GetResponse with `requestID`; nil when the datagram answers something else.
    static func response(_ bytes: [UInt8], requestID: Int32, count: Int) throws(Failure) -> [SNMPValue]? {
        do {
            let root = try BER.parse(bytes)
            guard case .constructed(let top) = root.content else { return nil }
            var parts = top.makeIterator()
            guard let versionNode = parts.next(), let _ = parts.next(), let pduNode = parts.next() else { return nil }
            guard try Int(berEncoded: versionNode) == 1, pduNode.identifier == responseTag,
                  case .constructed(let pdu) = pduNode.content else { return nil }
            var fields = pdu.makeIterator()
            guard let idNode = fields.next(), let statusNode = fields.next(), let indexNode = fields.next(),
                  let bindingsNode = fields.next(), case .constructed(let bindings) = bindingsNode.content else { return nil }
            guard try Int32(berEncoded: idNode) == requestID else { return nil }
            let status = try Int(berEncoded: statusNode)
            if status != 0 {
                let names = [1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess"]
                throw Failure(description: "the agent answered error-status \(names[status] ?? String(status)) at variable \(try Int(berEncoded: indexNode))")
            }
            var values: [SNMPValue] = []
            for binding in bindings {
                guard case .constructed(let pair) = binding.content else { return nil }
                var items = pair.makeIterator()
                guard items.next() != nil, let valueNode = items.next() else { return nil }
                values.append(try value(valueNode))
            }
            guard values.count == count else { throw Failure(description: "the agent answered \(values.count) variables for \(count)") }
            return values
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "malformed SNMP answer: \(error)")
        }
    }

    private static func value(_ node: ASN1Node) throws -> SNMPValue {
        let id = node.identifier
        switch (id.tagClass, id.tagNumber) {
        case (.universal, 2): return .integer(try Int64(berEncoded: node))
        case (.universal, 4): return .octets(Array(try ASN1OctetString(berEncoded: node).bytes))
        case (.application, 1), (.application, 2), (.application, 3), (.application, 6):
            return .unsigned(try UInt64(berEncoded: node, withIdentifier: id))
        case (.contextSpecific, 0): return .missing("noSuchObject")
        case (.contextSpecific, 1): return .missing("noSuchInstance")
        case (.contextSpecific, 2): return .missing("endOfMibView")
        default: return .other("\(id)")
        }
    }
}
