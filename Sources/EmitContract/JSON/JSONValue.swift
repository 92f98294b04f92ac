/// A parsed JSON value. Objects keep their members in document order so that findings can be
/// reported in the order a person reads the event; duplicate names never get this far (the
/// parser rejects them).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member named `key` of an object (linear: events have at most a few dozen members).
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        for (name, value) in members where name == key { return value }
        return nil
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var numberValue: Double? {
        if case let .number(n) = self { return n }
        return nil
    }

    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    /// An integer in the JSON Schema sense: a finite number with a zero fractional part.
    public var integerValue: Int64? {
        guard case let .number(n) = self, n.isFinite, n.rounded(.towardZero) == n,
              abs(n) <= 9_007_199_254_740_992 else { return nil }
        return Int64(n)
    }

    /// The JSON type name a person expects to read in an error message.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case let .number(n): return integerValue != nil || !n.isFinite ? "integer" : "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}
