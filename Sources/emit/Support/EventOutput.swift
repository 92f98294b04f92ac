import ArgumentParser
import EmitContract
import EmitTransport
#if canImport(Glibc)
import Glibc
#endif

/// `--out`: where emitted events go (CLI.md): `-` stdout, FILE appended (created if missing).
struct OutputOptions: ParsableArguments {
    @Option(name: .customLong("out"), help: ArgumentHelp(
        "Write events as JSON Lines to FILE (appended, created if missing) or - for stdout. Without --out, events go to the local outbox.",
        valueName: "FILE|-"))
    var destination: String?

    /// Writes all events durably, or fails loudly with every event printed on stderr as JSON
    /// Lines so that nothing vanishes.
    func write(_ events: [EnergyEvent]) throws {
        var text = ""
        for event in events { text += event.jsonLine + "\n" }
        guard let destination else {
            let path = EmitHome.outboxPath
            do {
                try EventDatabase(path: path).add(events)
            } catch {
                Console.error(String(text.dropLast()))
                throw CommandFailure.usage("could not store \(events.count) event(s) in the outbox \(path) (\(error)); they are printed above as JSON Lines so nothing is lost")
            }
            return
        }
        if destination == "-" {
            Console.out(String(text.dropLast()))
            Console.flush()
            return
        }
        let fd = open(destination, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CommandFailure.usage("cannot open \(destination) for appending: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                Console.error(text)
                throw CommandFailure.usage("writing \(destination) failed (\(reason)); the events are printed above so nothing is lost")
            }
            written += n
        }
        // A regular file is durable before the command reports it written; a pipe, FIFO or
        // device (/dev/null) has nothing to sync and answers EINVAL.
        guard fsync(fd) == 0 || ((errno == EINVAL || errno == EROFS) && !isRegularFile(fd)) else {
            throw CommandFailure.usage("fsync of \(destination) failed: \(String(cString: strerror(errno)))")
        }
    }

    private func isRegularFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}
