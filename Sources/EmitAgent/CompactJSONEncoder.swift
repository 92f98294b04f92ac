import EmitContract

/// Codable values as compact JSON, for the agent's journal and checkpoint: what Foundation's
/// JSONEncoder writes for them (members in declaration order; integers exact, doubles in their
/// shortest round-trip form; non-finite numbers refused) and JSONDecoder reads back, at a
/// fraction of its cost: Foundation's encoder took 44% of the agent's CPU under load
/// (BENCHMARKS.md, the node agent). Only what those types use: no dates, data or URLs.
struct CompactJSONEncoder {
    struct Unencodable: Error, CustomStringConvertible {
        let description: String
    }

    func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let root = try Self.nested(value, [])
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        root.write(into: &out)
        return out
    }

    /// A place for one value, filled by whoever encodes into it.
    final class Slot {
        enum Node {
            case null, bool(Bool), int(Int64), uint(UInt64), double(Double), string(String)
            case array(Slots), object(Members)
            /// JSON a value wrote itself (JSONFragmentWriting).
            case raw([UInt8])
        }

        var node: Node = .null

        func write(into out: inout [UInt8]) {
            switch node {
            case .null: out.append(contentsOf: "null".utf8)
            case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
            case .int(let value): out.append(contentsOf: String(value).utf8)
            case .uint(let value): out.append(contentsOf: String(value).utf8)
            case .double(let value): out.append(contentsOf: JSONWriter.formatNumber(value).utf8)
            case .string(let text): JSONWriter.writeString(text, into: &out)
            case .raw(let bytes): out.append(contentsOf: bytes)
            case .array(let slots):
                out.append(UInt8(ascii: "["))
                for (index, slot) in slots.items.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    slot.write(into: &out)
                }
                out.append(UInt8(ascii: "]"))
            case .object(let members):
                out.append(UInt8(ascii: "{"))
                for (index, (key, slot)) in members.items.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    JSONWriter.writeString(key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    slot.write(into: &out)
                }
                out.append(UInt8(ascii: "}"))
            }
        }
    }

    final class Slots { var items: [Slot] = [] }
    final class Members { var items: [(String, Slot)] = [] }

    struct NodeEncoder: Encoder {
        let slot: Slot
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func members() -> Members {
            if case .object(let members) = slot.node { return members }
            let members = Members()
            slot.node = .object(members)
            return members
        }

        func slots() -> Slots {
            if case .array(let slots) = slot.node { return slots }
            let slots = Slots()
            slot.node = .array(slots)
            return slots
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(Keyed<Key>(members: members(), codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer { Unkeyed(slots: slots(), codingPath: codingPath) }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(slot: slot, codingPath: codingPath) }
    }

    static func double(_ value: Double, _ path: [any CodingKey]) throws -> Slot.Node {
        guard value.isFinite else {
            throw Unencodable(description: "\(value) at \(path.map(\.stringValue).joined(separator: ".")) is not a JSON number")
        }
        return .double(value)
    }

    static func nested(_ value: some Encodable, _ path: [any CodingKey]) throws -> Slot {
        let slot = Slot()
        if let writing = value as? any JSONFragmentWriting {
            var fragment = JSONFragment()
            try writing.writeJSON(into: &fragment)
            slot.node = .raw(fragment.bytes)
        } else {
            try value.encode(to: NodeEncoder(slot: slot, codingPath: path))
        }
        return slot
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let members: Members
        let codingPath: [any CodingKey]

        private func put(_ node: Slot.Node, _ key: Key) {
            let slot = Slot()
            slot.node = node
            members.items.append((key.stringValue, slot))
        }

        mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(.bool(value), key) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(try CompactJSONEncoder.double(value, codingPath + [key]), key) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(try CompactJSONEncoder.double(Double(value), codingPath + [key]), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(.int(value), key) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { put(.uint(UInt64(value)), key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(.uint(UInt64(value)), key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(.uint(UInt64(value)), key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(.uint(UInt64(value)), key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { put(.uint(value), key) }

        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            members.items.append((key.stringValue, try CompactJSONEncoder.nested(value, codingPath + [key])))
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let slot = Slot()
            members.items.append((key.stringValue, slot))
            return NodeEncoder(slot: slot, codingPath: codingPath + [key]).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let slot = Slot()
            members.items.append((key.stringValue, slot))
            return NodeEncoder(slot: slot, codingPath: codingPath + [key]).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder { superEncoder(named: "super") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key.stringValue) }

        private func superEncoder(named name: String) -> any Encoder {
            let slot = Slot()
            members.items.append((name, slot))
            return NodeEncoder(slot: slot, codingPath: codingPath)
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let slots: Slots
        let codingPath: [any CodingKey]
        var count: Int { slots.items.count }

        private func put(_ node: Slot.Node) {
            let slot = Slot()
            slot.node = node
            slots.items.append(slot)
        }

        mutating func encodeNil() throws { put(.null) }
        mutating func encode(_ value: Bool) throws { put(.bool(value)) }
        mutating func encode(_ value: String) throws { put(.string(value)) }
        mutating func encode(_ value: Double) throws { put(try CompactJSONEncoder.double(value, codingPath)) }
        mutating func encode(_ value: Float) throws { put(try CompactJSONEncoder.double(Double(value), codingPath)) }
        mutating func encode(_ value: Int) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int8) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int16) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int32) throws { put(.int(Int64(value))) }
        mutating func encode(_ value: Int64) throws { put(.int(value)) }
        mutating func encode(_ value: UInt) throws { put(.uint(UInt64(value))) }
        mutating func encode(_ value: UInt8) throws { put(.uint(UInt64(value))) }
        mutating func encode(_ value: UInt16) throws { put(.uint(UInt64(value))) }
        mutating func encode(_ value: UInt32) throws { put(.uint(UInt64(value))) }
        mutating func encode(_ value: UInt64) throws { put(.uint(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { slots.items.append(try CompactJSONEncoder.nested(value, codingPath)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let slot = Slot()
            slots.items.append(slot)
            return NodeEncoder(slot: slot, codingPath: codingPath).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let slot = Slot()
            slots.items.append(slot)
            return NodeEncoder(slot: slot, codingPath: codingPath).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            let slot = Slot()
            slots.items.append(slot)
            return NodeEncoder(slot: slot, codingPath: codingPath)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let slot: Slot
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { slot.node = .null }
        mutating func encode(_ value: Bool) throws { slot.node = .bool(value) }
        mutating func encode(_ value: String) throws { slot.node = .string(value) }
        mutating func encode(_ value: Double) throws { slot.node = try CompactJSONEncoder.double(value, codingPath) }
        mutating func encode(_ value: Float) throws { slot.node = try CompactJSONEncoder.double(Double(value), codingPath) }
        mutating func encode(_ value: Int) throws { slot.node = .int(Int64(value)) }
        mutating func encode(_ value: Int8) throws { slot.node = .int(Int64(value)) }
        mutating func encode(_ value: Int16) throws { slot.node = .int(Int64(value)) }
        mutating func encode(_ value: Int32) throws { slot.node = .int(Int64(value)) }
        mutating func encode(_ value: Int64) throws { slot.node = .int(value) }
        mutating func encode(_ value: UInt) throws { slot.node = .uint(UInt64(value)) }
        mutating func encode(_ value: UInt8) throws { slot.node = .uint(UInt64(value)) }
        mutating func encode(_ value: UInt16) throws { slot.node = .uint(UInt64(value)) }
        mutating func encode(_ value: UInt32) throws { slot.node = .uint(UInt64(value)) }
        mutating func encode(_ value: UInt64) throws { slot.node = .uint(value) }
        mutating func encode<T: Encodable>(_ value: T) throws { try value.encode(to: NodeEncoder(slot: slot, codingPath: codingPath)) }
    }
}
