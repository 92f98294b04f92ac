import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The pages of the agent's own executable that start-up touched and the long run does not
/// need. A node build is one 80 MB file; argument parsing, meter discovery and the server's
/// set-up touch about 20 MB of it scattered a page at a time, while sampling and answering
/// requests run on a few MB. `MADV_PAGEOUT` (Linux 5.4) hands the clean file pages back; any
/// page needed again is faulted in from the page cache. Nothing else changes: no memory of
/// the agent's own (heap, stacks) is touched.
public enum StartupPages {
    /// Advises the kernel to reclaim the executable's resident pages; returns the bytes of
    /// mappings advised (0 where the kernel or the platform cannot).
    @discardableResult
    public static func release() -> Int {
        #if os(Linux)
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
              let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return 0 }
        var advised = 0
        for mapping in maps.split(separator: "\n") {
            // address perms offset dev inode path
            let fields = mapping.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, fields[5].trimmingCharacters(in: .whitespaces) == executable else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16), high > low,
                  let start = UnsafeMutableRawPointer(bitPattern: low) else { continue }
            // Reads of pages needed again fetch those pages, not the 128 KB around them.
            _ = madvise(start, Int(high - low), MADV_RANDOM)
            let pageOut: Int32 = 21  // MADV_PAGEOUT; Glibc's headers before 2.33 lack the name
            if madvise(start, Int(high - low), pageOut) == 0 { advised += Int(high - low) }
        }
        return advised
        #else
        return 0
        #endif
    }
}
