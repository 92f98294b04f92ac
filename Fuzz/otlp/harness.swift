// libFuzzer target `otlp`: the OTLP transcoders (an event's JSON text to its LogRecord in
// protobuf's wire format, and in OTLP's JSON, written through pointers), compiled with the
// files Fuzz/otlp/sources lists (scripts/fuzz.sh otlp S).
// - It writes into memory exactly as large as the room it is given (AddressSanitizer watches
//   the byte after): a record that does not fit is refused (nil), one that fits is the same
//   bytes whatever the room (the exact room may still be refused: a length kept two bytes wide
//   that turns out to need one holds a byte until its message ends).
// - An event the strict parser accepts, with its two times, transcodes, and its record reads
//   back (with the small wire reader below, not swift-protobuf) as the parsed event: members in
//   order, strings byte for byte, numbers to the bit, booleans and nulls, then the attributes,
//   the times and the event's name. Its JSON record is JSON the strict parser reads, back to the
//   same event. Anything else may be refused, never crash, hang or leak.
import EmitContract

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOTLP(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = UnsafeBufferPointer(start: start.assumingMemoryBound(to: UInt8.self), count: count)
    for json in [false, true] { check(text, json: json) }
    return 0
}

func check(_ text: UnsafeBufferPointer<UInt8>, json: Bool) {
    let count = text.count
    var transcoder = EventTranscoder()
    func attempt(room: Int) -> (bytes: [UInt8]?, malformed: Bool) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: room, alignment: 1)
        defer { memory.deallocate() }
        do {
            let written = json ? try transcoder.jsonRecord(text, into: memory, producer: { _, _ in })
                : try transcoder.record(text, into: memory, producer: { _, _ in })
            guard let written else { return (nil, false) }
            precondition(written <= room, "wrote \(written) bytes into \(room)")
            return (Array(memory.prefix(written)), false)
        } catch {
            return (nil, true)
        }
    }
    var room = 8 * count + 1024
    var full = attempt(room: room)
    while full.bytes == nil, !full.malformed {
        room *= 2
        full = attempt(room: room)
    }
    let event = (try? JSONParser.parse(Array(text))).flatMap { value -> [(String, JSONValue)]? in
        if case let .object(members) = value { return members }
        return nil
    }
    guard let record = full.bytes else {
        if let event, times(event) != nil { fatalError("an event the strict parser reads, with its times, was refused") }
        return
    }
    // Any smaller room is refused without a write past it; the exact room gives the same bytes.
    let seed = count == 0 ? 0 : Int(text[count / 2])
    for smaller in Set([0, 1, 2, record.count / 2, record.count - 1, seed % max(1, record.count)]) where smaller < record.count {
        let small = attempt(room: smaller)
        guard small.bytes == nil else { fatalError("a record of \(record.count) bytes fitted in \(smaller)") }
        guard !small.malformed else { fatalError("refused as malformed in \(smaller) bytes, transcoded in \(room)") }
    }
    if let exact = attempt(room: record.count).bytes, exact != record { fatalError("the exact room gave other bytes") }
    if let event, let (validTo, recordedAt) = times(event) {
        if json {
            checkJSON(record, against: event, validTo: validTo, recordedAt: recordedAt)
        } else {
            check(record, against: event, validTo: validTo, recordedAt: recordedAt)
        }
    }
}

/// A JSON record (after its comma) is JSON that reads back as the event.
func checkJSON(_ record: [UInt8], against event: [(String, JSONValue)], validTo: UInt64, recordedAt: UInt64) {
    guard record.first == UInt8(ascii: ","), let parsed = try? JSONParser.parse(Array(record.dropFirst())), case let .object(members) = parsed else {
        fatalError("the JSON record is not a JSON object after a comma: \(String(decoding: record, as: UTF8.self))")
    }
    guard let body = member("body", members) else { fatalError("no body") }
    expectJSON(body, equals: .object(event))
    func time(_ name: String, _ expected: UInt64) {
        switch member(name, members) {
        case nil: guard expected == 0 else { fatalError("\(name) left out") }
        case .string(let text)?: guard text == String(expected), expected != 0 else { fatalError("\(name) \(text), not \(expected)") }
        default: fatalError("\(name) is not a string")
        }
    }
    time("timeUnixNano", validTo)
    time("observedTimeUnixNano", recordedAt)
    guard member("eventName", members) == .string("emit.energy_meter_recorded") else { fatalError("another event name") }
    var expected: [JSONValue] = []
    for source in ["event_id", "energy_source", "energy_provenance", "grain", "compute_assignment_run_id", "facility_id"] {
        if case let .string(value)? = member(source, event) {
            expected.append(.object([("key", .string("emit." + source)), ("value", .object([("stringValue", .string(value))]))]))
        }
    }
    guard (member("attributes", members) ?? .array([])) == .array(expected), expected.isEmpty == (member("attributes", members) == nil) else {
        fatalError("attributes differ")
    }
}

func arrayItems(_ value: JSONValue) -> [JSONValue]? {
    if case let .array(items) = value { return items }
    return nil
}

/// The AnyValue in OTLP's JSON is `value`.
func expectJSON(_ any: JSONValue, equals value: JSONValue) {
    guard case let .object(fields) = any, fields.count <= 1 else { fatalError("an AnyValue that is not an object of one member") }
    switch (fields.first, value) {
    case (nil, .null): return
    case (("stringValue", .string(let a))?, .string(let b)): guard Array(a.utf8) == Array(b.utf8) else { fatalError("a string differs") }
    case (("boolValue", .bool(let a))?, .bool(let b)): guard a == b else { fatalError("a boolean differs") }
    case (("doubleValue", .number(let a))?, .number(let b)): guard a.bitPattern == b.bitPattern else { fatalError("a number differs") }
    case (("arrayValue", .object(let list))?, .array(let items)):
        let values = list.isEmpty ? [] : (list.count == 1 && list[0].0 == "values" ? arrayItems(list[0].1) : nil)
        guard let values, values.count == items.count else { fatalError("an array differs") }
        for (a, b) in zip(values, items) { expectJSON(a, equals: b) }
    case (("kvlistValue", .object(let list))?, .object(let members)):
        let values = list.isEmpty ? [] : (list.count == 1 && list[0].0 == "values" ? arrayItems(list[0].1) : nil)
        guard let values, values.count == members.count else { fatalError("an object differs") }
        for (pair, (name, member)) in zip(values, members) {
            guard case let .object(parts) = pair, parts.count == 2, parts[0].0 == "key", parts[1].0 == "value",
                  case let .string(key) = parts[0].1, Array(key.utf8) == Array(name.utf8) else { fatalError("a member's name differs") }
            expectJSON(parts[1].1, equals: member)
        }
    default:
        fatalError("\(fields.first?.0 ?? "{}") for \(value.typeName)")
    }
}

func member(_ name: String, _ members: [(String, JSONValue)]) -> JSONValue? {
    members.first { $0.0 == name }?.1
}

func nanoseconds(_ value: JSONValue?) -> UInt64? {
    guard case let .string(text)? = value else { return nil }
    var utf8 = Array(text.utf8)
    guard let instant = utf8.withUnsafeMutableBufferPointer({ Timestamp.instant(rfc3339: UnsafeBufferPointer($0)) }) else { return nil }
    // OTLP's nanoseconds since 1970 in 64 bits, else 0 ("unknown").
    guard instant.seconds >= 0, instant.seconds < 18_446_744_073 || (instant.seconds == 18_446_744_073 && instant.nanoseconds <= 709_551_615) else { return 0 }
    return UInt64(instant.seconds) * 1_000_000_000 + UInt64(instant.nanoseconds)
}

func times(_ event: [(String, JSONValue)]) -> (UInt64, UInt64)? {
    guard let validTo = nanoseconds(member("valid_to", event)), let recordedAt = nanoseconds(member("recorded_at", event)) else { return nil }
    return (validTo, recordedAt)
}

/// Protobuf's wire format, read: just what a LogRecord needs.
struct Wire {
    let bytes: [UInt8]
    var at: Int
    let end: Int

    init(_ bytes: [UInt8], from: Int = 0, to: Int? = nil) {
        self.bytes = bytes
        at = from
        end = to ?? bytes.count
    }

    var atEnd: Bool { at >= end }

    mutating func varint() -> UInt64 {
        var value: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard at < end, shift < 64 else { fatalError("a varint runs past its message") }
            let byte = bytes[at]
            at += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                if byte == 0, shift > 0 { fatalError("a varint that is not minimal") }
                return value
            }
            shift += 7
        }
    }

    mutating func key() -> (field: Int, type: Int) {
        let key = varint()
        return (Int(key >> 3), Int(key & 7))
    }

    mutating func message() -> Wire {
        let length = Int(varint())
        guard length <= end - at else { fatalError("a length past its message") }
        defer { at += length }
        return Wire(bytes, from: at, to: at + length)
    }

    var rest: [UInt8] { Array(bytes[at..<end]) }

    mutating func fixed64() -> UInt64 {
        guard end - at >= 8 else { fatalError("a fixed64 past its message") }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
        at += 8
        return value
    }
}

func check(_ record: [UInt8], against event: [(String, JSONValue)], validTo: UInt64, recordedAt: UInt64) {
    var outer = Wire(record)
    guard outer.key() == (2, 2) else { fatalError("not a ScopeLogs.log_records field") }
    var log = outer.message()
    guard outer.atEnd else { fatalError("bytes after the record") }
    var fields: [(Int, Int)] = []
    var attributes: [(String, String)] = []
    var time: UInt64 = 0, observed: UInt64 = 0, name: [UInt8] = []
    while !log.atEnd {
        let key = log.key()
        fields.append(key)
        switch key {
        case (1, 1): time = log.fixed64()
        case (5, 2): var body = log.message(); expect(&body, equals: .object(event), depth: 0)
        case (6, 2):
            var pair = log.message()
            guard pair.key() == (1, 2) else { fatalError("an attribute without its key") }
            let attributeKey = String(decoding: pair.message().rest, as: UTF8.self)
            guard pair.key() == (2, 2) else { fatalError("an attribute without its value") }
            var any = pair.message()
            guard any.key() == (1, 2) else { fatalError("an attribute that is not a string") }
            attributes.append((attributeKey, String(decoding: any.message().rest, as: UTF8.self)))
        case (11, 1): observed = log.fixed64()
        case (12, 2): name = log.message().rest
        default: fatalError("an unexpected field \(key)")
        }
    }
    guard fields.map(\.0) == fields.map(\.0).sorted() else { fatalError("fields out of order") }
    guard time == validTo, observed == recordedAt else { fatalError("the times differ from the event's") }
    guard name == Array("emit.energy_meter_recorded".utf8) else { fatalError("another event name") }
    var expected: [(String, String)] = []
    for source in ["event_id", "energy_source", "energy_provenance", "grain", "compute_assignment_run_id", "facility_id"] {
        if case let .string(value)? = member(source, event) { expected.append(("emit." + source, value)) }
    }
    guard attributes.count == expected.count, zip(attributes, expected).allSatisfy({ Array($0.0.utf8) == Array($1.0.utf8) && Array($0.1.utf8) == Array($1.1.utf8) }) else {
        fatalError("attributes \(attributes) differ from \(expected)")
    }
}

/// The AnyValue in `wire` is `value`.
func expect(_ wire: inout Wire, equals value: JSONValue, depth: Int) {
    if case .null = value {
        guard wire.atEnd else { fatalError("null is not an empty AnyValue") }
        return
    }
    let key = wire.key()
    switch (key, value) {
    case ((1, 2), .string(let text)):
        guard wire.message().rest == Array(text.utf8) else { fatalError("a string differs") }
    case ((2, 0), .bool(let flag)):
        guard wire.varint() == (flag ? 1 : 0) else { fatalError("a boolean differs") }
    case ((4, 1), .number(let number)):
        guard wire.fixed64() == number.bitPattern else { fatalError("a number differs: \(number)") }
    case ((5, 2), .array(let items)):
        var list = wire.message()
        for item in items {
            guard list.key() == (1, 2) else { fatalError("an array item missing") }
            var any = list.message()
            expect(&any, equals: item, depth: depth + 1)
        }
        guard list.atEnd else { fatalError("more array items than the event's") }
    case ((6, 2), .object(let members)):
        var list = wire.message()
        for (name, member) in members {
            guard list.key() == (1, 2) else { fatalError("a member missing") }
            var pair = list.message()
            var keyBytes: [UInt8] = []
            var next = pair.key()
            if next == (1, 2) {
                keyBytes = pair.message().rest
                guard !keyBytes.isEmpty else { fatalError("an empty key written") }
                next = pair.key()
            }
            guard keyBytes == Array(name.utf8) else { fatalError("a member's name differs") }
            guard next == (2, 2) else { fatalError("a member without its value") }
            var any = pair.message()
            expect(&any, equals: member, depth: depth + 1)
            guard pair.atEnd else { fatalError("bytes after a member") }
        }
        guard list.atEnd else { fatalError("more members than the event's") }
    default:
        fatalError("field \(key) for \(value.typeName)")
    }
    guard wire.atEnd else { fatalError("bytes after a value") }
}
