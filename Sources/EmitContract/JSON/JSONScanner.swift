/// JSON text read strictly (RFC 8259) token by token through a pointer: the one reader behind
/// `JSONParser`'s tree and the OTLP transcoders, which write records straight from an event's
/// text without building one. It finds where strings, numbers and containers are and what they
/// hold; what to make of them is its caller's. Strings are found eight bytes at a time and their
/// escapes are undone only by those who need them (`unescape`); numbers convert exactly
/// (Clinger's fast path, else the correctly rounded conversion of their text).
///
/// The reader's methods are inlinable: the transcoders in another module call them once per
/// token, and a call across the module boundary would cost more than most tokens.
public struct JSONScanner {
    public static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    public let base: UnsafePointer<UInt8>
    public let end: UnsafePointer<UInt8>
    /// Where the reader is.
    public var p: UnsafePointer<UInt8>

    @inlinable
    public init(_ text: UnsafePointer<UInt8>, count: Int) {
        base = text
        end = text + count
        p = text
    }

    @inlinable public var atEnd: Bool { p >= end }

    /// An error at the reader.
    @inlinable
    public func error(_ reason: String) -> JSONParseError { JSONParseError(offset: p - base, reason: reason) }

    @inlinable
    public mutating func skipWhitespace() {
        while p < end, p.pointee <= 0x20, p.pointee == 0x20 || p.pointee == 0x0A || p.pointee == 0x0D || p.pointee == 0x09 {
            p += 1
        }
    }

    /// `true`, `false` or `null` at the reader.
    @inlinable
    public mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard end - p >= count, (0..<count).allSatisfy({ p[$0] == word.utf8Start[$0] }) else {
            throw error("invalid literal (NaN, Infinity and bare words are not JSON)")
        }
        p += count
    }

    /// Steps over the opening bracket of a container at the reader, refusing one nested deeper
    /// than `JSONParser.maximumDepth`; `depth` counts the containers around it.
    @inlinable
    public mutating func enter(depth: Int) throws(JSONParseError) {
        guard depth < JSONParser.maximumDepth else { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
        p += 1
    }

    /// After a container's opening bracket: whether it closes at once (the `closing` bracket read).
    @inlinable
    public mutating func closesAtOnce(_ closing: UInt8) -> Bool {
        skipWhitespace()
        guard p < end, p.pointee == closing else { return false }
        p += 1
        return true
    }

    /// The first byte of the value ahead (not read).
    @inlinable
    public mutating func valueAhead() throws(JSONParseError) -> UInt8 {
        skipWhitespace()
        guard p < end else { throw error("unexpected end of input, expected a value") }
        return p.pointee
    }

    /// A member's name and its colon; the reader is left before the member's value.
    @inlinable
    public mutating func memberName() throws(JSONParseError) -> Scanned {
        skipWhitespace()
        guard p < end, p.pointee == Self.quote else { throw error("expected a member name in double quotes") }
        let name = try scanString()
        skipWhitespace()
        guard p < end, p.pointee == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
        p += 1
        return name
    }

    /// After an object's member or an array's item: true when another follows (its comma
    /// read), false at the container's `closing` bracket (read).
    @inlinable
    public mutating func another(before closing: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard p < end else { throw error(closing == UInt8(ascii: "}") ? "unexpected end of input inside an object" : "unexpected end of input inside an array") }
        switch p.pointee {
        case UInt8(ascii: ","):
            p += 1
            return true
        case closing:
            p += 1
            return false
        default:
            throw error(closing == UInt8(ascii: "}") ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
        }
    }

    /// A string's content in the text (between its quotes) and whether it has escapes.
    public struct Scanned {
        public let start: UnsafePointer<UInt8>
        public let stop: UnsafePointer<UInt8>
        public let escapes: Bool

        @inlinable
        public init(start: UnsafePointer<UInt8>, stop: UnsafePointer<UInt8>, escapes: Bool) {
            self.start = start
            self.stop = stop
            self.escapes = escapes
        }

        @inlinable public var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: start, count: stop - start) }
    }

    /// Finds the end of the string at the reader (at its opening quote), eight bytes at a time;
    /// its escapes are only stepped over (`unescape` reads them).
    @inlinable
    public mutating func scanString() throws(JSONParseError) -> Scanned {
        let opening = p
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
            guard p < end else { throw JSONParseError(offset: opening - base, reason: "unterminated string") }
            switch p.pointee {
            case Self.quote:
                let stop = p
                p += 1
                return Scanned(start: start, stop: stop, escapes: escapes)
            case Self.backslash:
                escapes = true
                p += 2
            case ..<0x20:
                throw error("control character U+00\(Self.hex2(p.pointee)) must be escaped in a string")
            default:
                p += 1
            }
        }
    }

    /// Marks (the high bit of) each byte of `word` that is a quote, a backslash or a control
    /// character; the lowest mark is exact (a borrow only marks bytes above a real one).
    @inlinable @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(Self.quote)), backslashes = word ^ (ones &* UInt64(Self.backslash))
        let zeroInQuotes = (quotes &- ones) & ~quotes
        let zeroInBackslashes = (backslashes &- ones) & ~backslashes
        let belowSpace = (word &- ones &* 0x20) & ~word
        return (zeroInQuotes | zeroInBackslashes | belowSpace) & highs
    }

    @usableFromInline
    static func hex2(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    static func printable(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }

    /// Appends the UTF-8 of the escape whose backslash is at `at` (the text after it must
    /// be a whole escape) and returns where the string goes on.
    public func unescape<Sink: JSONByteSink>(_ at: UnsafePointer<UInt8>, into out: inout Sink) throws(JSONParseError) -> UnsafePointer<UInt8> {
        func failure(_ reason: String, _ offset: UnsafePointer<UInt8>) -> JSONParseError { JSONParseError(offset: offset - base, reason: reason) }
        let letter = at + 1
        guard letter < end else { throw failure("unterminated string", at) }
        switch letter.pointee {
        case Self.quote, Self.backslash, UInt8(ascii: "/"): out.append(letter.pointee)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            guard var scalar = hex4(letter + 1) else { throw failure("\\u needs four hex digits", letter + 1) }
            var next = letter + 5
            if (0xD800...0xDBFF).contains(scalar) {
                guard end - next >= 2, next[0] == Self.backslash, next[1] == UInt8(ascii: "u") else {
                    throw failure("lone high surrogate \\u\(String(scalar, radix: 16)) in a string", next)
                }
                guard let low = hex4(next + 2) else { throw failure("\\u needs four hex digits", next + 2) }
                guard (0xDC00...0xDFFF).contains(low) else { throw failure("high surrogate not followed by a low surrogate", next + 6) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                next += 6
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw failure("lone low surrogate \\u\(String(scalar, radix: 16)) in a string", next)
            }
            guard let unicode = Unicode.Scalar(scalar), let encoded = UTF8.encode(unicode) else { throw failure("invalid \\u escape", next) }
            for byte in encoded { out.append(byte) }
            return next
        default:
            throw failure("invalid escape '\\\(Self.printable(letter.pointee))'", letter + 1)
        }
        return letter + 1
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

    /// The number at the reader, strictly as RFC 8259 writes one: exactly when up to 15
    /// significant digits and a power of ten up to 22 (both exact in a Double, so one
    /// multiplication or division rounds correctly), otherwise by the correctly rounded
    /// conversion of its text.
    @inlinable
    public mutating func number() throws(JSONParseError) -> Double {
        let start = p
        let negative = p < end && p.pointee == UInt8(ascii: "-")
        if negative { p += 1 }
        guard p < end, p.pointee &- 0x30 < 10 else { throw error("a number needs digits") }
        var significand: UInt64 = 0
        var significant = 0  // digits from the first non-zero one
        var exponent = 0
        if p.pointee == UInt8(ascii: "0") {
            p += 1
            if p < end, p.pointee &- 0x30 < 10 { throw error("leading zeros are not allowed in numbers") }
        } else {
            while p < end, p.pointee &- 0x30 < 10 {
                Self.take(p.pointee &- 0x30, &significand, &significant)
                p += 1
            }
        }
        if p < end, p.pointee == UInt8(ascii: ".") {
            p += 1
            guard p < end, p.pointee &- 0x30 < 10 else { throw error("a fraction needs digits after '.'") }
            while p < end, p.pointee &- 0x30 < 10 {
                Self.take(p.pointee &- 0x30, &significand, &significant)
                exponent -= 1
                p += 1
            }
        }
        if p < end, p.pointee | 0x20 == UInt8(ascii: "e") {
            p += 1
            var negativeExponent = false
            if p < end, p.pointee == UInt8(ascii: "+") || p.pointee == UInt8(ascii: "-") {
                negativeExponent = p.pointee == UInt8(ascii: "-")
                p += 1
            }
            guard p < end, p.pointee &- 0x30 < 10 else { throw error("an exponent needs digits") }
            var written = 0
            while p < end, p.pointee &- 0x30 < 10 {
                if written < 100_000 { written = written * 10 + Int(p.pointee &- 0x30) }
                p += 1
            }
            exponent += negativeExponent ? -written : written
        }
        let magnitude: Double
        if significant == 0 {
            magnitude = 0
        } else if significant <= 15, exponent >= -22, exponent <= 22 {
            magnitude = exponent >= 0 ? Double(significand) * Self.powerOfTen(exponent) : Double(significand) / Self.powerOfTen(-exponent)
        } else {
            return try converted(from: start)
        }
        return negative ? -magnitude : magnitude
    }

    @inlinable @inline(__always)
    static func take(_ digit: UInt8, _ significand: inout UInt64, _ significant: inout Int) {
        guard significant > 0 || digit != 0 else { return }
        significant += 1
        if significant <= 19 { significand = significand &* 10 &+ UInt64(digit) }
    }

    /// 10^`exponent` for 0...22, each exact in a Double.
    @inlinable @inline(__always)
    static func powerOfTen(_ exponent: Int) -> Double {
        return powersOfTen[exponent]
    }

    @usableFromInline
    static let powersOfTen: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

    /// The correctly rounded conversion of the number's text from `start` to the reader (more
    /// digits than a Double holds exactly, or a large power of ten).
    @usableFromInline
    func converted(from start: UnsafePointer<UInt8>) throws(JSONParseError) -> Double {
        let text = String(decoding: UnsafeBufferPointer(start: start, count: p - start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(offset: start - base, reason: "number \(text) is outside the range of a 64-bit float")
        }
        return value
    }
}

/// Where `JSONScanner.unescape` writes a string's bytes.
public protocol JSONByteSink {
    mutating func append(_ byte: UInt8)
}

extension Array: JSONByteSink where Element == UInt8 {}
