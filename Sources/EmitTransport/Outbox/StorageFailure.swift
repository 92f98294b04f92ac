import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// A failure of an event database in one sentence: what went wrong, in words, and what to do.
/// GRDB's own text names SQLite's result code and the statement it was running (`SQLite error
/// 26: file is not a database - while executing PRAGMA cache_size`), which tells a user nothing.
public enum StorageFailure {
    /// An error whose text is `describe`'s sentence, for answers that carry an error's text.
    public struct Described: Error, CustomStringConvertible {
        public let description: String
        public init(_ error: any Error, at path: String? = nil) { description = StorageFailure.describe(error, at: path) }
    }

    /// `path`: the database file, to tell a full disk from a failing one (SQLite says "disk I/O
    /// error" for both when a write finds no room).
    public static func describe(_ error: any Error, at path: String? = nil) -> String {
        guard let error = error as? DatabaseError else { return "\(error)" }
        let said = error.message.map { "SQLite: \($0)" } ?? "SQLite result code \(error.resultCode.rawValue)"
        switch error.resultCode {
        case .SQLITE_NOTADB:
            return "it is not an SQLite database (move it aside, or name another file)"
        case .SQLITE_CORRUPT:
            return "the database is damaged (\(said)); move it aside (sqlite3's .recover salvages what it can) and start another, then check the disk"
        case .SQLITE_FULL:
            return "the disk is full (\(said)); nothing of this write was kept, free some space and repeat it"
        case .SQLITE_READONLY:
            return "it can be read but not written (\(said)); a read-only file, folder or file system"
        case .SQLITE_CANTOPEN:
            return "SQLite cannot open it (\(said)); its folder must be writable, since the write-ahead log (FILE-wal) is created beside it"
        case .SQLITE_PERM, .SQLITE_AUTH:
            return "permission denied (\(said))"
        case .SQLITE_IOERR:
            if let path, let free = freeBytes(beside: path), free < 1 << 20 {
                return "the disk is full (\(said), \(free / 1024) KiB free); nothing of this write was kept, free some space and repeat it"
            }
            return "the disk failed to read or write (\(said))"
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return "another process kept it locked for too long (\(said))"
        default:
            return said
        }
    }

    /// Bytes an unprivileged writer may still use on the file system that holds `path`.
    static func freeBytes(beside path: String) -> UInt64? {
        var info = statvfs()
        let folder = (path as NSString).deletingLastPathComponent
        guard statvfs(folder.isEmpty ? "." : folder, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }
}
