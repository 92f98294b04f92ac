/// An RFC 3339 instant. Event fields keep the exact string (event ids hash it) and compare by
/// the instant it names, to the nanosecond.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The exact wire form: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    public let text: String
    public let epochSeconds: Int64
    public let nanoseconds: Int32

    public var description: String { text }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        (lhs.epochSeconds, lhs.nanoseconds) < (rhs.epochSeconds, rhs.nanoseconds)
    }

    public static func == (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.epochSeconds == rhs.epochSeconds && lhs.nanoseconds == rhs.nanoseconds && lhs.text == rhs.text
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    /// Seconds from `self` to `other` (positive when `other` is later).
    public func seconds(until other: Timestamp) -> Double {
        Double(other.epochSeconds - epochSeconds) + Double(other.nanoseconds - nanoseconds) / 1e9
    }

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)
        case notUTC(String)
        case noSuchInstant(String)

        public var description: String {
            switch self {
            case let .malformed(t): return "\"\(t)\" is not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.fraction]Z)"
            case let .notUTC(t): return "\"\(t)\" is not in UTC: it must end in 'Z'"
            case let .noSuchInstant(t): return "\"\(t)\" names no real instant"
            }
        }
    }

    /// Parses the contract's form: UTC, `Z`, 0–9 fraction digits.
    public init(contract text: String) throws(ParseError) {
        let parsed = try Timestamp.parse(text, requireUTC: true)
        self = parsed
    }

    /// Parses any RFC 3339 timestamp (any UTC offset, `T`/`t`, `Z`/`z`) and normalizes it to UTC
    /// `Z`, keeping every fraction digit given.
    public init(rfc3339 text: String) throws(ParseError) {
        self = try Timestamp.parse(text, requireUTC: false)
    }

    /// A timestamp at an instant, written with `fractionDigits` digits (0–9).
    public init(epochSeconds: Int64, nanoseconds: Int32, fractionDigits: Int = 6) {
        self.epochSeconds = epochSeconds
        self.nanoseconds = nanoseconds
        self.text = Timestamp.format(epochSeconds: epochSeconds, nanoseconds: nanoseconds, fractionDigits: fractionDigits)
    }

    private init(text: String, epochSeconds: Int64, nanoseconds: Int32) {
        self.text = text
        self.epochSeconds = epochSeconds
        self.nanoseconds = nanoseconds
    }

    private static func parse(_ text: String, requireUTC: Bool) throws(ParseError) -> Timestamp {
        // Native strings parse in place; only a bridged string is copied.
        if let parsed = text.utf8.withContiguousStorageIfAvailable({ parse(text, bytes: $0, requireUTC: requireUTC) }) {
            return try parsed.get()
        }
        return try Array(text.utf8).withUnsafeBufferPointer { parse(text, bytes: $0, requireUTC: requireUTC) }.get()
    }

    private static func parse(_ text: String, bytes b: UnsafeBufferPointer<UInt8>, requireUTC: Bool) -> Result<Timestamp, ParseError> {
        do throws(ParseError) {
            return .success(try parseBytes(text, b, requireUTC: requireUTC))
        } catch {
            return .failure(error)
        }
    }

    private static func parseBytes(_ text: String, _ b: UnsafeBufferPointer<UInt8>, requireUTC: Bool) throws(ParseError) -> Timestamp {
        let instant: Instant
        switch components(b, requireUTC: requireUTC) {
        case .success(let parsed): instant = parsed
        case .failure(.malformed): throw .malformed(text)
        case .failure(.notUTC): throw .notUTC(text)
        case .failure(.noSuchInstant): throw .noSuchInstant(text)
        }
        let canonical = instant.isCanonicalText
            ? text
            : format(epochSeconds: instant.seconds, nanoseconds: instant.nanoseconds, fractionDigits: instant.fractionDigits)
        return Timestamp(text: canonical, epochSeconds: instant.seconds, nanoseconds: instant.nanoseconds)
    }

    /// An RFC 3339 instant without its text: what an importer keeps per row.
    public struct Instant: Sendable, Equatable {
        public let seconds: Int64
        public let nanoseconds: Int32
        /// Fraction digits as given (the text is rebuilt with as many).
        public let fractionDigits: Int
        /// Already in the contract's form (UTC, `T`, `Z`): the text is the input.
        let isCanonicalText: Bool
    }

    enum ComponentError: Error { case malformed, notUTC, noSuchInstant }

    /// Parses any RFC 3339 timestamp from bytes to its instant; nil when it is not one (parse
    /// it as a string for the reason).
    public static func instant(rfc3339 bytes: UnsafeBufferPointer<UInt8>) -> Instant? {
        try? components(bytes, requireUTC: false).get()
    }

    private static func components(_ b: UnsafeBufferPointer<UInt8>, requireUTC: Bool) -> Result<Instant, ComponentError> {
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var v = 0
            for i in start..<(start + count) {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20,
              let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let day = digits(8, 2),
              b[10] == UInt8(ascii: "T") || (!requireUTC && b[10] == UInt8(ascii: "t")),
              let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let second = digits(17, 2)
        else { return .failure(.malformed) }
        var i = 19
        var nanos = 0
        var fractionDigits = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                fractionDigits += 1
                guard fractionDigits <= 9 else { return .failure(.malformed) }
                nanos = nanos * 10 + Int(b[i] - 0x30)
                i += 1
            }
            guard fractionDigits > 0 else { return .failure(.malformed) }
            for _ in fractionDigits..<9 { nanos *= 10 }
        }
        guard i < b.count else { return .failure(.malformed) }
        var offsetSeconds = 0
        if b[i] == UInt8(ascii: "Z") || (!requireUTC && b[i] == UInt8(ascii: "z")) {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard !requireUTC else { return .failure(.notUTC) }
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"),
                  let om = digits(i + 4, 2), oh <= 23, om <= 59 else { return .failure(.malformed) }
            offsetSeconds = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return .failure(.malformed)
        }
        guard i == b.count else { return .failure(.malformed) }
        // Leap seconds (:60) cannot be placed on the POSIX time line this contract orders by.
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 59 else { return .failure(.noSuchInstant) }
        let epoch = Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400
            + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        let canonical = offsetSeconds == 0 && b[10] == UInt8(ascii: "T") && b[b.count - 1] == UInt8(ascii: "Z")
        return .success(Instant(seconds: epoch, nanoseconds: Int32(nanos), fractionDigits: fractionDigits, isCanonicalText: canonical))
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's civil-from-days inverse).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func format(epochSeconds: Int64, nanoseconds: Int32, fractionDigits: Int) -> String {
        var days = epochSeconds / 86_400
        var secondsOfDay = epochSeconds % 86_400
        if secondsOfDay < 0 { secondsOfDay += 86_400; days -= 1 }
        let (y, m, d) = civilFromDays(Int(days))
        let digits = max(0, min(9, fractionDigits))
        // Written into bytes directly: timestamps are formatted for every imported window.
        return String(unsafeUninitializedCapacity: 32) { buffer in
            var i = 0
            func put(_ value: Int, _ width: Int) {
                var v = value, w = width
                if v >= 10_000 || v < 0 {   // years beyond 9999 (or before year 0) keep every digit
                    let text = Array(String(v).utf8)
                    for byte in text { buffer[i] = byte; i += 1 }
                    return
                }
                var place = 1
                while w > 1 { place *= 10; w -= 1 }
                while place > 0 { buffer[i] = UInt8(48 + (v / place) % 10); i += 1; v %= place; place /= 10 }
            }
            put(y, 4); buffer[i] = UInt8(ascii: "-"); i += 1
            put(m, 2); buffer[i] = UInt8(ascii: "-"); i += 1
            put(d, 2); buffer[i] = UInt8(ascii: "T"); i += 1
            put(Int(secondsOfDay / 3600), 2); buffer[i] = UInt8(ascii: ":"); i += 1
            put(Int(secondsOfDay % 3600 / 60), 2); buffer[i] = UInt8(ascii: ":"); i += 1
            put(Int(secondsOfDay % 60), 2)
            if digits > 0 {
                buffer[i] = UInt8(ascii: "."); i += 1
                var place = 100_000_000, nanos = Int(nanoseconds)
                for _ in 0..<digits { buffer[i] = UInt8(48 + nanos / place % 10); i += 1; nanos %= place; place /= 10 }
            }
            buffer[i] = UInt8(ascii: "Z"); i += 1
            return i
        }
    }
}
