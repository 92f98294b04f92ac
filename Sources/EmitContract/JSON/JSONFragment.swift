/// A value that writes its own compact JSON: exactly the members its `Codable` conformance
/// encodes (so `JSONDecoder` reads it back), without building a tree first. For the agent's
/// state, written every second and with every run: through Foundation's JSONEncoder that was
/// 44% of the agent's CPU under load (BENCHMARKS.md, the node agent).
public protocol JSONFragmentWriting {
    func writeJSON(into out: inout JSONFragment) throws
}

public struct JSONFragment {
    public struct NotFinite: Error, CustomStringConvertible {
        public let member: String
        public var description: String { "\(member) is not a finite number" }
    }

    public private(set) var bytes: [UInt8] = []
    private var first = true

    public init() {
        bytes.reserveCapacity(512)
    }

    public mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        first = true
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        first = false
    }

    public mutating func key(_ name: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        JSONWriter.writeString(name, into: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func member(_ name: String, _ value: UInt64) { key(name); bytes.append(contentsOf: String(value).utf8) }
    public mutating func member(_ name: String, _ value: Int64) { key(name); bytes.append(contentsOf: String(value).utf8) }
    public mutating func member(_ name: String, _ value: Int) { key(name); bytes.append(contentsOf: String(value).utf8) }
    public mutating func member(_ name: String, _ value: Bool) { key(name); bytes.append(contentsOf: (value ? "true" : "false").utf8) }
    public mutating func member(_ name: String, _ value: String) { key(name); JSONWriter.writeString(value, into: &bytes) }

    public mutating func member(_ name: String, _ value: Double) throws(NotFinite) {
        guard value.isFinite else { throw NotFinite(member: name) }
        key(name)
        bytes.append(contentsOf: JSONWriter.formatNumber(value).utf8)
    }

    /// An optional member is left out when nil, as JSONEncoder does.
    public mutating func member(_ name: String, _ value: UInt64?) { if let value { member(name, value) } }
    public mutating func member(_ name: String, _ value: String?) { if let value { member(name, value) } }

    public mutating func member(_ name: String, _ value: some JSONFragmentWriting) throws {
        key(name)
        try value.writeJSON(into: &self)
    }

    public mutating func member(_ name: String, _ values: [String]) {
        key(name)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(value, into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
        first = false
    }

    public mutating func member(_ name: String, _ values: [String: String]) {
        key(name)
        beginObject()
        for (key, value) in values { member(key, value) }
        endObject()
    }

    public mutating func member(_ name: String, _ values: [String: Int]) {
        key(name)
        beginObject()
        for (key, value) in values { member(key, value) }
        endObject()
    }

    /// A `[String: V]` as JSONEncoder writes it: an object.
    public mutating func member(_ name: String, _ values: [String: some JSONFragmentWriting]) throws {
        key(name)
        beginObject()
        for (key, value) in values { try member(key, value) }
        endObject()
    }
}
