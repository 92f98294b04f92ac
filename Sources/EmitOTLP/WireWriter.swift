import EmitContract

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Protobuf's binary wire format written through a pointer into memory its caller owns (the
/// request's buffer): the delivery hot path.
///
/// swift-protobuf builds a message tree per event (boxed oneofs, an allocation per value) and
/// costs about 40 µs of CPU per event that way (BENCHMARKS.md, OTLP); an array-backed writer
/// still paid a uniqueness check and reference counting on every byte appended. This one checks
/// only that the bytes fit: a write that does not fit is left out and marks the writer
/// `overflowed` (what it wrote is then garbage; the caller tries the event again with more
/// room). A test holds the bytes equal to swift-protobuf's own serialization of the same
/// message, which stays the reference and the decoder of answers. A field's key (its number
/// and wire type in one byte: OTLP's fields here are 1 to 15) is written by its callers as a
/// literal, with the field's name beside it.
struct WireWriter {
    private let start: UnsafeMutablePointer<UInt8>
    private let limit: UnsafeMutablePointer<UInt8>
    private(set) var cursor: UnsafeMutablePointer<UInt8>
    /// A write did not fit.
    private(set) var overflowed = false

    init(_ memory: UnsafeMutableRawBufferPointer) {
        // An empty buffer has no base address; a one-byte stand-in makes every write run out of room.
        let base = memory.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? WireWriter.nowhere
        start = base
        limit = base + (memory.baseAddress == nil ? 0 : memory.count)
        cursor = base
    }

    /// Never written: with no room every write is left out.
    nonisolated(unsafe) private static let nowhere = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

    /// Bytes written so far.
    var count: Int { cursor - start }

    /// The last `length` bytes written.
    func last(_ length: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: cursor - length, count: length)
    }

    @inline(__always)
    private mutating func fits(_ needed: Int) -> Bool {
        if limit - cursor >= needed { return true }
        overflowed = true
        return false
    }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        guard fits(1) else { return }
        cursor.pointee = value
        cursor += 1
    }

    @inline(__always)
    static func varintSize(_ value: Int) -> Int {
        // 7 bits a byte, rounded up (a negative Int is a 64-bit value: 10 bytes).
        let bits = Int.bitWidth - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    mutating func varint(_ value: UInt64) {
        guard fits(value < 0x80 ? 1 : Self.varintSize(Int(truncatingIfNeeded: value))) else { return }
        var value = value
        while value >= 0x80 {
            cursor.pointee = UInt8(truncatingIfNeeded: value) | 0x80
            cursor += 1
            value >>= 7
        }
        cursor.pointee = UInt8(value)
        cursor += 1
    }

    /// Raw bytes, already in wire format or a string's content.
    @inline(__always)
    mutating func bytes(_ source: UnsafeBufferPointer<UInt8>) {
        guard let base = source.baseAddress, !source.isEmpty, fits(source.count) else { return }
        cursor.update(from: base, count: source.count)
        cursor += source.count
    }

    /// A length-delimited field (a string) from its UTF-8; proto3 leaves an empty one out unless
    /// it is a oneof member (`always`).
    @inline(__always)
    mutating func string(_ key: UInt8, _ utf8: UnsafeBufferPointer<UInt8>, always: Bool = false) {
        guard always || !utf8.isEmpty else { return }
        guard fits(1 + (utf8.count < 0x80 ? 1 : Self.varintSize(utf8.count)) + utf8.count) else { return }
        cursor.pointee = key
        if utf8.count < 0x80 {
            cursor[1] = UInt8(truncatingIfNeeded: utf8.count)
            cursor += 2
        } else {
            cursor += 1
            varint(UInt64(utf8.count))
        }
        if let base = utf8.baseAddress {
            cursor.update(from: base, count: utf8.count)
            cursor += utf8.count
        }
    }

    mutating func string(_ key: UInt8, _ text: String, always: Bool = false) {
        var text = text
        text.withUTF8 { string(key, $0, always: always) }
    }

    /// A fixed64 field; proto3 leaves out a zero unless `always`.
    @inline(__always)
    mutating func fixed64(_ key: UInt8, _ value: UInt64, always: Bool = false) {
        guard always || value != 0 else { return }
        guard fits(9) else { return }
        cursor.pointee = key
        UnsafeMutableRawPointer(cursor + 1).storeBytes(of: value.littleEndian, as: UInt64.self)
        cursor += 9
    }

    /// Where a length-delimited field's content begins: the room kept for its length.
    struct Mark {
        fileprivate let lengthAt: UnsafeMutablePointer<UInt8>
        fileprivate let kept: Int
    }

    /// Opens a sub-message (or a string of unknown length) under `key`, keeping `keep` bytes for
    /// its length (2 where it is likely 128 bytes or more, so its content need not move).
    @inline(__always)
    mutating func begin(_ key: UInt8, keep: Int = 1) -> Mark {
        guard fits(1 + keep) else { return Mark(lengthAt: cursor, kept: 0) }
        cursor.pointee = key
        let mark = Mark(lengthAt: cursor + 1, kept: keep)
        cursor += 1 + keep
        return mark
    }

    /// Closes what `begin` opened: the length is written where it was kept, the content moved
    /// when its length needs more or fewer bytes than were kept (proto's lengths are minimal).
    @inline(__always)
    mutating func end(_ mark: Mark) {
        guard mark.kept > 0 else { return }  // its begin did not fit
        let content = mark.lengthAt + mark.kept
        let length = cursor - content
        if length < 0x80, mark.kept == 1 {
            mark.lengthAt.pointee = UInt8(truncatingIfNeeded: length)
            return
        }
        let size = Self.varintSize(length)
        if size != mark.kept {
            if size > mark.kept, !fits(size - mark.kept) { return }
            memmove(mark.lengthAt + size, content, length)
            cursor += size - mark.kept
        }
        var at = mark.lengthAt
        var value = UInt(length)
        while value >= 0x80 {
            at.pointee = UInt8(truncatingIfNeeded: value) | 0x80
            at += 1
            value >>= 7
        }
        at.pointee = UInt8(value)
    }

    /// Overwrites the 8 bytes of a fixed64 field written `at` (its key's offset) with `value`.
    mutating func setFixed64(at offset: Int, _ value: UInt64) {
        guard !overflowed else { return }
        precondition(offset >= 0 && offset + 9 <= count)
        UnsafeMutableRawPointer(start + offset + 1).storeBytes(of: value.littleEndian, as: UInt64.self)
    }

    /// Drops the bytes from `lower` to `upper`, moving what follows back.
    mutating func remove(from lower: Int, to upper: Int) {
        guard !overflowed else { return }
        precondition(0 <= lower && lower <= upper && upper <= count)
        memmove(start + lower, start + upper, count - upper)
        cursor -= upper - lower
    }
}

/// Unescaped string bytes go straight into the record.
extension WireWriter: JSONByteSink {
    @inline(__always)
    mutating func append(_ byte: UInt8) { self.byte(byte) }
}
