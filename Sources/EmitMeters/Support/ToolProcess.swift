import Foundation

/// Runs a read-only command-line tool (ipmitool) and returns its output, killing it when it
/// outlives `timeout`: a hung BMC session must cost one missed sample, not the sampler thread.
struct ToolProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let executable: String
    let timeout: Double

    func run(_ arguments: [String]) throws(Failure) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        do { try process.run() } catch { throw Failure(description: "cannot start \(executable): \(error)") }
        // Read while it runs so a large output cannot fill the pipe and stall the tool.
        let collected = OutputCollector(output.fileHandleForReading, errors.fileHandleForReading)
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            done.wait()
            _ = collected.finish()
            throw Failure(description: "\(executable) did not answer within \(timeout) s")
        }
        let (stdout, stderr) = collected.finish()
        guard process.terminationStatus == 0 else {
            let said = stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
            if process.terminationStatus == 127 { throw Failure(description: "\(executable) is not installed (apt-get install ipmitool)") }
            throw Failure(description: "\(executable) exited with status \(process.terminationStatus)\(said.isEmpty ? "" : ": \(said)")")
        }
        return stdout
    }
}

/// Drains a process's stdout and stderr on threads of their own. Not on Dispatch's global
/// queue: its pool has about one thread per core, and a BMC that does not answer keeps its
/// tool's reads blocked for seconds, which held up every other meter's tool behind it.
private final class OutputCollector: @unchecked Sendable {
    private var out = Data(), err = Data()
    private let group = DispatchGroup()

    init(_ stdout: FileHandle, _ stderr: FileHandle) {
        group.enter()
        group.enter()
        Thread { self.out = stdout.readDataToEndOfFile(); self.group.leave() }.start()
        Thread { self.err = stderr.readDataToEndOfFile(); self.group.leave() }.start()
    }

    func finish() -> (String, String) {
        group.wait()
        return (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}
