import EmitContract

extension EventTranscoder {
    /// Writes the event in `text` into `memory` as one LogRecord in OTLP's JSON encoding (after
    /// a comma: records follow one another in `logRecords`) and returns the bytes written, or
    /// nil when they did not fit. `producer` is given the event's node id and version.
    ///
    /// The event is JSON already: its strings are copied with their escapes as written and its
    /// numbers as written (`doubleValue`: a collector reads the same digits to the same double);
    /// only the shape around them is OTLP's. The times come after the body (members of a JSON
    /// object are unordered) and 64-bit integers are strings, as protobuf's JSON mapping writes
    /// them.
    mutating func jsonRecord(_ text: UnsafeBufferPointer<UInt8>, into memory: UnsafeMutableRawBufferPointer,
                             producer: (_ nodeID: UnsafeBufferPointer<UInt8>?, _ version: UnsafeBufferPointer<UInt8>?) -> Void) throws(Malformed) -> Int? {
        guard let base = text.baseAddress else { throw Malformed(offset: 0, reason: "an event is a JSON object") }
        var transcoding = JSONTranscoding(text: JSONScanner(base, count: text.count), out: WireWriter(memory))
        try transcoding.record()
        guard !transcoding.out.overflowed else { return nil }
        // The producer's names as they read: in place, or copied when they had escapes (rare).
        func copy(_ slot: Int) throws(Malformed) -> [UInt8]? {
            guard let string = transcoding.captures[slot], string.escapes else { return nil }
            return try transcoding.unescaped(string)
        }
        let node = try copy(Self.nodeID), version = try copy(Self.version)
        func view(_ slot: Int, _ copy: [UInt8]?, _ use: (UnsafeBufferPointer<UInt8>?) -> Void) {
            if let copy { copy.withUnsafeBufferPointer(use) } else { use(transcoding.captures[slot]?.bytes) }
        }
        view(Self.nodeID, node) { node in view(Self.version, version) { version in producer(node, version) } }
        return transcoding.out.count
    }
}

/// One event's pass to OTLP JSON.
private struct JSONTranscoding {
    typealias Malformed = EventTranscoder.Malformed

    var text: JSONScanner
    var out: WireWriter
    /// Per slot, the captured string as scanned (its escapes kept).
    var captures = InlineArray<10, JSONScanner.Scanned?>(repeating: nil)  // EventTranscoder.slots

    mutating func literal(_ text: StaticString) {
        out.bytes(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// A captured string's UTF-8 with its escapes undone (nil when absent).
    func unescaped(_ slot: Int) throws(Malformed) -> [UInt8]? {
        try captures[slot].map { (string) throws(Malformed) in try unescaped(string) }
    }

    /// A string's UTF-8 with its escapes undone: rare (the contract's names, ids and times need
    /// none), so through a writer of its own.
    func unescaped(_ string: JSONScanner.Scanned) throws(Malformed) -> [UInt8] {
        guard string.escapes else { return Array(string.bytes) }
        var bytes = [UInt8](repeating: 0, count: string.stop - string.start)
        let count: Result<Int, Malformed> = bytes.withUnsafeMutableBytes { memory in
            var writer = WireWriter(memory)
            var at = string.start
            while at < string.stop {
                if at.pointee == JSONScanner.backslash {
                    do throws(Malformed) { at = try text.unescape(at, into: &writer) } catch { return .failure(error) }
                } else {
                    writer.byte(at.pointee)
                    at += 1
                }
            }
            return .success(writer.count)
        }
        return Array(bytes.prefix(try count.get()))
    }

    mutating func record() throws(Malformed) {
        text.skipWhitespace()
        guard !text.atEnd, text.p.pointee == UInt8(ascii: "{") else { throw text.error("an event is a JSON object") }
        literal(#",{"body":"#)
        try value(depth: 0, context: .top)
        text.skipWhitespace()
        guard text.atEnd else { throw text.error("unexpected data after the event") }
        var listed = false
        for (slot, key) in EventTranscoder.attributeKeys.enumerated() {
            guard let value = captures[slot] else { continue }
            literal(listed ? "," : #","attributes":["#)
            listed = true
            literal(#"{"key":""#)
            literal(key)
            literal(#"","value":{"stringValue":"#)
            try quoted(value)
            literal("}}")
        }
        if listed { literal("]") }
        for (slot, name) in [(EventTranscoder.validTo, #","timeUnixNano":""# as StaticString), (EventTranscoder.recordedAt, #","observedTimeUnixNano":""#)] {
            guard let utf8 = try unescaped(slot), let instant = utf8.withUnsafeBufferPointer({ Timestamp.instant(rfc3339: $0) }) else {
                throw Malformed(offset: 0, reason: "no \(EventTranscoder.topNames[slot]) timestamp")
            }
            let nanoseconds = EventTranscoder.unixNanoseconds(instant.seconds, instant.nanoseconds)
            guard nanoseconds != 0 else { continue }  // proto3's JSON leaves a zero out, as its binary does
            literal(name)
            decimal(nanoseconds)
            literal(#"""#)
        }
        literal(#","eventName":"emit.energy_meter_recorded"}"#)
    }

    mutating func decimal(_ value: UInt64) {
        var digits = InlineArray<20, UInt8>(repeating: 0)
        var count = 0, rest = value
        repeat {
            digits[count] = UInt8(ascii: "0") + UInt8(rest % 10)
            count += 1
            rest /= 10
        } while rest > 0
        while count > 0 {
            count -= 1
            out.byte(digits[count])
        }
    }

    /// Writes the value at the reader as an AnyValue.
    mutating func value(depth: Int, context: EventTranscoder.Context) throws(Malformed) {
        switch try text.valueAhead() {
        case UInt8(ascii: "{"):
            try text.enter(depth: depth)
            try object(depth: depth, context: context)
        case UInt8(ascii: "["):
            try text.enter(depth: depth)
            try array(depth: depth)
        case JSONScanner.quote:
            try string(text.scanString())
        case UInt8(ascii: "t"):
            try text.literal("true")
            literal(#"{"boolValue":true}"#)
        case UInt8(ascii: "f"):
            try text.literal("false")
            literal(#"{"boolValue":false}"#)
        case UInt8(ascii: "n"):
            try text.literal("null")
            literal("{}")
        default:
            let start = text.p
            _ = try text.number()  // read as JSONParser reads it; written as it is
            literal(#"{"doubleValue":"#)
            out.bytes(UnsafeBufferPointer(start: start, count: text.p - start))
            literal("}")
        }
    }

    /// A string as it is written in the text, quoted, its escapes checked (as the binary
    /// encoding checks them by undoing them).
    mutating func quoted(_ string: JSONScanner.Scanned) throws(Malformed) {
        if string.escapes { _ = try unescaped(string) }
        out.byte(JSONScanner.quote)
        out.bytes(string.bytes)
        out.byte(JSONScanner.quote)
    }

    mutating func string(_ string: JSONScanner.Scanned) throws(Malformed) {
        literal(#"{"stringValue":"#)
        try quoted(string)
        literal("}")
    }

    mutating func object(depth: Int, context: EventTranscoder.Context) throws(Malformed) {
        if text.closesAtOnce(UInt8(ascii: "}")) { return literal(#"{"kvlistValue":{}}"#) }
        literal(#"{"kvlistValue":{"values":["#)
        var needsComma = false
        repeat {
            let key = try text.memberName()
            let ahead = try text.valueAhead()
            if needsComma { literal(",") }
            needsComma = true
            literal(#"{"key":"#)
            try quoted(key)
            literal(#","value":"#)
            var (slot, inner) = (-1, EventTranscoder.Context.other)
            if context != .other {
                // The name as the binary encoding matches it: undone escapes and all.
                let escaped = key.escapes ? try unescaped(key) : []
                (slot, inner) = escaped.withUnsafeBufferPointer { EventTranscoder.member(key.escapes ? $0 : key.bytes, in: context) }
            }
            if slot >= 0, ahead == JSONScanner.quote {
                let value = try text.scanString()
                captures[slot] = value
                try string(value)
            } else {
                try value(depth: depth + 1, context: inner)
            }
            literal("}")
        } while try text.another(before: UInt8(ascii: "}"))
        literal("]}}")
    }

    mutating func array(depth: Int) throws(Malformed) {
        if text.closesAtOnce(UInt8(ascii: "]")) { return literal(#"{"arrayValue":{}}"#) }
        literal(#"{"arrayValue":{"values":["#)
        var needsComma = false
        repeat {
            _ = try text.valueAhead()
            if needsComma { literal(",") }
            needsComma = true
            try value(depth: depth + 1, context: .other)
        } while try text.another(before: UInt8(ascii: "]"))
        literal("]}}")
    }
}
