/// A strict RFC 8259 parser. Strictness is part of the contract: a repeated member name,
/// a non-object event, `NaN`, a lone surrogate, raw control characters and trailing garbage are
/// all `invalid_json`. Written by hand because Foundation's decoder accepts duplicate keys and is
/// several times slower on the validation hot path.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
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
        var reader = Reader(bytes: buffer)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        if reader.position != buffer.count {
            throw reader.error("unexpected data after the JSON value")
        }
        return value
    }
}

private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    func error(_ reason: String) -> JSONParseError { JSONParseError(offset: position, reason: reason) }

    @inline(__always) var atEnd: Bool { position >= bytes.count }
    @inline(__always) var current: UInt8 { bytes[position] }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard !atEnd else { throw error("unexpected end of input, expected a value") }
        switch current {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default:
            throw error("unexpected character '\(printable(current))', expected a value")
        }
    }

    func printable(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("invalid literal") }
        let start = literal.utf8Start
        for i in 0..<count where bytes[position + i] != start[i] {
            throw error("invalid literal (NaN, Infinity and bare words are not JSON)")
        }
        position += count
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
        position += 1
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "}") { position += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: "\"") else { throw error("expected a member name in double quotes") }
            let nameOffset = position
            let name = try parseMemberName()
            let nameLength = name.utf8.count
            for (existing, _) in members where existing.utf8.count == nameLength && existing == name {
                throw JSONParseError(offset: nameOffset, reason: "member name \"\(name)\" is repeated")
            }
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append((name, value))
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input inside an object") }
            if current == UInt8(ascii: ",") { position += 1; continue }
            if current == UInt8(ascii: "}") { position += 1; return .object(members) }
            throw error("expected ',' or '}' in an object")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if !atEnd, current == UInt8(ascii: "]") { position += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input inside an array") }
            if current == UInt8(ascii: ",") { position += 1; continue }
            if current == UInt8(ascii: "]") { position += 1; return .array(elements) }
            throw error("expected ',' or ']' in an array")
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        guard !atEnd else { throw error("a number needs digits") }
        if current == UInt8(ascii: "0") {
            position += 1
            if !atEnd, isDigit(current) { throw error("leading zeros are not allowed in numbers") }
        } else if isDigit(current) {
            while !atEnd, isDigit(current) { position += 1 }
        } else {
            throw error("a number needs digits")
        }
        var isFraction = false
        if !atEnd, current == UInt8(ascii: ".") {
            isFraction = true
            position += 1
            guard !atEnd, isDigit(current) else { throw error("a fraction needs digits after '.'") }
            while !atEnd, isDigit(current) { position += 1 }
        }
        if !atEnd, current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isFraction = true
            position += 1
            if !atEnd, current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard !atEnd, isDigit(current) else { throw error("an exponent needs digits") }
            while !atEnd, isDigit(current) { position += 1 }
        }
        // Plain integers of up to 15 digits are exact in a double: no need for strtod.
        if !isFraction, position - start <= 16 {
            var magnitude: Int64 = 0
            var i = bytes[start] == UInt8(ascii: "-") ? start + 1 : start
            while i < position { magnitude = magnitude * 10 + Int64(bytes[i] - 0x30); i += 1 }
            if position - start - (bytes[start] == UInt8(ascii: "-") ? 1 : 0) <= 15 {
                return bytes[start] == UInt8(ascii: "-") ? -Double(magnitude) : Double(magnitude)
            }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(offset: start, reason: "number \(text) is outside the range of a 64-bit float")
        }
        return value
    }

    @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// Member names the contract knows come back as shared constants: no allocation per event
    /// for the long ones (Swift stores strings over 15 bytes on the heap).
    mutating func parseMemberName() throws(JSONParseError) -> String {
        let start = position + 1
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
        if end < bytes.count, bytes[end] == UInt8(ascii: "\""),
           let known = KnownNames.lookup(UnsafeBufferPointer(rebasing: bytes[start..<end])) {
            position = end + 1
            return known
        }
        return try parseString()
    }

    mutating func parseString() throws(JSONParseError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes, plain UTF-8.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
                position += 1
                return try decodeUTF8(slice, at: start)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character U+00\(hex2(byte)) must be escaped in a string") }
            position += 1
        }
        guard position < bytes.count else { throw JSONParseError(offset: start - 1, reason: "unterminated string") }
        // Slow path with escapes.
        var utf8: [UInt8] = Array(UnsafeBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return try utf8.withUnsafeBufferPointer { buffer throws(JSONParseError) in try decodeUTF8(buffer, at: start) }
            }
            if byte < 0x20 { throw error("control character U+00\(hex2(byte)) must be escaped in a string") }
            if byte != UInt8(ascii: "\\") { utf8.append(byte); position += 1; continue }
            position += 1
            guard position < bytes.count else { break }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): utf8.append(0x22)
            case UInt8(ascii: "\\"): utf8.append(0x5C)
            case UInt8(ascii: "/"): utf8.append(0x2F)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                          bytes[position + 1] == UInt8(ascii: "u") else {
                        throw error("lone high surrogate \\u\(String(scalar, radix: 16)) in a string")
                    }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("high surrogate not followed by a low surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("lone low surrogate \\u\(String(scalar, radix: 16)) in a string")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                throw error("invalid escape '\\\(printable(escape))'")
            }
        }
        throw JSONParseError(offset: start - 1, reason: "unterminated string")
    }

    func hex2(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("\\u needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = JSONParser.hexDigit(bytes[position]) else { throw error("\\u needs four hex digits") }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    func decodeUTF8(_ slice: UnsafeBufferPointer<UInt8>, at offset: Int) throws(JSONParseError) -> String {
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
