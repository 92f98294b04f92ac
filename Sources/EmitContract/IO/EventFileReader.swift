#if canImport(Glibc)
import Glibc
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 { Glibc.open(path, flags) }
#elseif canImport(Darwin)
import Darwin
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 { Darwin.open(path, flags) }
#endif

/// One record of an event file: a JSONL line still as text (so parsing and validation happen in
/// one streaming pass), or an element of a `.json` document, or a record that could not be read.
public enum EventRecord {
    case line(number: Int, text: UnsafeBufferPointer<UInt8>)
    case element(position: Int, value: JSONValue)
    case unreadable(position: Int, message: String)
}

public struct EventFileError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Reads event files the way CLI.md describes: `.json` holds one event or an array of events;
/// `.jsonl`, `.ndjson`, other names and `-` (stdin) hold one event per line, blank lines skipped.
/// JSON Lines are streamed in fixed-size chunks, so memory stays flat in file size.
public enum EventFileReader {
    public static func isJSONDocument(_ path: String) -> Bool {
        path != "-" && path.lowercased().hasSuffix(".json")
    }

    public static func forEachRecord(path: String, _ body: (EventRecord) throws -> Void) throws {
        if isJSONDocument(path) {
            let bytes = try readAll(path: path)
            let value: JSONValue
            do { value = try JSONParser.parse(bytes) } catch {
                try body(.unreadable(position: 1, message: error.description))
                return
            }
            if case let .array(elements) = value {
                for (i, element) in elements.enumerated() { try body(.element(position: i + 1, value: element)) }
            } else {
                try body(.element(position: 1, value: value))
            }
        } else {
            try forEachLine(path: path) { number, text in try body(.line(number: number, text: text)) }
        }
    }

    static func open(_ path: String) throws(EventFileError) -> Int32 {
        if path == "-" { return STDIN_FILENO }
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EventFileError(path: path, reason: String(cString: strerror(errno))) }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw EventFileError(path: path, reason: "is a directory")
        }
        return fd
    }

    public static func readAll(path: String) throws(EventFileError) -> [UInt8] {
        let fd = try open(path)
        defer { if fd != STDIN_FILENO { close(fd) } }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw EventFileError(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// Calls `body` with each non-blank line (without its `\n` or `\r\n`) and its 1-based number.
    public static func forEachLine(path: String, _ body: (Int, UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        try forEachLineBatch(path: path) { batch in
            for (number, line) in batch { try body(number, line) }
        }
    }

    /// Calls `body` with the complete non-blank lines of each chunk read (about 1 MiB), so a
    /// caller can work on a batch in parallel; the buffers are valid only during the call.
    public static func forEachLineBatch(path: String, _ body: ([(Int, UnsafeBufferPointer<UInt8>)]) throws -> Void) throws {
        let fd = try open(path)
        defer { if fd != STDIN_FILENO { close(fd) } }
        let capacity = 1 << 20
        var buffer = [UInt8](repeating: 0, count: capacity)
        var filled = 0
        var lineNumber = 0
        var eof = false
        var batch: [(Int, UnsafeBufferPointer<UInt8>)] = []
        while !eof {
            if filled == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
            let n = buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { read(fd, $0 + filled, raw.count - filled) } ?? 0
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw EventFileError(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { eof = true } else { filled += n }
            var consumed = 0
            try buffer.withUnsafeBufferPointer { all in
                batch.removeAll(keepingCapacity: true)
                while consumed < filled {
                    let rest = UnsafeBufferPointer(rebasing: all[consumed..<filled])
                    let newline = rest.firstIndex(of: 0x0A)
                    guard newline != nil || eof else { break }
                    let end = newline.map { consumed + ($0 - rest.startIndex) } ?? filled
                    lineNumber += 1
                    var lineEnd = end
                    if lineEnd > consumed, all[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                    let line = UnsafeBufferPointer(rebasing: all[consumed..<lineEnd])
                    if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { batch.append((lineNumber, line)) }
                    consumed = newline == nil ? filled : end + 1
                }
                if !batch.isEmpty { try body(batch) }
            }
            if consumed > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    if let base = raw.baseAddress { memmove(base, base + consumed, filled - consumed) }
                }
                filled -= consumed
            }
        }
    }
}
