import EmitContract

/// An event's JSON text straight to an OTLP `LogRecord` in protobuf's wire format, in one pass
/// and without a JSON tree: the body as a key/value `AnyValue` and, on the way, the members the
/// record's times, attributes and resource come from.
///
/// It reads the JSON the outbox holds (every event there passed the strict parser); it is no
/// validator itself (it takes `01` for 1), but throws on anything it cannot read. Strings are
/// unescaped and numbers converted exactly as `JSONParser` does (integers of up to 15 digits
/// directly, others by correctly rounded conversion), so the bytes equal those of the tree path
/// (tested against swift-protobuf). It is a second JSON reader beside `JSONParser` because that
/// one's scanner is private to the contract module and builds a tree; sharing one scanner that
/// can feed either is the cleaner shape, not done yet.
struct EventTranscoder {
    struct Malformed: Error, CustomStringConvertible {
        let offset: Int
        let reason: String
        var description: String { "\(reason) at byte \(offset + 1)" }
    }

    /// The members the record needs besides its body, by index: the event's own (the first
    /// eight, attributes in `OTLPLogs.recordAttributes` order), then the producer's.
    static let topNames: [[UInt8]] = ["event_id", "energy_source", "energy_provenance", "grain", "compute_assignment_run_id",
                                      "facility_id", "valid_to", "recorded_at"].map { Array($0.utf8) }
    static let producerNames: [[UInt8]] = ["node_id", "version"].map { Array($0.utf8) }
    static let producer = Array("producer".utf8)
    static let validTo = 6, recordedAt = 7, nodeID = 8, version = 9

    /// A captured member's UTF-8: where it is in the text, or a copy when it had escapes.
    enum Captured {
        case text(Range<Int>)
        case copy([UInt8])
    }

    // Reused from one event to the next: no buffer is allocated per event.
    private var body = ProtobufWriter(capacity: 2048)
    private var recordBuffer = ProtobufWriter(capacity: 2560)
    private var unescaped: [UInt8] = []
    private var captured: [Captured?] = Array(repeating: nil, count: 10)

    /// The producer of the last record (its resource).
    private(set) var nodeID: String?
    private(set) var version: String?

    /// The LogRecord's bytes for `text` (its content, without its own tag and length).
    mutating func record(_ text: String) throws(Malformed) -> ProtobufWriter {
        var text = text
        let result: Result<ProtobufWriter, Malformed> = text.withUTF8 { bytes in
            do throws(Malformed) { return .success(try record(bytes)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    mutating func record(_ bytes: UnsafeBufferPointer<UInt8>) throws(Malformed) -> ProtobufWriter {
        for i in captured.indices { captured[i] = nil }
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        guard !reader.atEnd, reader.current == UInt8(ascii: "{") else { throw reader.malformed("an event is a JSON object") }
        // The body is written into a buffer moved out of `self` and back (no copy, no exclusivity clash).
        var content = ProtobufWriter()
        swap(&content, &body)
        content.reset()
        defer { swap(&content, &body) }
        try value(&reader, into: &content, depth: 0, context: .top)
        reader.skipWhitespace()
        guard reader.atEnd else { throw reader.malformed("unexpected data after the event") }
        func utf8<R>(_ index: Int, _ use: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
            switch captured[index] {
            case .text(let range)?: return use(UnsafeBufferPointer(rebasing: bytes[range]))
            case .copy(let copy)?: return copy.withUnsafeBufferPointer(use)
            case nil: return nil
            }
        }
        func time(_ index: Int) throws(Malformed) -> UInt64 {
            guard let instant = utf8(index, { Timestamp.instant(rfc3339: $0) }) ?? nil, instant.seconds >= 0 else {
                throw Malformed(offset: 0, reason: "no \(String(decoding: Self.topNames[index], as: UTF8.self)) timestamp")
            }
            return UInt64(instant.seconds) * 1_000_000_000 + UInt64(instant.nanoseconds)
        }
        nodeID = utf8(Self.nodeID) { String(decoding: $0, as: UTF8.self) }
        version = utf8(Self.version) { String(decoding: $0, as: UTF8.self) }
        var record = ProtobufWriter()
        swap(&record, &recordBuffer)
        record.reset()
        defer { swap(&record, &recordBuffer) }
        record.fixed64(1, try time(Self.validTo))  // time_unix_nano
        record.message(5, content: content)  // body
        for (index, (_, key)) in OTLPLogs.recordAttributes.enumerated() {  // attributes
            utf8(index) { value in
                record.message(6) { pair in pair.string(1, key); pair.message(2) { $0.string(1, utf8: value, always: true) } }
            }
        }
        record.fixed64(11, try time(Self.recordedAt))  // observed_time_unix_nano
        record.string(12, OTLPLogs.eventName)  // event_name
        return record
    }

    /// Where a value sits: the event's own members and the producer's are captured.
    enum Context { case top, producer, other }

    /// Writes the value at the reader as an AnyValue's content.
    private mutating func value(_ reader: inout Reader, into any: inout ProtobufWriter, depth: Int, context: Context) throws(Malformed) {
        guard depth < JSONParser.maximumDepth else { throw reader.malformed("nesting deeper than \(JSONParser.maximumDepth)") }
        guard !reader.atEnd else { throw reader.malformed("a value is missing") }
        switch reader.current {
        case UInt8(ascii: "{"):
            reader.position += 1
            try any.message(6) { (map: inout ProtobufWriter) throws(Malformed) in
                reader.skipWhitespace()
                if !reader.atEnd, reader.current == UInt8(ascii: "}") { reader.position += 1; return }
                while true {
                    reader.skipWhitespace()
                    let keyRange = try reader.string(scratch: &unescaped)
                    // Which captured member this is (names the contract writes never need escapes).
                    var slot: Int?
                    var inner = Context.other
                    if let keyRange, context != .other {
                        let key = UnsafeBufferPointer(rebasing: reader.bytes[keyRange])
                        let names = context == .top ? Self.topNames : Self.producerNames
                        if let index = names.firstIndex(where: { $0.count == key.count && $0.elementsEqual(key) }) {
                            slot = context == .top ? index : Self.nodeID + index
                        } else if context == .top, key.elementsEqual(Self.producer) {
                            inner = .producer
                        }
                    }
                    try map.message(1) { (pair: inout ProtobufWriter) throws(Malformed) in
                        if let keyRange { pair.string(1, utf8: UnsafeBufferPointer(rebasing: reader.bytes[keyRange])) } else { pair.string(1, utf8: unescaped) }
                        reader.skipWhitespace()
                        guard !reader.atEnd, reader.current == UInt8(ascii: ":") else { throw reader.malformed("expected ':' after a member name") }
                        reader.position += 1
                        reader.skipWhitespace()
                        // A member the record needs: where its string is (read ahead; strings are short).
                        if let slot, !reader.atEnd, reader.current == UInt8(ascii: "\"") {
                            var ahead = reader
                            let range = try ahead.string(scratch: &unescaped)
                            captured[slot] = range.map { .text($0) } ?? .copy(unescaped)
                        }
                        try pair.message(2) { (member: inout ProtobufWriter) throws(Malformed) in
                            try value(&reader, into: &member, depth: depth + 1, context: inner)
                        }
                    }
                    reader.skipWhitespace()
                    guard !reader.atEnd else { throw reader.malformed("unexpected end inside an object") }
                    if reader.current == UInt8(ascii: ",") { reader.position += 1; continue }
                    if reader.current == UInt8(ascii: "}") { reader.position += 1; return }
                    throw reader.malformed("expected ',' or '}' in an object")
                }
            }
        case UInt8(ascii: "["):
            reader.position += 1
            try any.message(5) { (list: inout ProtobufWriter) throws(Malformed) in
                reader.skipWhitespace()
                if !reader.atEnd, reader.current == UInt8(ascii: "]") { reader.position += 1; return }
                while true {
                    reader.skipWhitespace()
                    try list.message(1) { (item: inout ProtobufWriter) throws(Malformed) in try value(&reader, into: &item, depth: depth + 1, context: .other) }
                    reader.skipWhitespace()
                    guard !reader.atEnd else { throw reader.malformed("unexpected end inside an array") }
                    if reader.current == UInt8(ascii: ",") { reader.position += 1; continue }
                    if reader.current == UInt8(ascii: "]") { reader.position += 1; return }
                    throw reader.malformed("expected ',' or ']' in an array")
                }
            }
        case UInt8(ascii: "\""):
            if let range = try reader.string(scratch: &unescaped) {
                any.string(1, utf8: UnsafeBufferPointer(rebasing: reader.bytes[range]), always: true)
            } else {
                any.string(1, utf8: unescaped, always: true)
            }
        case UInt8(ascii: "t"):
            try reader.literal("true")
            any.bool(2, true)
        case UInt8(ascii: "f"):
            try reader.literal("false")
            any.bool(2, false)
        case UInt8(ascii: "n"):
            try reader.literal("null")
        default:
            any.double(4, try reader.number())
        }
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }
        var current: UInt8 { bytes[position] }

        func malformed(_ reason: String) -> Malformed { Malformed(offset: position, reason: reason) }

        mutating func skipWhitespace() {
            while position < bytes.count, bytes[position] == 0x20 || bytes[position] == 0x0A || bytes[position] == 0x0D || bytes[position] == 0x09 {
                position += 1
            }
        }

        mutating func literal(_ word: StaticString) throws(Malformed) {
            let count = word.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw malformed("invalid literal") }
            for i in 0..<count where bytes[position + i] != word.utf8Start[i] { throw malformed("invalid literal") }
            position += count
        }

        /// Where the string's UTF-8 is: its range in the text, or nil when it had escapes and was
        /// unescaped into `scratch`.
        mutating func string(scratch: inout [UInt8]) throws(Malformed) -> Range<Int>? {
            guard !atEnd, current == UInt8(ascii: "\"") else { throw malformed("expected a string") }
            position += 1
            let start = position
            while position < bytes.count, bytes[position] != UInt8(ascii: "\""), bytes[position] != UInt8(ascii: "\\") {
                guard bytes[position] >= 0x20 else { throw malformed("a control character in a string") }
                position += 1
            }
            guard position < bytes.count else { throw malformed("unterminated string") }
            if bytes[position] == UInt8(ascii: "\"") {
                position += 1
                return start..<(position - 1)
            }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                if byte == UInt8(ascii: "\"") { return nil }
                guard byte >= 0x20 else { throw malformed("a control character in a string") }
                guard byte == UInt8(ascii: "\\") else { scratch.append(byte); continue }
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(escape)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw malformed("a lone high surrogate")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw malformed("a high surrogate without its low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw malformed("a lone low surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw malformed("not a Unicode scalar") }
                    scratch.append(contentsOf: UTF8.encode(unicode).map { Array($0) } ?? [])
                default:
                    throw malformed("an unknown escape")
                }
            }
            throw malformed("unterminated string")
        }

        mutating func hex4() throws(Malformed) -> UInt32 {
            guard position + 4 <= bytes.count else { throw malformed("a \\u escape needs four hex digits") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - 0x30)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - 0x61 + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - 0x41 + 10)
                default: throw malformed("a \\u escape needs four hex digits")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        /// As JSONParser: plain integers of up to 15 digits directly, the rest correctly rounded.
        mutating func number() throws(Malformed) -> Double {
            let start = position
            let negative = current == UInt8(ascii: "-")
            if negative { position += 1 }
            let digitsStart = position
            var fraction = false
            while position < bytes.count {
                let byte = bytes[position]
                if byte >= 0x30 && byte <= 0x39 { position += 1; continue }
                if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") {
                    fraction = true
                    position += 1
                    continue
                }
                break
            }
            guard position > digitsStart else { throw malformed("expected a value") }
            if !fraction, position - digitsStart <= 15 {
                var magnitude: Int64 = 0
                for i in digitsStart..<position { magnitude = magnitude * 10 + Int64(bytes[i] - 0x30) }
                return negative ? -Double(magnitude) : Double(magnitude)
            }
            guard let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)), value.isFinite else {
                throw Malformed(offset: start, reason: "not a finite number")
            }
            return value
        }
    }
}
