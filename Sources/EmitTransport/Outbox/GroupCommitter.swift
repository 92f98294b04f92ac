import Dispatch
import Foundation

/// Adds the events of concurrent callers (the receiver's requests) to one database, committing
/// whatever has queued up while the previous commit ran in one transaction: one fsync serves
/// many requests (group commit), and the blocking write runs on a dispatch queue of its own,
/// never on a Swift concurrency thread. Each caller resumes only after its events are durable.
final class GroupCommitter: @unchecked Sendable {
    /// One caller's events: validated JSON lines, by their ranges in `bytes`.
    struct Batch: Sendable {
        let bytes: [UInt8]
        let rows: [(id: String, range: Range<Int>)]

        init(bytes: [UInt8], rows: [(id: String, range: Range<Int>)]) {
            self.bytes = bytes
            self.rows = rows
        }
    }

    private struct Submission {
        let batch: Batch
        let done: (Result<Int, Error>) -> Void
    }

    let database: EventDatabase
    let state: EventDatabase.State
    private let queue = DispatchQueue(label: "emit-group-commit")
    private let lock = NSLock()
    // Guarded by `lock`.
    private var waiting: [Submission] = []
    private var draining = false

    init(database: EventDatabase, state: EventDatabase.State) {
        self.database = database
        self.state = state
    }

    /// Stores the batch's events (each at most once) and returns how many were new.
    func add(_ batch: Batch) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let submission = Submission(batch: batch) { continuation.resume(with: $0) }
            lock.lock()
            waiting.append(submission)
            let startDrain = !draining
            draining = true
            lock.unlock()
            if startDrain { queue.async { self.drain() } }
        }
    }

    private func drain() {
        while true {
            lock.lock()
            let taken = waiting
            waiting = []
            if taken.isEmpty { draining = false }
            lock.unlock()
            if taken.isEmpty { return }
            commit(taken)
        }
    }

    /// One transaction for every waiting batch: all of them are durable, or all get the error.
    private func commit(_ submissions: [Submission]) {
        var added: [Int] = []
        do {
            _ = try database.addInOneTransaction(state: state) { inserter in
                added = []
                for submission in submissions {
                    let before = inserter.added
                    try submission.batch.bytes.withUnsafeBufferPointer { bytes in
                        for row in submission.batch.rows {
                            try inserter.insert(id: row.id, body: UnsafeBufferPointer(rebasing: bytes[row.range]))
                        }
                    }
                    added.append(inserter.added - before)
                }
            }
        } catch {
            for submission in submissions { submission.done(.failure(error)) }
            return
        }
        for (submission, count) in zip(submissions, added) { submission.done(.success(count)) }
    }
}
