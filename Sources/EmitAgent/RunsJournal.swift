import EmitContract
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The open runs on disk as an append-only journal (JSON Lines): a run's begin, an end. Which
/// runs shared a device follows from the order of begins and ends, so replay works it out
/// rather than a begin writing a record for every run it shares with (a begin's cost would grow
/// with the runs open). A batch of records is appended in one write however many requests it
/// answers, and costs what the batch holds, not what is open (a thousand open runs do not make
/// a begin slower). A write outlives the process at once (the page cache holds it through
/// `kill -9`); `sync()` makes it outlive a power loss, and the agent calls it every interval.
/// At start, and every `compactAfter` records, the journal is rewritten with the open runs only.
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
    /// Whether records were appended since the last fsync.
    private var unsynced = false
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
        var openOnDevice: [String: Int] = [:]
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let decoder = JSONDecoder()
        for (index, line) in lines.enumerated() where !line.isEmpty {
            let record: Record
            do { record = try decoder.decode(Record.self, from: Data(line)) } catch {
                if index == lines.count - 1 { break }  // cut short by a crash mid-write: never acknowledged
                throw AgentError(status: 500, code: "state", message: "\(path):\(index + 1): not a journal record (\(error)); move the file aside to start afresh")
            }
            if let run = record.begin { begin(run, in: &runs, openOnDevice: &openOnDevice) }
            // Written by versions before shares were worked out on replay.
            if let shared = record.shared { runs[shared.runID]?.sharedBy[shared.device] = shared.runs }
            if let id = record.end { end(id, in: &runs, openOnDevice: &openOnDevice) }
        }
        return runs
    }

    /// A begin as the agent applied it: the run counts on its devices, and every run open on
    /// one of them has shared it with at least as many. A begin of a run already open (a run
    /// that goes on in a new window, or the journal's rewrite) replaces it without counting it
    /// twice. Shares only grow: a count written in the record stands.
    static func begin(_ run: AgentRun, in runs: inout [String: AgentRun], openOnDevice: inout [String: Int]) {
        var run = run
        let reopened = runs[run.runID] != nil
        for key in run.scope {
            if !reopened { openOnDevice[key, default: 0] += 1 }
            let open = openOnDevice[key] ?? 1
            run.sharedBy[key] = max(run.sharedBy[key] ?? 1, open)
            for (id, other) in runs where id != run.runID && other.scope.contains(key) && (other.sharedBy[key] ?? 1) < open {
                runs[id]?.sharedBy[key] = open
            }
        }
        runs[run.runID] = run
    }

    /// An end as the agent applied it: the run no longer counts on its devices.
    static func end(_ runID: String, in runs: inout [String: AgentRun], openOnDevice: inout [String: Int]) {
        guard let run = runs.removeValue(forKey: runID) else { return }
        for key in run.scope { openOnDevice[key] = max(0, (openOnDevice[key] ?? 1) - 1) }
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
        unsynced = false
    }

    /// Appends the records: read back by the next start of the agent, but lost to a power loss
    /// until `sync()`.
    func append(_ records: [Record]) throws {
        guard !records.isEmpty else { return }
        if descriptor < 0 {
            descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw failure("cannot open \(path)") }
            syncFolder()
        }
        guard Self.write(descriptor, try Self.encode(records)) else { throw failure("cannot append to \(path)") }
        appended += records.count
        unsynced = true
    }

    /// Makes what was appended outlive a power loss: one fsync, or none when nothing is new.
    /// `locked` runs its body under the journal's lock; the fsync runs outside it, on a duplicate
    /// of the descriptor, so appends (and the requests waiting on them) go on meanwhile.
    func sync(locked: (() -> Int32?) -> Int32?) throws {
        let fd = locked {
            guard unsynced, descriptor >= 0 else { return nil }
            let copy = dup(descriptor)
            if copy >= 0 { unsynced = false }
            return copy
        }
        guard let fd else { return }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            let error = failure("cannot fsync \(path)")
            _ = locked { unsynced = true; return nil }
            throw error
        }
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
