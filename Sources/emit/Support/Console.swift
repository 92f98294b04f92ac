#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Buffered stdout (event streams and reports) and unbuffered stderr (progress, errors).
/// Buffering stdout makes millions of lines cost one write(2) per 64 KiB.
enum Console {
    private static let pending = Mutex<[UInt8]>([])
    private static let flushThreshold = 1 << 16

    static func out(_ line: String) {
        pending.withLock { buffer in
            buffer.append(contentsOf: line.utf8)
            buffer.append(0x0A)
            if buffer.count >= flushThreshold {
                writeAll(fd: 1, buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    static func error(_ line: String) {
        flush()
        writeAll(fd: 2, Array(line.utf8) + [0x0A])
    }

    static func flush() {
        pending.withLock { buffer in
            writeAll(fd: 1, buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    private static func writeAll(fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}
