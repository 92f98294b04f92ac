/// Serializes JSON the RFC 8785 (JCS) way: strings escaped minimally, numbers in the
/// ECMAScript `Number.prototype.toString` form. With `sortKeys` it is the canonical
/// serialization that event ids hash; without, it keeps member order for readable event lines.
public enum JSONWriter {
    public static func canonical(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, sortKeys: true, into: &out)
        return out
    }

    public static func line(_ value: JSONValue) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(768)
        write(value, sortKeys: false, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func write(_ value: JSONValue, sortKeys: Bool, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case let .bool(b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case let .number(n): writeNumber(n, into: &out)
        case let .string(s): writeString(s, into: &out)
        case let .array(elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(element, sortKeys: sortKeys, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .object(members):
            out.append(UInt8(ascii: "{"))
            // JCS orders member names by their UTF-16 code units, not by scalars or UTF-8.
            let ordered = sortKeys ? members.sorted { $0.0.utf16.lexicographicallyPrecedes($1.0.utf16) } : members
            for (i, (name, member)) in ordered.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(name, into: &out)
                out.append(UInt8(ascii: ":"))
                write(member, sortKeys: sortKeys, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// JCS string escaping: only `"`, `\` and U+0000–U+001F are escaped; `\b \t \n \f \r` use
    /// their short forms, the rest `\u00xx` in lowercase hex. Everything else is written as UTF-8.
    public static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape, copy the UTF-8 whole.
        let copied: Bool? = string.utf8.withContiguousStorageIfAvailable { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if copied == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x08: out.append(0x5C); out.append(UInt8(ascii: "b"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(0x5C); out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x00..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// ECMAScript Number::toString for finite doubles (RFC 8785 §3.2.2.3), written as bytes.
    /// Swift's `description` already yields the shortest round-tripping digits; only the layout
    /// differs, and it is rearranged here without intermediate strings (this runs once per
    /// number of every event written).
    public static func writeNumber(_ value: Double, into out: inout [UInt8]) {
        precondition(value.isFinite, "JSON has no representation for non-finite numbers")
        if value == 0 { out.append(UInt8(ascii: "0")); return }
        if value.magnitude < 9_007_199_254_740_992, value == value.rounded(.towardZero) {
            writeInteger(Int64(value), into: &out)
            return
        }
        var description = value.magnitude.description
        description.withUTF8 { text in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { digits in
                var k = 0                 // significant digits collected
                var integerCount = 0      // digits before the point
                var exponent = 0
                var i = 0, seenPoint = false
                while i < text.count {
                    let c = text[i]
                    if c == UInt8(ascii: ".") {
                        seenPoint = true
                    } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                        var j = i + 1, negative = false
                        if j < text.count, text[j] == UInt8(ascii: "-") || text[j] == UInt8(ascii: "+") {
                            negative = text[j] == UInt8(ascii: "-")
                            j += 1
                        }
                        while j < text.count { exponent = exponent * 10 + Int(text[j] &- 48); j += 1 }
                        if negative { exponent = -exponent }
                        break
                    } else {
                        digits[k] = c
                        k += 1
                        if !seenPoint { integerCount += 1 }
                    }
                    i += 1
                }
                var pointPosition = integerCount + exponent
                var first = 0
                while first < k, digits[first] == UInt8(ascii: "0") { first += 1; pointPosition -= 1 }
                while k > first, digits[k - 1] == UInt8(ascii: "0") { k -= 1 }
                let significant = UnsafeBufferPointer(rebasing: digits[first..<k])
                let count = significant.count, n = pointPosition
                if value < 0 { out.append(UInt8(ascii: "-")) }
                if count <= n && n <= 21 {
                    out.append(contentsOf: significant)
                    for _ in 0..<(n - count) { out.append(UInt8(ascii: "0")) }
                } else if 0 < n && n <= 21 {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: significant[0..<n]))
                    out.append(UInt8(ascii: "."))
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: significant[n...]))
                } else if -6 < n && n <= 0 {
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "."))
                    for _ in 0..<(-n) { out.append(UInt8(ascii: "0")) }
                    out.append(contentsOf: significant)
                } else {
                    let e = n - 1
                    out.append(significant[0])
                    if count > 1 {
                        out.append(UInt8(ascii: "."))
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: significant[1...]))
                    }
                    out.append(UInt8(ascii: "e"))
                    out.append(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
                    writeInteger(Int64(abs(e)), into: &out)
                }
            }
        }
    }

    /// Decimal digits of an integer.
    static func writeInteger(_ value: Int64, into out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var i = 20
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[i...]))
        }
    }

    /// The ECMAScript form of a finite double as a string (see `writeNumber`).
    public static func formatNumber(_ value: Double) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        writeNumber(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
