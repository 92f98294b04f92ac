import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The pages of the agent's own executable that start-up touched and the long run does not
/// need. A node build maps about 80 MB of itself; argument parsing, meter discovery, the
/// server's set-up and the first requests (the runtime resolving each conformance once) touch
/// about 20 MB of it, a page at a time, while sampling and answering requests run on far less.
/// `MADV_PAGEOUT` (Linux 5.4) hands those clean file pages back; a page needed again is read
/// back in. Memory of the agent's own (heap, stacks) is not touched.
public enum StartupPages {
    /// Gives the pages back after each kind of work (a route of the control socket, a scrape)
    /// is done for the first time, once the agent has been quiet for a moment: whatever runs
    /// once per kind (conformances resolved, caches filled) is then let go, whenever in the
    /// agent's life it comes, without a request waiting for pages read back meanwhile.
    public final class AfterFirstUse: Sendable {
        private let seen = Mutex<Set<String>>([])
        private let scheduled = Mutex(false)
        private let lastUse = Atomic<UInt64>(0)
        private let quiet: Double
        private let release: @Sendable () -> Void

        /// `quiet`: how long no work may have been done before the pages are given back.
        public init(quiet: Double = 2, release: @escaping @Sendable () -> Void = { StartupPages.release() }) {
            self.quiet = quiet
            self.release = release
        }

        /// Called for every piece of work: cheap when the kind was seen before.
        public func used(_ kind: String) {
            lastUse.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
            guard seen.withLock({ $0.insert(kind).inserted }) else { return }
            // Kinds first used close together share one release.
            guard scheduled.withLock({ pending in defer { pending = true }; return !pending }) else { return }
            releaseWhenQuiet()
        }

        private func releaseWhenQuiet() {
            DispatchQueue.global().asyncAfter(deadline: .now() + quiet) { [self] in
                let idle = Double(DispatchTime.now().uptimeNanoseconds &- lastUse.load(ordering: .relaxed)) / 1e9
                guard idle >= quiet else { return releaseWhenQuiet() }
                scheduled.withLock { $0 = false }
                release()
            }
        }
    }

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
        // A page faulted in again brings its neighbours along when they are in the page cache
        // (the kernel maps up to 64 KB around a fault): a binary freshly installed is cached
        // whole, and the pages given back would return. Pages of the file no process maps are
        // dropped from the cache too; whoever needs them reads them again.
        let file = open(executable, O_RDONLY | O_CLOEXEC)
        if file >= 0 {
            _ = posix_fadvise(file, 0, 0, POSIX_FADV_DONTNEED)
            close(file)
        }
        return advised
        #else
        return 0
        #endif
    }
}
