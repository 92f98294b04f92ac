import EmitContract
import Foundation
import GRDB

/// A SQLite file of events keyed by `event_id`, in WAL mode with `synchronous=FULL`: a commit
/// is on disk before it returns. The outbox and the receiver's store are both one of these.
///
/// Several processes may write at once (two `emit run` on one node): SQLite serializes writers,
/// and a busy timeout makes a writer wait for the lock instead of failing "database is locked".
public final class EventDatabase: Sendable {
    public enum State: Int, Sendable, CaseIterable {
        case pending = 0
        case delivered = 1
        case rejected = 2
    }

    public let path: String
    let pool: DatabasePool

    public struct OpenError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot open \(path): \(reason)" }
    }

    public init(path: String) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        do {
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        } catch {
            throw OpenError(path: path, reason: "cannot create \(folder): \(error.localizedDescription)")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        // A 32 MiB page cache keeps the event_id index (random keys) in memory for large stores.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -32768") }
        configuration.label = "emit-events"
        // Opening switches the file to WAL, which needs a moment of exclusive access: another
        // process in the middle of a large transaction makes it busy, so opening waits and retries.
        let deadline = Date().addingTimeInterval(60)
        while true {
            do {
                pool = try Self.open(path: path, configuration: configuration)
                break
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
            } catch {
                throw OpenError(path: path, reason: "\(error)")
            }
        }
    }

    private static func open(path: String, configuration: Configuration) throws -> DatabasePool {
        let pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB's WAL set-up resets `synchronous` after prepareDatabase, so set it here, on the
        // writer, after the pool is open.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try migrator.migrate(pool)
        return pool
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL UNIQUE,
                    body TEXT NOT NULL,
                    state INTEGER NOT NULL DEFAULT 0,
                    codes TEXT,
                    added_at REAL NOT NULL,
                    updated_at REAL
                );
                CREATE INDEX events_state ON events(state, seq);
                """)
        }
        return migrator
    }

    /// The `synchronous` level in force on the writer (2 = FULL).
    public func synchronousLevel() throws -> Int {
        try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Adds events in one transaction, each at most once. Returns how many were new.
    @discardableResult
    public func add(_ events: [EnergyEvent], state: State = .pending) throws -> Int {
        try add(lines: events.map { ($0.eventID, $0.jsonLine) }, state: state)
    }

    /// Adds already-validated (event id, JSON line) pairs in one transaction.
    @discardableResult
    public func add(lines: [(String, String)], state: State = .pending) throws -> Int {
        guard !lines.isEmpty else { return 0 }
        return try addInOneTransaction(state: state) { inserter in
            for (id, body) in lines { try inserter.insert(id: id, body: body) }
        }.added
    }

    /// Inserts inside one transaction: everything `body` inserts commits together or not at all.
    public final class Inserter {
        let statement: Statement
        let db: Database
        let now: Double
        let state: State
        public private(set) var added = 0
        public private(set) var offered = 0

        init(db: Database, state: State) throws {
            self.db = db
            self.state = state
            statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO events(event_id, body, state, added_at) VALUES (?, ?, ?, ?)")
            now = Date().timeIntervalSince1970
        }

        public func insert(id: String, body: String) throws {
            try statement.execute(arguments: [id, body, state.rawValue, now])
            added += db.changesCount
            offered += 1
        }
    }

    /// Streams inserts into one transaction (a file of any size, all or nothing).
    @discardableResult
    public func addInOneTransaction(state: State = .pending, _ body: (Inserter) throws -> Void) throws -> (added: Int, offered: Int) {
        try pool.write { db in
            let inserter = try Inserter(db: db, state: state)
            try body(inserter)
            return (inserter.added, inserter.offered)
        }
    }

    public struct Counts: Sendable, Equatable {
        public var pending = 0
        public var delivered = 0
        public var rejected = 0
        public var oldestPendingAddedAt: Date?
    }

    public func counts() throws -> Counts {
        try pool.read { db in
            var counts = Counts()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM events GROUP BY state") {
                switch State(rawValue: row["state"]) {
                case .pending?: counts.pending = row["n"]
                case .delivered?: counts.delivered = row["n"]
                case .rejected?: counts.rejected = row["n"]
                case nil: break
                }
            }
            if let oldest = try Double.fetchOne(db, sql: "SELECT MIN(added_at) FROM events WHERE state = 0") {
                counts.oldestPendingAddedAt = Date(timeIntervalSince1970: oldest)
            }
            return counts
        }
    }

    public struct Stored: Sendable {
        public let seq: Int64
        public let eventID: String
        public let body: String
    }

    /// Pending events in insertion order, after `seq`.
    public func pending(limit: Int, after seq: Int64 = 0) throws -> [Stored] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, event_id, body FROM events WHERE state = 0 AND seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit])
                .map { Stored(seq: $0["seq"], eventID: $0["event_id"], body: $0["body"]) }
        }
    }

    /// Marks a delivered batch by its sequence numbers: every pending event in `seqs` delivered
    /// except the rejected ones. Integer keys make this cheap for large batches.
    public func markDelivered(seqs: ClosedRange<Int64>, rejected: [(seq: Int64, codes: [String])]) throws {
        let now = Date().timeIntervalSince1970
        try pool.write { db in
            let refused = try db.cachedStatement(sql: "UPDATE events SET state = 2, codes = ?, updated_at = ? WHERE seq = ? AND state = 0")
            for (seq, codes) in rejected { try refused.execute(arguments: [codes.joined(separator: ","), now, seq]) }
            try db.execute(sql: "UPDATE events SET state = 1, updated_at = ? WHERE seq BETWEEN ? AND ? AND state = 0",
                           arguments: [now, seqs.lowerBound, seqs.upperBound])
        }
    }

    /// Every event (or only pending ones) in insertion order, streamed in pages.
    public func forEach(state: State? = nil, pageSize: Int = 10_000, _ body: (Stored) throws -> Void) throws {
        var after: Int64 = 0
        while true {
            let page = try pool.read { db -> [Stored] in
                let sql = state == nil
                    ? "SELECT seq, event_id, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
                    : "SELECT seq, event_id, body FROM events WHERE seq > ? AND state = \(state?.rawValue ?? 0) ORDER BY seq LIMIT ?"
                return try Row.fetchAll(db, sql: sql, arguments: [after, pageSize])
                    .map { Stored(seq: $0["seq"], eventID: $0["event_id"], body: $0["body"]) }
            }
            for stored in page { try body(stored) }
            guard let last = page.last, page.count == pageSize else { return }
            after = last.seq
        }
    }

    /// A page of all stored events in insertion order.
    public func page(after seq: Int64, limit: Int) throws -> [Stored] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, event_id, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit])
                .map { Stored(seq: $0["seq"], eventID: $0["event_id"], body: $0["body"]) }
        }
    }

    public func count() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0 }
    }
}

/// Where emit keeps its state: `EMIT_HOME`, else `$XDG_STATE_HOME/emit`, else `~/.local/state/emit`.
public enum EmitHome {
    public static func path(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["EMIT_HOME"], !home.isEmpty { return home }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return (state as NSString).appendingPathComponent("emit") }
        let user = environment["HOME"] ?? NSHomeDirectory()
        return (user as NSString).appendingPathComponent(".local/state/emit")
    }

    public static var outboxPath: String { (path() as NSString).appendingPathComponent("outbox.sqlite") }
}
