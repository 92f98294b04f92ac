import EmitContract

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An event's JSON text as the transcoders read it, through a pointer: whitespace, literals,
/// strings found eight bytes at a time, numbers converted as `JSONParser` converts them.
struct EventText {
    typealias Malformed = EventTranscoder.Malformed
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    let base: UnsafePointer<UInt8>
    let end: UnsafePointer<UInt8>
    /// Where the reader is.
    var p: UnsafePointer<UInt8>

    init(_ text: UnsafePointer<UInt8>, count: Int) {
        base = text
        end = text + count
        p = text
    }

    var atEnd: Bool { p >= end }

    func malformed(_ reason: String) -> Malformed { Malformed(offset: p - base, reason: reason) }

    @inline(__always)
    mutating func skipWhitespace() {
        while p < end, p.pointee <= 0x20, p.pointee == 0x20 || p.pointee == 0x0A || p.pointee == 0x0D || p.pointee == 0x09 {
            p += 1
        }
    }

    mutating func literal(_ word: StaticString) throws(Malformed) {
        let count = word.utf8CodeUnitCount
        guard end - p >= count, memcmp(p, word.utf8Start, count) == 0 else { throw malformed("invalid literal") }
        p += count
    }

    /// After a container's opening bracket: whether it closes at once (the `closing` bracket read).
    mutating func closesAtOnce(_ closing: UInt8) -> Bool {
        skipWhitespace()
        guard p < end, p.pointee == closing else { return false }
        p += 1
        return true
    }

    /// The first byte of the value ahead (not read).
    mutating func valueAhead() throws(Malformed) -> UInt8 {
        skipWhitespace()
        guard p < end else { throw malformed("a value is missing") }
        return p.pointee
    }

    /// A member's name and its colon; the reader is left before the member's value.
    mutating func memberName() throws(Malformed) -> Scanned {
        skipWhitespace()
        let name = try scanString()
        skipWhitespace()
        guard p < end, p.pointee == UInt8(ascii: ":") else { throw malformed("expected ':' after a member name") }
        p += 1
        return name
    }

    /// After an object's member or an array's item: true when another follows (its comma
    /// read), false at the container's `closing` bracket (read).
    mutating func another(before closing: UInt8) throws(Malformed) -> Bool {
        let container = closing == UInt8(ascii: "}") ? "an object" : "an array"
        skipWhitespace()
        guard p < end else { throw malformed("unexpected end inside \(container)") }
        switch p.pointee {
        case UInt8(ascii: ","):
            p += 1
            return true
        case closing:
            p += 1
            return false
        default:
            throw malformed("expected ',' or '\(Character(Unicode.Scalar(closing)))' in \(container)")
        }
    }

    /// A string's content in the text (between its quotes) and whether it has escapes.
    struct Scanned {
        let start: UnsafePointer<UInt8>
        let stop: UnsafePointer<UInt8>
        let escapes: Bool
        var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: start, count: stop - start) }
    }

    /// Finds the end of the string at the reader, eight bytes at a time (its escapes are read
    /// when it is written).
    mutating func scanString() throws(Malformed) -> Scanned {
        guard p < end, p.pointee == Self.quote else { throw malformed("expected a string") }
        p += 1
        let start = p
        var escapes = false
        while true {
            while end - p >= 8 {
                let special = Self.specialBytes(UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
                if special != 0 {
                    p += special.trailingZeroBitCount >> 3
                    break
                }
                p += 8
            }
            guard p < end else { throw malformed("unterminated string") }
            switch p.pointee {
            case Self.quote:
                let stop = p
                p += 1
                return Scanned(start: start, stop: stop, escapes: escapes)
            case Self.backslash:
                escapes = true
                p += 2
            case ..<0x20:
                throw malformed("a control character in a string")
            default:
                p += 1
            }
        }
    }

    /// Marks (the high bit of) each byte of `word` that is a Self.quote, a Self.backslash or a control
    /// character; the lowest mark is exact (a borrow only marks bytes above a real one).
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(Self.quote)), backslashes = word ^ (ones &* UInt64(Self.backslash))
        let zeroInQuotes = (quotes &- ones) & ~quotes
        let zeroInBackslashes = (backslashes &- ones) & ~backslashes
        let belowSpace = (word &- ones &* 0x20) & ~word
        return (zeroInQuotes | zeroInBackslashes | belowSpace) & highs
    }

    /// Writes the character of the escape whose letter is at `at` into `out` and returns where
    /// the text goes on.
    func unescape(_ at: UnsafePointer<UInt8>, into out: inout WireWriter) throws(Malformed) -> UnsafePointer<UInt8> {
        func failure(_ reason: String) -> Malformed { Malformed(offset: at - 1 - base, reason: reason) }
        switch at.pointee {
        case Self.quote, Self.backslash, UInt8(ascii: "/"): out.byte(at.pointee)
        case UInt8(ascii: "b"): out.byte(0x08)
        case UInt8(ascii: "f"): out.byte(0x0C)
        case UInt8(ascii: "n"): out.byte(0x0A)
        case UInt8(ascii: "r"): out.byte(0x0D)
        case UInt8(ascii: "t"): out.byte(0x09)
        case UInt8(ascii: "u"):
            guard var scalar = hex4(at + 1) else { throw failure("a \\u escape needs four hex digits") }
            var next = at + 5
            if (0xD800...0xDBFF).contains(scalar) {
                guard end - next >= 6, next[0] == Self.backslash, next[1] == UInt8(ascii: "u"), let low = hex4(next + 2) else {
                    throw failure("a lone high surrogate")
                }
                guard (0xDC00...0xDFFF).contains(low) else { throw failure("a high surrogate without its low surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                next += 6
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw failure("a lone low surrogate")
            }
            guard let unicode = Unicode.Scalar(scalar), let encoded = UTF8.encode(unicode) else { throw failure("not a Unicode scalar") }
            for byte in encoded { out.byte(byte) }
            return next
        default:
            throw failure("an unknown escape")
        }
        return at + 1
    }

    func hex4(_ at: UnsafePointer<UInt8>) -> UInt32? {
        guard end - at >= 4 else { return nil }
        var value: UInt32 = 0
        for i in 0..<4 {
            guard let digit = JSONParser.hexDigit(at[i]) else { return nil }
            value = value << 4 | digit
        }
        return value
    }

    /// A JSON number, as `JSONParser` reads it: exactly when up to 15 significant digits and a
    /// power of ten up to 22 (both exact in a Double, so one multiplication or division rounds
    /// correctly), otherwise by the correctly rounded conversion of its text.
    mutating func number() throws(Malformed) -> Double {
        let start = p
        let negative = p.pointee == UInt8(ascii: "-")
        if negative { p += 1 }
        var significand: UInt64 = 0
        var significant = 0  // digits from the first non-zero one
        var exponent = 0
        var digits = 0
        while p < end, p.pointee &- 0x30 < 10 {
            Self.take(p.pointee &- 0x30, &significand, &significant)
            digits += 1
            p += 1
        }
        guard digits > 0 else { throw malformed("expected a value") }
        if p < end, p.pointee == UInt8(ascii: ".") {
            p += 1
            let fractionStart = p
            while p < end, p.pointee &- 0x30 < 10 {
                Self.take(p.pointee &- 0x30, &significand, &significant)
                exponent -= 1
                p += 1
            }
            guard p > fractionStart else { throw malformed("a digit must follow the decimal point") }
        }
        if p < end, p.pointee | 0x20 == UInt8(ascii: "e") {
            p += 1
            var negativeExponent = false
            if p < end, p.pointee == UInt8(ascii: "+") || p.pointee == UInt8(ascii: "-") {
                negativeExponent = p.pointee == UInt8(ascii: "-")
                p += 1
            }
            let exponentStart = p
            var written = 0
            while p < end, p.pointee &- 0x30 < 10 {
                if written < 100_000 { written = written * 10 + Int(p.pointee &- 0x30) }
                p += 1
            }
            guard p > exponentStart else { throw malformed("a digit must follow the exponent") }
            exponent += negativeExponent ? -written : written
        }
        let magnitude: Double
        if significant == 0 {
            magnitude = 0
        } else if significant <= 15, (-22...22).contains(exponent) {
            magnitude = exponent >= 0 ? Double(significand) * Self.powersOfTen[exponent] : Double(significand) / Self.powersOfTen[-exponent]
        } else {
            guard let value = Double(String(decoding: UnsafeBufferPointer(start: start, count: p - start), as: UTF8.self)), value.isFinite else {
                throw Malformed(offset: start - base, reason: "not a finite number")
            }
            return value
        }
        return negative ? -magnitude : magnitude
    }

    @inline(__always)
    static func take(_ digit: UInt8, _ significand: inout UInt64, _ significant: inout Int) {
        guard significant > 0 || digit != 0 else { return }
        significant += 1
        if significant <= 19 { significand = significand &* 10 &+ UInt64(digit) }
    }

    static let powersOfTen: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]
}
