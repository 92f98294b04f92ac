/// Protobuf's binary wire format, written straight into one buffer: the delivery hot path.
///
/// swift-protobuf builds a message tree per event (boxed oneofs, an allocation per value) and
/// costs about 40 µs of CPU per event that way, against about 2 µs for everything else a flush
/// does (BENCHMARKS.md, OTLP). This writer emits the same bytes field by field; a test holds
/// them equal to swift-protobuf's own serialization of the same message, which stays the
/// reference and the decoder of answers.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// Bytes written elsewhere, appended as they are (fields already tagged).
    mutating func append(_ other: ProtobufWriter) {
        bytes.append(contentsOf: other.bytes)
    }

    /// A writer over `buffer`'s memory (emptied; the caller's array is left empty meanwhile, so
    /// the memory has one owner and is written in place).
    init(reusing buffer: inout [UInt8]) {
        swap(&bytes, &buffer)
        bytes.removeAll(keepingCapacity: true)
    }

    mutating func reserve(_ capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Empty again, keeping its memory.
    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func tag(_ field: Int, wireType: Int) {
        varint(UInt64(field << 3 | wireType))
    }

    /// A string field from its UTF-8 (a slice of the text being read, in place); proto3 leaves
    /// an empty one out unless it is a oneof member (`always`).
    mutating func string(_ field: Int, utf8: UnsafeBufferPointer<UInt8>, always: Bool = false) {
        guard always || !utf8.isEmpty else { return }
        tag(field, wireType: 2)
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func string(_ field: Int, _ text: String, always: Bool = false) {
        var text = text
        text.withUTF8 { string(field, utf8: $0, always: always) }
    }

    mutating func string(_ field: Int, utf8: [UInt8], always: Bool = false) {
        utf8.withUnsafeBufferPointer { string(field, utf8: $0, always: always) }
    }

    mutating func fixed64(_ field: Int, _ value: UInt64, always: Bool = false) {
        guard always || value != 0 else { return }
        tag(field, wireType: 1)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func double(_ field: Int, _ value: Double) {
        fixed64(field, value.bitPattern, always: true)
    }

    mutating func bool(_ field: Int, _ value: Bool) {
        tag(field, wireType: 0)
        bytes.append(value ? 1 : 0)
    }

    /// A sub-message whose bytes are already written elsewhere: its length is known, nothing moves.
    mutating func message(_ field: Int, content: ProtobufWriter) {
        tag(field, wireType: 2)
        varint(UInt64(content.bytes.count))
        bytes.append(contentsOf: content.bytes)
    }

    /// A length-delimited sub-message written in place: one byte is kept for its length and
    /// widened afterwards when the message is 128 bytes or more.
    mutating func message<E: Error>(_ field: Int, _ body: (inout ProtobufWriter) throws(E) -> Void) throws(E) {
        tag(field, wireType: 2)
        let lengthAt = bytes.count
        bytes.append(0)
        try body(&self)
        let length = bytes.count - lengthAt - 1
        if length < 0x80 {
            bytes[lengthAt] = UInt8(length)
            return
        }
        var prefix: [UInt8] = []
        var value = UInt64(length)
        while value >= 0x80 {
            prefix.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        prefix.append(UInt8(value))
        bytes.replaceSubrange(lengthAt..<(lengthAt + 1), with: prefix)
    }
}
