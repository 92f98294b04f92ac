import ArgumentParser
import EmitContract
import Foundation
import EmitTransport
#if canImport(Glibc)
import Glibc
#endif

/// `--out`: where emitted events go (CLI.md): `-` stdout, FILE appended (created if missing).
struct OutputOptions: ParsableArguments {
    @Option(name: .customLong("out"), help: ArgumentHelp(
        "Write events as JSON Lines to FILE (appended, created if missing) or - for stdout. Without --out, events go to the local outbox.",
        valueName: "FILE|-"))
    var destination: String?

    /// Checks, before any work, that events can be written where they are to go: the outbox
    /// opens, or the file is not a folder and its folder exists and is writable.
    func checkWritable() throws {
        guard let destination else {
            let path = EmitHome.outboxPath
            do { _ = try EventDatabase(path: path) } catch {
                throw CommandFailure.usage("the outbox \(path) cannot be opened (\(error)); fix it, set EMIT_HOME, or give --out FILE|-")
            }
            return
        }
        guard destination != "-" else { return }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: destination, isDirectory: &isFolder) {
            if isFolder.boolValue { throw CommandFailure.usage("--out \(destination) is a directory; name a file in it") }
            guard access(destination, W_OK) == 0 else { throw CommandFailure.usage("--out \(destination) is not writable: \(String(cString: strerror(errno)))") }
            return
        }
        let folder = (destination as NSString).deletingLastPathComponent
        let parent = folder.isEmpty ? "." : folder
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isFolder), isFolder.boolValue else {
            throw CommandFailure.usage("--out \(destination): the folder \(parent) does not exist")
        }
        guard access(parent, W_OK) == 0 else { throw CommandFailure.usage("--out \(destination): cannot create files in \(parent): \(String(cString: strerror(errno)))") }
    }

    /// Writes all events durably, or fails loudly with every event printed on stderr as JSON
    /// Lines so that nothing vanishes.
    func write(_ events: [EnergyEvent]) throws {
        var lines = EventLines()
        for event in events { lines.append(id: event.eventID, line: event.jsonLine.utf8) }
        try write(lines)
    }

    /// Writes already-built event lines (the facility importer's fast path) the same way.
    func write(_ lines: EventLines) throws {
        guard let destination else {
            let path = EmitHome.outboxPath
            do {
                try EventDatabase(path: path).add(lines: lines.pairs)
            } catch {
                Console.error(String(decoding: lines.bytes.dropLast(), as: UTF8.self))
                throw CommandFailure.usage("could not store \(lines.count) event(s) in the outbox \(path) (\(StorageFailure.describe(error, at: path))); they are printed above as JSON Lines so nothing is lost")
            }
            return
        }
        if destination == "-" {
            Console.out(String(decoding: lines.bytes.dropLast(), as: UTF8.self))
            Console.flush()
            return
        }
        let fd = open(destination, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CommandFailure.usage("cannot open \(destination) for appending: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = lines.bytes
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                Console.error(String(decoding: lines.bytes.dropLast(), as: UTF8.self))
                throw CommandFailure.usage("writing \(destination) failed (\(reason)); the events are printed above so nothing is lost")
            }
            written += n
        }
        // A regular file is durable before the command reports it written; a pipe, FIFO or
        // device (/dev/null) has nothing to sync and answers EINVAL.
        guard fsync(fd) == 0 || ((errno == EINVAL || errno == EROFS) && !isRegularFile(fd)) else {
            throw CommandFailure.usage("fsync of \(destination) failed: \(String(cString: strerror(errno)))")
        }
    }

    private func isRegularFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}

/// Event lines ready to write: the JSON Lines bytes (each line ends in a newline) and each
/// line's event id and end.
struct EventLines {
    private(set) var bytes: [UInt8] = []
    private(set) var ids: [String] = []
    private var ends: [Int] = []

    var count: Int { ids.count }

    mutating func append(id: String, line: some Collection<UInt8>) {
        bytes.append(contentsOf: line)
        finishLine(id: id)
    }

    /// Appends through `write`, which adds one line's bytes and returns its id.
    mutating func append<Failure: Error>(_ write: (inout [UInt8]) throws(Failure) -> String) throws(Failure) {
        finishLine(id: try write(&bytes))
    }

    private mutating func finishLine(id: String) {
        bytes.append(UInt8(ascii: "\n"))
        ids.append(id)
        ends.append(bytes.count - 1)
    }

    mutating func append(contentsOf other: EventLines) {
        let offset = bytes.count
        bytes += other.bytes
        ids += other.ids
        ends += other.ends.map { $0 + offset }
    }

    /// (event id, line) for the outbox.
    var pairs: [(String, String)] {
        var start = 0
        return zip(ids, ends).map { id, end in
            defer { start = end + 1 }
            return (id, String(decoding: bytes[start..<end], as: UTF8.self))
        }
    }
}
