/// A strict RFC 8259 parser. Strictness is part of the contract: a repeated member name,
/// a non-object event, `NaN`, a lone surrogate, raw control characters and trailing garbage are
/// all `invalid_json`. Written by hand because Foundation's decoder accepts duplicate keys and is
/// several times slower on the validation hot path.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
    public var description: String { "\(reason) at byte \(offset + 1)" }
}

public enum JSONParser {
    /// Nesting deeper than this is rejected rather than risking the stack; events nest 2 deep.
    public static let maximumDepth = 64

    /// A hex digit's value (a `\u` escape's), or nil.
    public static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - 0x30)
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - 0x61 + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - 0x41 + 10)
        default: return nil
        }
    }

    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer throws(JSONParseError) in try parse(buffer) }
    }

    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        guard let base = buffer.baseAddress else { throw JSONParseError(offset: 0, reason: "unexpected end of input, expected a value") }
        var reader = Reader(scanner: JSONScanner(base, count: buffer.count))
        let value = try reader.parseValue(depth: 0)
        reader.scanner.skipWhitespace()
        guard reader.scanner.atEnd else { throw reader.scanner.error("unexpected data after the JSON value") }
        return value
    }
}

/// The tree of a text, read by `JSONScanner`.
private struct Reader {
    var scanner: JSONScanner

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        let first = try scanner.valueAhead()
        switch first {
        case UInt8(ascii: "{"):
            try scanner.enter(depth: depth)
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            try scanner.enter(depth: depth)
            return try parseArray(depth: depth + 1)
        case JSONScanner.quote: return .string(try string(scanner.scanString()))
        case UInt8(ascii: "t"): try scanner.literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try scanner.literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try scanner.literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try scanner.number())
        default:
            throw scanner.error("unexpected character '\(JSONScanner.printable(first))', expected a value")
        }
    }

    /// An object's members, after its `{`; `depth` counts the containers it is one of.
    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if scanner.closesAtOnce(UInt8(ascii: "}")) { return .object(members) }
        repeat {
            let scanned = try scanner.memberName()
            let name = try memberName(scanned)
            let nameLength = name.utf8.count
            for (existing, _) in members where existing.utf8.count == nameLength && existing == name {
                throw JSONParseError(offset: scanned.start - 1 - scanner.base, reason: "member name \"\(name)\" is repeated")
            }
            members.append((name, try parseValue(depth: depth)))
        } while try scanner.another(before: UInt8(ascii: "}"))
        return .object(members)
    }

    /// An array's items, after its `[`.
    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        var elements: [JSONValue] = []
        if scanner.closesAtOnce(UInt8(ascii: "]")) { return .array(elements) }
        repeat {
            elements.append(try parseValue(depth: depth))
        } while try scanner.another(before: UInt8(ascii: "]"))
        return .array(elements)
    }

    /// Member names the contract knows come back as shared constants: no allocation per event
    /// for the long ones (Swift stores strings over 15 bytes on the heap).
    func memberName(_ scanned: JSONScanner.Scanned) throws(JSONParseError) -> String {
        if !scanned.escapes, let known = KnownNames.lookup(scanned.bytes) { return known }
        return try string(scanned)
    }

    /// A scanned string's value: its escapes undone, its UTF-8 checked.
    func string(_ scanned: JSONScanner.Scanned) throws(JSONParseError) -> String {
        let offset = scanned.start - scanner.base
        guard scanned.escapes else { return try Self.decodeUTF8(scanned.bytes, at: offset) }
        var utf8: [UInt8] = []
        utf8.reserveCapacity(scanned.stop - scanned.start)
        var at = scanned.start
        while at < scanned.stop {
            var run = at
            while run < scanned.stop, run.pointee != JSONScanner.backslash { run += 1 }
            utf8.append(contentsOf: UnsafeBufferPointer(start: at, count: run - at))
            guard run < scanned.stop else { break }
            at = try scanner.unescape(run, into: &utf8)
        }
        return try utf8.withUnsafeBufferPointer { buffer throws(JSONParseError) in try Self.decodeUTF8(buffer, at: offset) }
    }

    static func decodeUTF8(_ slice: UnsafeBufferPointer<UInt8>, at offset: Int) throws(JSONParseError) -> String {
        // Most members are ASCII: skip the generic validating initializer for them.
        if slice.allSatisfy({ $0 < 0x80 }) { return String(decoding: slice, as: UTF8.self) }
        guard let string = String(validating: slice, as: UTF8.self) else {
            throw JSONParseError(offset: offset, reason: "string is not valid UTF-8")
        }
        return string
    }
}

/// The contract's member names over 15 bytes, interned.
private enum KnownNames {
    static let names: [String] = [
        "compute_assignment_run_id", "energy_provenance", "schema_version", "energy_joules", "energy_source",
        "counter_resets", "counter_wraps", "joules_per_input_token", "joules_per_output_token", "facility_event_id",
        "facility_energy_joules", "compute_share", "model_family", "facility_id", "grid_region", "recorded_at",
        "measurement", "coefficient", "interval_ms", "pue_applied", "profile_id", "model_tier", "valid_from",
        "resolution_joules",
    ].filter { $0.utf8.count > 15 }
    static let byLength: [Int: [(bytes: [UInt8], name: String)]] = Dictionary(grouping: names.map { (Array($0.utf8), $0) }, by: { $0.0.count })

    @inline(__always)
    static func lookup(_ candidate: UnsafeBufferPointer<UInt8>) -> String? {
        guard candidate.count > 15, let entries = byLength[candidate.count] else { return nil }
        for entry in entries where entry.bytes.elementsEqual(candidate) {
            return entry.name
        }
        return nil
    }
}
