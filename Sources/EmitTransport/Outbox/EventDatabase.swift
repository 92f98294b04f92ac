import EmitContract
import Foundation
import GRDB

/// A SQLite file of events keyed by `event_id`, in WAL mode with `synchronous=FULL`: a commit
/// is on disk before it returns. The outbox and the receiver's store are both one of these.
///
/// Several processes may write at once (two `emit run` on one node): SQLite serializes writers,
/// and a busy timeout makes a writer wait for the lock instead of failing "database is locked".
///
/// The layout keeps the write per event close to the event's own bytes. Event ids are SHA-256
/// digests, so an index over them takes every insert at a random place; with a full 64-character
/// key the index outgrows the page cache and each commit rewrites thousands of its pages (a
/// million events wrote 9 GB through the WAL for 0.7 GB of JSON). The index therefore holds only
/// the id's first 64 bits as an integer (`id_key`), and uniqueness is enforced by comparing full
/// ids among the rows that share a key, inside the writing transaction. Delivery state lives in
/// narrow tables (`pending`, `rejected`) so marking a batch delivered deletes a range of integers
/// instead of rewriting every event row.
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

    /// Opens (or creates) the outbox at `path`. `pageCacheKiB` bounds SQLite's page cache per
    /// connection: 32 MiB holds the id index of several million events for bulk adds and
    /// flushes; a long-running process that adds a run's events now and then needs far less.
    public init(path: String, pageCacheKiB: Int = 32 << 10) throws {
        self.path = path
        let folder = (path as NSString).deletingLastPathComponent
        if let problem = Self.createFolders(folder) { throw OpenError(path: path, reason: problem) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            // 16 KiB pages for a new file (an existing one keeps its own): events are about 700
            // bytes, and bigger pages mean fewer page splits, WAL frames and cache lookups per
            // event (Benchmarks/transport/sqlite_layouts.py: 155k inserts/s against 120k/s at 4 KiB).
            try db.execute(sql: "PRAGMA page_size = 16384")
            try db.execute(sql: "PRAGMA cache_size = -\(max(64, pageCacheKiB))")
            // Checkpoint every 64 MiB of WAL instead of every 4 MiB: pages rewritten by several
            // commits in between reach the database file once. Every commit is still fsynced.
            let pageSize = max(512, try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \((64 << 20) / pageSize)")
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
            db.add(function: EventDatabase.idKeyFunction)
        }
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
                throw OpenError(path: path, reason: StorageFailure.describe(error, at: path))
            }
        }
    }

    /// Creates `folder` and those above it that are missing; the problem in words, or nil.
    static func createFolders(_ folder: String) -> String? {
        guard !folder.isEmpty else { return nil }
        var partial = folder.hasPrefix("/") ? "" : "."
        for component in folder.split(separator: "/") {
            partial += "/\(component)"
            var info = stat()
            if stat(partial, &info) == 0 {
                if info.st_mode & S_IFMT != S_IFDIR { return "\(partial) is a file, not a folder" }
                continue
            }
            if mkdir(partial, 0o755) != 0, errno != EEXIST {
                return "cannot create the folder \(partial): \(String(cString: strerror(errno)))"
            }
        }
        return nil
    }

    private static func open(path: String, configuration: Configuration) throws -> DatabasePool {
        let pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB's WAL set-up resets `synchronous` after prepareDatabase, so set it here, on the
        // writer, after the pool is open.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try migrate(pool)
        return pool
    }

    /// The index key of an event id: its first 16 hex digits as a 64-bit integer (any other
    /// text is hashed). Equal ids give equal keys; rows sharing a key are told apart by the id.
    static func idKey<Bytes: Sequence<UInt8>>(_ id: Bytes) -> Int64 {
        var value: UInt64 = 0
        var digits = 0
        for byte in id {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte &- UInt8(ascii: "a") &+ 10
            default: return Int64(bitPattern: fnv1a(id))
            }
            value = value << 4 | UInt64(digit)
            digits += 1
            if digits == 16 { return Int64(bitPattern: value) }
        }
        return Int64(bitPattern: fnv1a(id))
    }

    private static func fnv1a<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        bytes.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// `emit_id_key(event_id)`, for migrations written in SQL.
    static let idKeyFunction = DatabaseFunction("emit_id_key", argumentCount: 1, pure: true) { values in
        guard let id = String.fromDatabaseValue(values[0]) else { return nil }
        return idKey(id.utf8)
    }

    /// Schema versions, in order. v2: the compact id_key index and narrow delivery-state tables
    /// (see the type's comment); sequence numbers are kept, so a flush interrupted across the
    /// upgrade resumes in order.
    static let migrations: [(id: String, sql: String)] = [
        ("v1", """
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
            """),
        ("v2", """
            CREATE TABLE events_v2 (
                seq INTEGER PRIMARY KEY,
                id_key INTEGER NOT NULL,
                event_id TEXT NOT NULL,
                body TEXT NOT NULL,
                added_at REAL NOT NULL
            );
            INSERT INTO events_v2(seq, id_key, event_id, body, added_at)
                SELECT seq, emit_id_key(event_id), event_id, body, added_at FROM events ORDER BY seq;
            CREATE TABLE pending (seq INTEGER PRIMARY KEY);
            INSERT INTO pending(seq) SELECT seq FROM events WHERE state = 0 ORDER BY seq;
            CREATE TABLE rejected (seq INTEGER PRIMARY KEY, codes TEXT NOT NULL, rejected_at REAL NOT NULL);
            INSERT INTO rejected(seq, codes, rejected_at)
                SELECT seq, coalesce(codes, ''), coalesce(updated_at, added_at) FROM events WHERE state = 2 ORDER BY seq;
            DROP TABLE events;
            ALTER TABLE events_v2 RENAME TO events;
            CREATE INDEX events_id_key ON events(id_key);
            """),
    ]

    /// Applies the missing versions up to `last` in one IMMEDIATE transaction, so two processes
    /// opening one file at once cannot both apply a version (GRDB's migrator reads the applied
    /// list outside its transactions). The list lives in GRDB's `grdb_migrations` table, which
    /// files from earlier builds already have. A file already up to date is checked with a read
    /// alone, so opening never waits for another process's long write.
    static func migrate(_ writer: some DatabaseWriter, upTo last: String? = nil) throws {
        let wanted = last.flatMap { id in migrations.firstIndex { $0.id == id } }.map { Array(migrations[...$0]) } ?? migrations
        let applied = { (db: Database) throws -> Set<String> in
            guard try db.tableExists("grdb_migrations") else { return [] }
            return Set(try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        }
        if try writer.read({ db in try wanted.allSatisfy { try applied(db).contains($0.id) } }) { return }
        try writer.writeWithoutTransaction { db in
            try db.inTransaction(.immediate) {
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
                let done = try applied(db)
                for migration in wanted where !done.contains(migration.id) {
                    try db.execute(sql: migration.sql)
                    try db.execute(sql: "INSERT INTO grdb_migrations(identifier) VALUES (?)", arguments: [migration.id])
                }
                return .commit
            }
        }
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
        private let findByKey: RawStatement
        private let insertEvent: RawStatement
        private let markPending: RawStatement?
        private let now = Date().timeIntervalSince1970
        public private(set) var added = 0
        public private(set) var offered = 0

        init(db: Database, state: State) throws {
            precondition(state != .rejected, "events are added pending or delivered")
            findByKey = try RawStatement(db, "SELECT event_id FROM events WHERE id_key = ?")
            insertEvent = try RawStatement(db, "INSERT INTO events(id_key, event_id, body, added_at) VALUES (?, ?, ?, ?)")
            markPending = state == .pending ? try RawStatement(db, "INSERT INTO pending(seq) VALUES (?)") : nil
        }

        func finish() {
            findByKey.finalize()
            insertEvent.finalize()
            markPending?.finalize()
        }

        public func insert(id: String, body: String) throws {
            var body = body
            try body.withUTF8 { body in try insert(id: id, body: body) }
        }

        /// Stores `body` (a validated event's JSON text) under `id` unless an event with that id
        /// is stored already.
        public func insert(id: String, body: UnsafeBufferPointer<UInt8>) throws {
            var id = id
            try id.withUTF8 { id in try insert(id: id, body: body) }
        }

        private func insert(id: UnsafeBufferPointer<UInt8>, body: UnsafeBufferPointer<UInt8>) throws {
            offered += 1
            let key = EventDatabase.idKey(id)
            // Rows sharing the key (almost always none) decide whether the event is stored already;
            // this runs inside the write transaction, so no other writer can slip in between.
            findByKey.bind(1, key)
            defer { findByKey.reset() }
            while try findByKey.step() {
                if findByKey.column(0, equals: id) { return }
            }
            insertEvent.bind(1, key)
            insertEvent.bind(2, text: id)
            insertEvent.bind(3, text: body)
            insertEvent.bind(4, now)
            defer { insertEvent.reset() }
            _ = try insertEvent.step()
            if let markPending {
                markPending.bind(1, insertEvent.lastInsertedRowID)
                defer { markPending.reset() }
                _ = try markPending.step()
            }
            added += 1
        }
    }

    /// Streams inserts into one transaction (a file of any size, all or nothing).
    @discardableResult
    public func addInOneTransaction(state: State = .pending, _ body: (Inserter) throws -> Void) throws -> (added: Int, offered: Int) {
        try pool.write { db in
            let inserter = try Inserter(db: db, state: state)
            defer { inserter.finish() }
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
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM events") ?? 0
            counts.pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending") ?? 0
            counts.rejected = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rejected") ?? 0
            counts.delivered = total - counts.pending - counts.rejected
            // Sequence numbers follow commit order, so the first pending event is the oldest.
            if let oldest = try Double.fetchOne(db, sql: "SELECT e.added_at FROM pending p JOIN events e ON e.seq = p.seq ORDER BY p.seq LIMIT 1") {
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
        try pool.read { db in try Self.fetch(db, state: .pending, after: seq, limit: limit) }
    }

    /// Marks a delivered batch by its sequence numbers: every pending event in `seqs` delivered
    /// except the rejected ones. Events no longer pending are left as they are.
    public func markDelivered(seqs: ClosedRange<Int64>, rejected: [(seq: Int64, codes: [String])]) throws {
        let now = Date().timeIntervalSince1970
        try pool.write { db in
            let refuse = try db.cachedStatement(sql: "INSERT OR IGNORE INTO rejected(seq, codes, rejected_at) SELECT seq, ?, ? FROM pending WHERE seq = ?")
            for (seq, codes) in rejected { try refuse.execute(arguments: [codes.joined(separator: ","), now, seq]) }
            try db.execute(sql: "DELETE FROM pending WHERE seq BETWEEN ? AND ?", arguments: [seqs.lowerBound, seqs.upperBound])
        }
    }

    /// Why each rejected event was refused: the receiver's codes (or a collector's words), by event id.
    public func rejectionCodes() throws -> [String: String] {
        try pool.read { db in
            var codes: [String: String] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT e.event_id, r.codes FROM rejected r JOIN events e ON e.seq = r.seq")
            while let row = try rows.next() { codes[row[0]] = row[1] }
            return codes
        }
    }

    /// Every event (or those in one state) in insertion order, streamed in pages.
    public func forEach(state: State? = nil, pageSize: Int = 10_000, _ body: (Stored) throws -> Void) throws {
        var after: Int64 = 0
        while true {
            let page = try pool.read { db in try Self.fetch(db, state: state, after: after, limit: pageSize) }
            for stored in page { try body(stored) }
            guard let last = page.last, page.count == pageSize else { return }
            after = last.seq
        }
    }

    /// A page of all stored events in insertion order.
    public func page(after seq: Int64, limit: Int) throws -> [Stored] {
        try pool.read { db in try Self.fetch(db, state: nil, after: seq, limit: limit) }
    }

    private static func fetch(_ db: Database, state: State?, after seq: Int64, limit: Int) throws -> [Stored] {
        let sql = switch state {
        case nil: "SELECT seq, event_id, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
        case .pending?: "SELECT e.seq, e.event_id, e.body FROM pending p JOIN events e ON e.seq = p.seq WHERE p.seq > ? ORDER BY p.seq LIMIT ?"
        case .rejected?: "SELECT e.seq, e.event_id, e.body FROM rejected r JOIN events e ON e.seq = r.seq WHERE r.seq > ? ORDER BY r.seq LIMIT ?"
        case .delivered?: """
            SELECT seq, event_id, body FROM events WHERE seq > ?
                AND seq NOT IN (SELECT seq FROM pending) AND seq NOT IN (SELECT seq FROM rejected) ORDER BY seq LIMIT ?
            """
        }
        var page: [Stored] = []
        page.reserveCapacity(min(limit, 10_000))
        let rows = try Row.fetchCursor(db, sql: sql, arguments: [seq, limit])
        while let row = try rows.next() {
            page.append(Stored(seq: row[0], eventID: row[1], body: row[2]))
        }
        return page
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
