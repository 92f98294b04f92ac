import EmitContract
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes OTLP/HTTP export requests for batches of events, keeping its memory from one batch to
/// the next: a request is megabytes, and fresh memory of that size costs the kernel more to
/// hand out (zeroed pages) than the encoding costs. One writer serves one request at a time.
public struct OTLPRequestWriter: Sendable {
    private var transcoder = EventTranscoder()
    /// The records as written, before they are grouped by resource.
    private var records = ByteBuffer()
    private var recordEnds: [Int] = []
    private var recordProducer: [Int] = []
    private var producers: [Producer] = []
    /// Producers by a hash of their identity; collisions are chained through `Producer.next`.
    private var producerByHash: [Int: Int] = [:]

    public init() {}

    /// A resource's identity as the events name it.
    private struct Producer: Sendable {
        let node: [UInt8]?
        let version: [UInt8]?
        var next = -1
        var recordBytes = 0

        func `is`(_ node: UnsafeBufferPointer<UInt8>?, _ version: UnsafeBufferPointer<UInt8>?) -> Bool {
            Self.same(self.node, node) && Self.same(self.version, version)
        }

        static func same(_ mine: [UInt8]?, _ theirs: UnsafeBufferPointer<UInt8>?) -> Bool {
            guard let mine, let theirs else { return mine == nil && theirs == nil }
            guard mine.count == theirs.count else { return false }
            return mine.withUnsafeBufferPointer { mine in
                guard let left = mine.baseAddress, let right = theirs.baseAddress else { return true }
                return memcmp(left, right, mine.count) == 0
            }
        }

        var key: OTLPLogs.ResourceKey {
            OTLPLogs.ResourceKey(node: node.map { String(decoding: $0, as: UTF8.self) }, version: version.map { String(decoding: $0, as: UTF8.self) })
        }
    }

    /// The body of one export request for `events` (each the JSON text the outbox holds),
    /// written over `body` (emptied first; its memory reused when nothing else holds it). The
    /// HTTP client sends the buffer as it is.
    public mutating func write(_ events: [String], encoding: OTLPEncoding, into body: inout ByteBuffer) throws(OTLPLogs.EncodingError) {
        body.clear()
        guard !events.isEmpty else {
            if encoding == .json { body.writeString("{}") }
            return
        }
        try writeRecords(events, encoding: encoding)
        writeRequest(encoding, into: &body)
    }

    /// Room kept before the records for the headers of a request with one resource.
    private static let headroom = 256

    /// Each event's LogRecord, straight from its text, one after another.
    private mutating func writeRecords(_ events: [String], encoding: OTLPEncoding) throws(OTLPLogs.EncodingError) {
        // Moved out while written (the producers, in self, are looked up meanwhile).
        var records = ByteBuffer(), transcoder = EventTranscoder()
        swap(&records, &self.records)
        swap(&transcoder, &self.transcoder)
        defer {
            swap(&records, &self.records)
            swap(&transcoder, &self.transcoder)
        }
        records.clear()
        recordEnds.removeAll(keepingCapacity: true)
        recordProducer.removeAll(keepingCapacity: true)
        producers.removeAll(keepingCapacity: true)
        producerByHash.removeAll(keepingCapacity: true)
        let textBytes = events.reduce(0) { $0 + $1.utf8.count }
        // What the benchmark's events come to (protobuf 1.55 times the text, JSON 3.1 times) and some.
        records.reserveCapacity(Self.headroom + (encoding == .protobuf ? textBytes * 7 / 4 : textBytes * 7 / 2) + events.count * 96)
        records.moveWriterIndex(forwardBy: Self.headroom)
        records.moveReaderIndex(forwardBy: Self.headroom)
        var latest = 0
        for (index, event) in events.enumerated() {
            var text = event
            var room = 2 * text.utf8.count + 512
            var failure: EventTranscoder.Malformed?
            while true {
                let written = text.withUTF8 { utf8 in
                    records.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { memory in
                        do throws(EventTranscoder.Malformed) {
                            let found = { (node: UnsafeBufferPointer<UInt8>?, version: UnsafeBufferPointer<UInt8>?) in
                                latest = producer(node, version, latest: latest)
                            }
                            return try (encoding == .protobuf ? transcoder.record(utf8, into: memory, producer: found)
                                                              : transcoder.jsonRecord(utf8, into: memory, producer: found)) ?? 0
                        } catch {
                            failure = error
                            return 0
                        }
                    }
                }
                if let failure { throw OTLPLogs.EncodingError(description: "event \(index) of the batch: \(failure)") }
                if written > 0 { break }
                room *= 2  // it did not fit: again with more room
            }
            recordEnds.append(records.writerIndex)
            recordProducer.append(latest)
            producers[latest].recordBytes += records.writerIndex - (index == 0 ? records.readerIndex : recordEnds[index - 1])
        }
    }

    /// The index of the producer named by `node` and `version`, added when new (`latest`, the
    /// previous event's, is tried first).
    private mutating func producer(_ node: UnsafeBufferPointer<UInt8>?, _ version: UnsafeBufferPointer<UInt8>?, latest: Int) -> Int {
        if latest < producers.count, producers[latest].is(node, version) { return latest }
        var hasher = Hasher()
        for part in [node, version] {
            hasher.combine(part != nil)
            if let part { hasher.combine(bytes: UnsafeRawBufferPointer(part)) }
        }
        let hash = hasher.finalize()
        var candidate = producerByHash[hash] ?? -1
        while candidate >= 0 {
            if producers[candidate].is(node, version) { return candidate }
            candidate = producers[candidate].next
        }
        producers.append(Producer(node: node.map(Array.init), version: version.map(Array.init), next: producerByHash[hash] ?? -1))
        producerByHash[hash] = producers.count - 1
        return producers.count - 1
    }

    /// The request: one resource's records are sent where they were written, after their
    /// headers; several resources' (a relay's outbox holds several nodes) are gathered, each
    /// after its own headers, in order of first appearance. In JSON each record was written
    /// after a comma, which the first of each resource's records goes without.
    private mutating func writeRequest(_ encoding: OTLPEncoding, into body: inout ByteBuffer) {
        let json = encoding == .json
        let opening = json ? Array(#"{"resourceLogs":["#.utf8) : []
        let trailer = json ? Array("]}]}".utf8) : [], closing = json ? Array("]}".utf8) : []
        let dropped = json ? 1 : 0  // the first record's comma
        if producers.count == 1 {
            let header = opening + (json ? Self.jsonHeader(producers[0].key) : Self.resourceHeader(producers[0].key, recordsLength: records.readableBytes))
            if header.count - dropped <= Self.headroom {
                records.moveReaderIndex(to: records.readerIndex + dropped - header.count)
                records.setBytes(header, at: records.readerIndex)
                records.writeBytes(trailer + closing)
                swap(&records, &body)
                return
            }
        }
        // Each producer's records in order: where its first goes, then a counting sort.
        var next = [Int](repeating: 0, count: producers.count)
        var started = [Bool](repeating: false, count: producers.count)
        var pieces: [(at: Int, bytes: [UInt8])] = [(0, opening)]
        var offset = opening.count
        for (index, producer) in producers.enumerated() {
            let header = (json && index > 0 ? [UInt8(ascii: ",")] : [])
                + (json ? Self.jsonHeader(producer.key) : Self.resourceHeader(producer.key, recordsLength: producer.recordBytes))
            pieces.append((offset, header))
            next[index] = offset + header.count
            offset += header.count + producer.recordBytes - dropped
            pieces.append((offset, trailer))
            offset += trailer.count
        }
        pieces.append((offset, closing))
        offset += closing.count
        body.reserveCapacity(offset)
        body.moveWriterIndex(forwardBy: offset)
        for piece in pieces where !piece.bytes.isEmpty {
            body.setBytes(piece.bytes, at: body.readerIndex + piece.at)
        }
        body.withUnsafeMutableReadableBytes { target in
            records.withUnsafeReadableBytes { source in
                guard let to = target.baseAddress, let from = source.baseAddress else { return }
                var start = 0
                for (index, end) in recordEnds.enumerated() {
                    let length = end - records.readerIndex - start
                    let producer = recordProducer[index]
                    let skip = started[producer] ? 0 : dropped
                    started[producer] = true
                    (to + next[producer]).copyMemory(from: from + start + skip, byteCount: length - skip)
                    next[producer] += length - skip
                    start += length
                }
            }
        }
    }

    /// A `resourceLogs` item in OTLP's JSON up to its records: the resource, and the scope its
    /// records (written after it, then `]}]}`) belong to.
    static func jsonHeader(_ key: OTLPLogs.ResourceKey) -> [UInt8] {
        var out = Array(#"{"resource":{"attributes":["#.utf8)
        for (index, (name, value)) in OTLPLogs.resourceAttributes(key).enumerated() {
            out += Array(((index > 0 ? "," : "") + #"{"key":"#).utf8)
            JSONWriter.writeString(name, into: &out)
            out += Array(#","value":{"stringValue":"#.utf8)
            JSONWriter.writeString(value, into: &out)
            out += Array("}}".utf8)
        }
        out += Array(#"]},"scopeLogs":[{"scope":{"name":"emit""#.utf8)
        if let version = key.version {
            out += Array(#","version":"#.utf8)
            JSONWriter.writeString(version, into: &out)
        }
        out += Array(#"},"logRecords":["#.utf8)
        return out
    }

    /// An `ExportLogsServiceRequest.resource_logs` field up to its records: the resource, and
    /// the scope its records (`recordsLength` bytes, written after it) belong to.
    static func resourceHeader(_ key: OTLPLogs.ResourceKey, recordsLength: Int) -> [UInt8] {
        let resource = written { out in
            let field = out.begin(0x0A)  // ResourceLogs.resource
            for (name, value) in OTLPLogs.resourceAttributes(key) {
                let pair = out.begin(0x0A)  // Resource.attributes
                out.string(0x0A, name)
                let any = out.begin(0x12)
                out.string(0x0A, value, always: true)
                out.end(any)
                out.end(pair)
            }
            out.end(field)
        }
        let scope = written { out in
            let field = out.begin(0x0A)  // ScopeLogs.scope
            out.string(0x0A, "emit")
            out.string(0x12, key.version ?? "")
            out.end(field)
        }
        let scopeLogs = scope.count + recordsLength
        let resourceLogs = resource.count + 1 + WireWriter.varintSize(scopeLogs) + scopeLogs
        return written { out in
            out.byte(0x0A)  // ExportLogsServiceRequest.resource_logs
            out.varint(UInt64(resourceLogs))
            resource.withUnsafeBufferPointer { out.bytes($0) }
            out.byte(0x12)  // ResourceLogs.scope_logs
            out.varint(UInt64(scopeLogs))
            scope.withUnsafeBufferPointer { out.bytes($0) }
        }
    }

    /// What `write` writes, in memory grown until it fits.
    private static func written(_ write: (inout WireWriter) -> Void) -> [UInt8] {
        var room = 256
        while true {
            var bytes = [UInt8](repeating: 0, count: room)
            let count = bytes.withUnsafeMutableBytes { memory in
                var out = WireWriter(memory)
                write(&out)
                return out.overflowed ? nil : out.count
            }
            if let count { return Array(bytes.prefix(count)) }
            room *= 4
        }
    }
}
