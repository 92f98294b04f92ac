import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The sampler's checkpoint, written every interval into two files in turn and overwritten in
/// place: no file is created or renamed per write (creating and renaming a file every second
/// was half of the idle agent's CPU, in the kernel). Each write starts with a header line,
/// `emit-agent-checkpoint 1 SEQUENCE LENGTH FNV1A64`, so a write cut short by a crash is seen
/// as such and the other file, one interval older, is read instead.
final class CheckpointFile {
    let paths: [String]
    private let folder: String
    private var descriptors: [Int32] = [-1, -1]
    private var sequence: UInt64 = 0

    /// `base` names the pair: `base.1` and `base.2`.
    init(base: String, folder: String) {
        paths = [base + ".1", base + ".2"]
        self.folder = folder
    }

    deinit { for fd in descriptors where fd >= 0 { close(fd) } }

    /// The newest complete checkpoint's JSON, or nil when there is none. Files that exist and
    /// hold no complete checkpoint at all are refused (never overwritten): they are someone's.
    func load() throws -> Data? {
        var newest: (sequence: UInt64, json: Data)?
        var unreadable: [String] = []
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            guard let (sequence, json) = Self.parse(data) else {
                if !data.isEmpty { unreadable.append(path) }
                continue
            }
            if sequence >= newest?.sequence ?? 0 { newest = (sequence, json) }
        }
        guard let newest else {
            if !unreadable.isEmpty {
                throw AgentError(status: 500, code: "state", message: "\(unreadable.joined(separator: " and ")) hold no complete agent checkpoint; move them aside to start afresh")
            }
            return nil
        }
        sequence = newest.sequence
        return newest.json
    }

    static func parse(_ data: Data) -> (UInt64, Data)? {
        guard let newline = data.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let fields = String(decoding: data[data.startIndex..<newline], as: UTF8.self).split(separator: " ")
        guard fields.count == 5, fields[0] == "emit-agent-checkpoint", fields[1] == "1",
              let sequence = UInt64(fields[2]), let length = Int(fields[3]), let hash = UInt64(fields[4], radix: 16) else { return nil }
        let start = newline + 1
        guard data.endIndex - start >= length else { return nil }
        let json = data[start..<(start + length)]
        return fnv1a(json) == hash ? (sequence, Data(json)) : nil
    }

    static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Writes `json` over the older of the two files; with `sync`, durably.
    func store(_ json: [UInt8], sync: Bool) throws {
        sequence += 1
        let slot = Int(sequence % 2)
        if descriptors[slot] < 0 {
            descriptors[slot] = open(paths[slot], O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptors[slot] >= 0 else { throw failure("cannot open \(paths[slot])") }
            let directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directory >= 0 { _ = fsync(directory); close(directory) }
        }
        var bytes = Array("emit-agent-checkpoint 1 \(sequence) \(json.count) \(String(Self.fnv1a(json), radix: 16))\n".utf8)
        bytes += json
        let fd = descriptors[slot]
        // Not truncated: bytes past the header's length (from a longer earlier write) are ignored.
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count, !sync || fsync(fd) == 0 else {
            throw failure("cannot write \(paths[slot])")
        }
    }

    private func failure(_ what: String) -> AgentError {
        AgentError(status: 500, code: "state", message: "\(what): \(String(cString: strerror(errno)))")
    }
}
