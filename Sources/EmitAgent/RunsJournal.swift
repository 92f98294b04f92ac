import EmitContract
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The open runs on disk as an append-only journal (JSON Lines): a run's begin, a device found
/// shared, an end. A batch of records is appended and fsynced once however many requests it
/// answers, and costs what the batch holds, not what is open (a thousand open runs do not make
/// a begin slower). At start, and every `compactAfter` records, the journal is rewritten with
/// the open runs only.
final class RunsJournal {
    struct Record: Codable, Equatable {
        var begin: AgentRun?
        var end: String?
        var shared: Shared?

        struct Shared: Codable, Equatable {
            var runID: String
            var device: String
            var runs: Int
        }
    }

    let path: String
    private let folder: String
    private var descriptor: Int32 = -1
    private var appended = 0
    static let compactAfter = 10_000

    init(path: String, folder: String) {
        self.path = path
        self.folder = folder
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The open runs the journal describes. A last line cut short (a write that was never
    /// acknowledged) is ignored; any other bad line makes the file unusable, said with its line.
    static func replay(_ path: String) throws -> [String: AgentRun] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        var runs: [String: AgentRun] = [:]
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let decoder = JSONDecoder()
        for (index, line) in lines.enumerated() where !line.isEmpty {
            let record: Record
            do { record = try decoder.decode(Record.self, from: Data(line)) } catch {
                if index == lines.count - 1 { break }  // cut short by a crash mid-write: never acknowledged
                throw AgentError(status: 500, code: "state", message: "\(path):\(index + 1): not a journal record (\(error)); move the file aside to start afresh")
            }
            if let run = record.begin { runs[run.runID] = run }
            if let shared = record.shared { runs[shared.runID]?.sharedBy[shared.device] = shared.runs }
            if let id = record.end { runs.removeValue(forKey: id) }
        }
        return runs
    }

    /// Rewrites the journal with `runs` only (atomically, durably) and appends from there.
    func compact(_ runs: [AgentRun]) throws {
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot write \(temporary)") }
        let bytes = try Self.encode(runs.map { Record(begin: $0) })
        guard Self.write(fd, bytes), fsync(fd) == 0 else { close(fd); throw failure("cannot write \(temporary)") }
        close(fd)
        guard rename(temporary, path) == 0 else { throw failure("cannot replace \(path)") }
        syncFolder()
        if descriptor >= 0 { close(descriptor) }
        descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("cannot open \(path)") }
        appended = 0
    }

    /// Appends the records and makes them durable.
    func append(_ records: [Record]) throws {
        guard !records.isEmpty else { return }
        if descriptor < 0 {
            descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw failure("cannot open \(path)") }
            syncFolder()
        }
        guard Self.write(descriptor, try Self.encode(records)), fsync(descriptor) == 0 else { throw failure("cannot append to \(path)") }
        appended += records.count
    }

    var needsCompaction: Bool { appended >= Self.compactAfter }

    private static func encode(_ records: [Record]) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for record in records {
            var line = JSONFragment()
            try record.writeJSON(into: &line)
            bytes += line.bytes
            bytes.append(UInt8(ascii: "\n"))
        }
        return bytes
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return false }
            written += n
        }
        return true
    }

    private func syncFolder() {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    private func failure(_ what: String) -> AgentError {
        AgentError(status: 500, code: "state", message: "\(what): \(String(cString: strerror(errno)))")
    }
}

// The journal's records as their Codable conformances write them (tested against JSONEncoder's
// members), without Codable's cost on every begin and end.
extension RunsJournal.Record: JSONFragmentWriting {
    func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        if let begin { try out.member("begin", begin) }
        out.member("end", end)
        if let shared { try out.member("shared", shared) }
        out.endObject()
    }
}

extension RunsJournal.Record.Shared: JSONFragmentWriting {
    func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        out.member("runID", runID)
        out.member("device", device)
        out.member("runs", runs)
        out.endObject()
    }
}

extension AgentRun: JSONFragmentWriting {
    public func writeJSON(into out: inout JSONFragment) throws {
        out.beginObject()
        out.member("runID", runID)
        out.member("uid", UInt64(uid))
        out.member("scope", scope)
        out.member("labels", labels)
        try out.member("begin", begin)
        out.member("sharedBy", sharedBy)
        out.member("notes", notes)
        out.endObject()
    }
}
