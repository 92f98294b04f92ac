import EmitContract

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An event's JSON text straight to an OTLP `LogRecord` in protobuf's wire format, in one pass
/// and without a JSON tree: the body as a key/value `AnyValue` and, on the way, the members the
/// record's times, attributes and resource come from.
///
/// It reads the JSON the outbox holds (every event there passed the strict parser) with the
/// parser's own reader, `JSONScanner`, so strings unescape and numbers convert exactly as in the
/// tree and the bytes equal those of the tree path (tested against swift-protobuf). It writes
/// through pointers: no reference counting, no allocation per event. `Fuzz/otlp` runs it under
/// AddressSanitizer against swift-protobuf-free checks of its output.
struct EventTranscoder {
    /// What the text could not be read as: where, and why.
    typealias Malformed = JSONParseError

    /// The members the record needs besides its body, by slot: the event's own (the first six
    /// become attributes, in `OTLPLogs.recordAttributes` order, then its two times), then the
    /// producer's.
    static let topNames: [StaticString] = ["event_id", "energy_source", "energy_provenance", "grain", "compute_assignment_run_id",
                                           "facility_id", "valid_to", "recorded_at"]
    static let producerNames: [StaticString] = ["node_id", "version"]
    static let attributeKeys: [StaticString] = ["emit.event_id", "emit.energy_source", "emit.energy_provenance", "emit.grain",
                                                "emit.compute_assignment_run_id", "emit.facility_id"]
    static let producer: StaticString = "producer"
    static let eventName: StaticString = "emit.energy_meter_recorded"
    static let validTo = 6, recordedAt = 7, nodeID = 8, version = 9, slots = 10

    /// Captured members whose text had escapes, unescaped (kept from event to event).
    private var unescapedCaptures: [UInt8] = []

    /// Writes the event in `text` into `memory` as one `ScopeLogs.log_records` field (its key,
    /// length and the LogRecord) and returns the bytes written, or nil when they did not fit.
    /// `producer` is given the event's node id and version (nil where absent), for its resource.
    mutating func record(_ text: UnsafeBufferPointer<UInt8>, into memory: UnsafeMutableRawBufferPointer,
                         producer: (_ nodeID: UnsafeBufferPointer<UInt8>?, _ version: UnsafeBufferPointer<UInt8>?) -> Void) throws(Malformed) -> Int? {
        guard let base = text.baseAddress else { throw Malformed(offset: 0, reason: "an event is a JSON object") }
        var transcoding = Transcoding(text: base, count: text.count, into: WireWriter(memory))
        swap(&transcoding.unescaped, &unescapedCaptures)
        defer { swap(&transcoding.unescaped, &unescapedCaptures) }
        transcoding.unescaped.removeAll(keepingCapacity: true)
        try transcoding.record()
        guard !transcoding.out.overflowed else { return nil }
        transcoding.withCaptured(Self.nodeID) { node in
            transcoding.withCaptured(Self.version) { version in producer(node, version) }
        }
        return transcoding.out.count
    }

    /// The record's bytes for one event (tests; the request writes records in place).
    mutating func record(_ text: String, json: Bool = false) throws(Malformed) -> [UInt8] {
        var text = text
        var room = 2 * text.utf8.count + 512
        while true {
            var bytes = [UInt8](repeating: 0, count: room)
            let written: Result<Int?, Malformed> = text.withUTF8 { utf8 in
                bytes.withUnsafeMutableBytes { memory in
                    do throws(Malformed) {
                        return .success(json ? try jsonRecord(utf8, into: memory) { _, _ in } : try record(utf8, into: memory) { _, _ in })
                    } catch {
                        return .failure(error)
                    }
                }
            }
            if let count = try written.get() { return Array(bytes.prefix(count)) }
            room *= 2
        }
    }

    /// An instant as OTLP's `*_unix_nano`, or 0 ("unknown") where it cannot say it: before 1970
    /// or after 2554-07-21T23:34:33Z (the contract allows both; the body keeps the exact text).
    static func unixNanoseconds(_ seconds: Int64, _ nanoseconds: Int32) -> UInt64 {
        guard seconds >= 0, nanoseconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return 0 }
        let (total, overflowAgain) = whole.addingReportingOverflow(UInt64(nanoseconds))
        return overflowAgain ? 0 : total
    }

    /// Where a value sits: the event's own members and the producer's are captured.
    enum Context { case top, producer, other }

    /// What a member named `name` is where it sits: the slot it is captured in (-1 for none)
    /// and the context of its own members (the producer's are captured too).
    static func member(_ name: UnsafeBufferPointer<UInt8>, in context: Context) -> (slot: Int, inner: Context) {
        switch context {
        case .top:
            let slot = topSlot(name)
            return (slot, slot < 0 && equal(name, producer) ? .producer : .other)
        case .producer:
            return (match(name, producerNames).map { nodeID + $0 } ?? -1, .other)
        case .other:
            return (-1, .other)
        }
    }

    /// The slot of an event member the record needs, or -1: by length first (most names have
    /// none of those lengths), then by their bytes.
    @inline(__always)
    static func topSlot(_ name: UnsafeBufferPointer<UInt8>) -> Int {
        switch name.count {
        case 5, 8, 11, 13, 17, 25:
            return match(name, EventTranscoder.topNames) ?? -1
        default:
            return -1
        }
    }

    static func equal(_ name: UnsafeBufferPointer<UInt8>, _ candidate: StaticString) -> Bool {
        guard name.count == candidate.utf8CodeUnitCount else { return false }
        guard let bytes = name.baseAddress else { return true }
        return memcmp(bytes, candidate.utf8Start, name.count) == 0
    }

    static func match(_ name: UnsafeBufferPointer<UInt8>, _ names: [StaticString]) -> Int? {
        names.firstIndex { equal(name, $0) }
    }
}

/// One event's pass: where the reader is, what has been written and captured.
private struct Transcoding {
    typealias Malformed = EventTranscoder.Malformed
    typealias Context = EventTranscoder.Context

    var text: JSONScanner
    var out: WireWriter
    /// Per slot, the captured string: its bounds in the text, or (when it had escapes) a
    /// negative start -1 - offset into `unescaped` and its length; Int.min when absent.
    var captures = InlineArray<20, Int>(repeating: Int.min)
    var unescaped: [UInt8] = []

    init(text: UnsafePointer<UInt8>, count: Int, into out: WireWriter) {
        self.text = JSONScanner(text, count: count)
        self.out = out
    }

    func withCaptured<R>(_ slot: Int, _ use: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        unescaped.withUnsafeBufferPointer { use(captured(slot, unescaped: $0)) }
    }

    /// A captured string, in the text or in `unescaped` (given as `side`).
    func captured(_ slot: Int, unescaped side: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        let lower = captures[2 * slot], upper = captures[2 * slot + 1]
        if lower == Int.min { return nil }
        if lower >= 0 { return UnsafeBufferPointer(start: text.base + lower, count: upper - lower) }
        return UnsafeBufferPointer(rebasing: side[(-1 - lower)..<(-1 - lower + upper)])
    }

    mutating func record() throws(Malformed) {
        text.skipWhitespace()
        guard text.p < text.end, text.p.pointee == UInt8(ascii: "{") else { throw text.error("an event is a JSON object") }
        let record = out.begin(0x12, keep: 2)  // ScopeLogs.log_records
        let timeAt = out.count
        out.fixed64(0x09, 0, always: true)  // LogRecord.time_unix_nano, set once valid_to is read
        let body = out.begin(0x2A, keep: 2)  // LogRecord.body
        try value(depth: 0, context: .top)
        out.end(body)
        text.skipWhitespace()
        guard text.p == text.end else { throw text.error("unexpected data after the event") }
        guard !out.overflowed else { return }  // members may have gone uncaptured: tried again with more room
        let validTo = try time(EventTranscoder.validTo)
        if validTo != 0 { out.setFixed64(at: timeAt, validTo) } else { out.remove(from: timeAt, to: timeAt + 9) }  // proto3 leaves a zero out
        let side = unescaped  // read while `out` is written
        side.withUnsafeBufferPointer { side in
            for (slot, key) in EventTranscoder.attributeKeys.enumerated() {  // LogRecord.attributes
                guard let value = captured(slot, unescaped: side) else { continue }
                let pair = out.begin(0x32)
                out.string(0x0A, UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
                let any = out.begin(0x12)
                out.string(0x0A, value, always: true)
                out.end(any)
                out.end(pair)
            }
        }
        out.fixed64(0x59, try time(EventTranscoder.recordedAt))  // LogRecord.observed_time_unix_nano
        let name = EventTranscoder.eventName
        out.string(0x62, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))  // LogRecord.event_name
        out.end(record)
    }

    func time(_ slot: Int) throws(Malformed) -> UInt64 {
        guard let instant = withCaptured(slot, { $0.flatMap { Timestamp.instant(rfc3339: $0) } }) else {
            throw Malformed(offset: 0, reason: "no \(EventTranscoder.topNames[slot]) timestamp")
        }
        return EventTranscoder.unixNanoseconds(instant.seconds, instant.nanoseconds)
    }

    // MARK: Values

    /// Writes the value at the reader as an AnyValue's content.
    mutating func value(depth: Int, context: Context) throws(Malformed) {
        switch try text.valueAhead() {
        case UInt8(ascii: "{"):
            try text.enter(depth: depth)
            try object(depth: depth, context: context)
        case UInt8(ascii: "["):
            try text.enter(depth: depth)
            try array(depth: depth)
        case JSONScanner.quote:
            let string = try text.scanString()
            try writeString(0x0A, string, always: true)  // AnyValue.string_value
        case UInt8(ascii: "t"):
            try text.literal("true")
            out.byte(0x10)  // AnyValue.bool_value
            out.byte(1)
        case UInt8(ascii: "f"):
            try text.literal("false")
            out.byte(0x10)
            out.byte(0)
        case UInt8(ascii: "n"):
            try text.literal("null")  // an empty AnyValue
        default:
            out.fixed64(0x21, try text.number().bitPattern, always: true)  // AnyValue.double_value
        }
    }

    /// An object's members, after its `{`, as `AnyValue.kvlist_value`.
    mutating func object(depth: Int, context: Context) throws(Malformed) {
        let list = out.begin(0x32, keep: 2)
        defer { out.end(list) }
        if text.closesAtOnce(UInt8(ascii: "}")) { return }
        repeat {
            let key = try text.memberName()
            let first = try text.valueAhead()
            let keep = first == UInt8(ascii: "{") || first == UInt8(ascii: "[") ? 2 : 1
            let pair = out.begin(0x0A, keep: keep)  // KeyValueList.values
            let keyLength = try writeString(0x0A, key, always: false)  // KeyValue.key
            // Which captured member this is, from the name as written (unescaped).
            var (slot, inner) = (-1, Context.other)
            if context != .other, !out.overflowed {
                (slot, inner) = EventTranscoder.member(key.escapes ? out.last(keyLength) : key.bytes, in: context)
            }
            let member = out.begin(0x12, keep: keep)  // KeyValue.value
            if slot >= 0, first == JSONScanner.quote {
                let string = try text.scanString()
                let length = try writeString(0x0A, string, always: true)
                if !string.escapes {
                    captures[2 * slot] = string.start - text.base
                    captures[2 * slot + 1] = string.stop - text.base
                } else if !out.overflowed {
                    captures[2 * slot] = -1 - unescaped.count
                    captures[2 * slot + 1] = length
                    unescaped.append(contentsOf: out.last(length))
                }
            } else {
                try value(depth: depth + 1, context: inner)
            }
            out.end(member)
            out.end(pair)
        } while try text.another(before: UInt8(ascii: "}"))
    }

    /// An array's items, after its `[`, as `AnyValue.array_value`.
    mutating func array(depth: Int) throws(Malformed) {
        let list = out.begin(0x2A, keep: 2)
        defer { out.end(list) }
        if text.closesAtOnce(UInt8(ascii: "]")) { return }
        repeat {
            let first = try text.valueAhead()
            let item = out.begin(0x0A, keep: first == UInt8(ascii: "{") || first == UInt8(ascii: "[") ? 2 : 1)  // ArrayValue.values
            try value(depth: depth + 1, context: .other)
            out.end(item)
        } while try text.another(before: UInt8(ascii: "]"))
    }

    /// Writes a scanned string as a length-delimited field and returns its length in bytes.
    @discardableResult
    mutating func writeString(_ key: UInt8, _ string: JSONScanner.Scanned, always: Bool) throws(Malformed) -> Int {
        guard string.escapes else {
            out.string(key, string.bytes, always: always)
            return string.stop - string.start
        }
        let mark = out.begin(key)
        let contentStart = out.count
        var at = string.start
        while at < string.stop {
            var run = at
            while run < string.stop, run.pointee != JSONScanner.backslash { run += 1 }
            out.bytes(UnsafeBufferPointer(start: at, count: run - at))
            guard run < string.stop else { break }
            at = try text.unescape(run, into: &out)
        }
        let length = out.count - contentStart
        out.end(mark)
        return length
    }

}
