import Foundation
import GRDB
import GRDBSQLite

/// A prepared statement driven through the SQLite C API, for the per-event insert path: at a
/// million events, GRDB's argument arrays and cursors cost more than the inserts themselves.
/// Text is bound without a copy, so a bound buffer must stay valid until `step` returns.
final class RawStatement {
    private var handle: OpaquePointer?
    private let connection: OpaquePointer
    let sql: String

    init(_ db: Database, _ sql: String) throws {
        guard let connection = db.sqliteConnection else { throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the database is closed", sql: sql) }
        self.connection = connection
        self.sql = sql
        let code = sqlite3_prepare_v2(connection, sql, -1, &handle, nil)
        guard code == SQLITE_OK, handle != nil else { throw failure(code) }
    }

    deinit { finalize() }

    /// Releases the statement (also done on deinit); it must not be used afterwards.
    func finalize() {
        sqlite3_finalize(handle)
        handle = nil
    }

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(handle, index, value) }
    /// UTF-8 text, bound in place (SQLITE_STATIC): valid until the next `step` returns.
    func bind(_ index: Int32, text: UnsafeBufferPointer<UInt8>) {
        // An empty buffer may have no base address; SQLite wants a pointer for text.
        let empty: StaticString = ""
        let base = text.baseAddress ?? empty.utf8Start
        _ = base.withMemoryRebound(to: CChar.self, capacity: max(1, text.count)) { sqlite3_bind_text(handle, index, $0, Int32(text.count), nil) }
    }

    /// Steps once: true with a row to read, false when done.
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code: throw failure(code)
        }
    }

    /// Resets for the next run and unbinds, so no pointer outlives its buffer.
    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Whether column `index` of the current row holds exactly `bytes`.
    func column(_ index: Int32, equals bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let text = sqlite3_column_text(handle, index) else { return bytes.isEmpty }
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count == bytes.count, let base = bytes.baseAddress else { return count == bytes.count }
        return memcmp(text, base, count) == 0
    }

    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(connection) }

    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
    }
}
