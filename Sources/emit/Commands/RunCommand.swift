import ArgumentParser
import Dispatch
import EmitAgent
import EmitContract
import EmitMeters
import EmitSessions
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run COMMAND and emit the measured energy of every physical meter while it ran.",
        discussion: """
            Counters are read just before COMMAND starts, every --interval while it runs (on a \
            monotonic clock, so wraps and resets are caught) and right after it exits. One event \
            per (source, device) covers the run; with --window, consecutive non-overlapping windows \
            tile the run exactly and each is written as it closes, so a crash loses at most one.

            The summary on stderr shows, per device: joules, average watts, samples, coverage and \
            anomalies (counter wraps, resets, failed reads). With no usable meter emit says so, \
            still runs COMMAND, and emits nothing rather than inventing a value.

            SIGINT and SIGTERM sent to emit are forwarded to COMMAND; the window up to that moment \
            is still emitted. Exit code: COMMAND's own; 128+S when COMMAND is killed by signal S; \
            125 when emit fails before starting COMMAND.

            Where the node agent's socket exists ($EMIT_AGENT_SOCKET, else /run/emit/agent.sock), \
            the run is metered by the agent (`emit agent`): an unprivileged user gets the counters \
            root holds, scoped to the GPUs in CUDA_VISIBLE_DEVICES or NVIDIA_VISIBLE_DEVICES; the \
            agent's own interval applies. --no-agent meters here instead.
            """
    )

    @Option(name: .customLong("run-id"), help: "The compute_assignment_run_id the energy belongs to.")
    var runID: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Sampling interval (250ms, 1s, ...); shortened if a counter could wrap twice.", valueName: "D"))
    var interval: String = "1s"

    @Option(parsing: .unconditional, help: ArgumentHelp("Emit consecutive interim windows of this length while COMMAND runs.", valueName: "D"))
    var window: String?

    @OptionGroup var meters: MeterOptions
    @OptionGroup var output: OutputOptions

    @Flag(name: .customLong("no-agent"), help: "Meter here even where the node agent's socket exists.")
    var noAgent = false

    @Argument(parsing: .postTerminator, help: "The command to run, after --.")
    var command: [String] = []

    static let failedToStart: Int32 = 125

    func run() throws {
        do {
            try meterCommand()
        } catch let failure as CommandFailure where failure.exitCode == 2 {
            throw CommandFailure(exitCode: Self.failedToStart, message: failure.message)
        }
    }

    private func meterCommand() throws {
        // Everything that can be known before the work is checked before it: a job must never
        // run only to have its measurements thrown away.
        guard !command.isEmpty else { throw CommandFailure.usage("name the command to meter after --, e.g. emit run --run-id r1 -- ./train.sh") }
        if let problem = Contract.runIDProblem(runID) {
            throw CommandFailure.usage("--run-id \(problem); nothing was run")
        }
        let intervalSeconds = try Durations.seconds(interval, flag: "--interval")
        let windowSeconds = try window.map { try Durations.seconds($0, flag: "--window") }
        if let windowSeconds, windowSeconds < intervalSeconds {
            throw CommandFailure.usage("--window (\(window ?? "")) must be at least --interval (\(interval))")
        }
        try output.checkWritable()
        let sink = EventSink(output)
        let socket = AgentClient.socketPath()
        if !noAgent, FileManager.default.fileExists(atPath: socket) {
            try meterThroughAgent(AgentClient(socketPath: socket), window: windowSeconds, sink: sink)
            return
        }
        let selection = try meters.selection()
        let (opened, notes) = selection.open()
        // A source the user named that cannot be read is an error now, not an empty result later.
        if let named = selection.sources {
            let metered = Set(opened.flatMap(\.devices).map(\.source))
            let missing = named.subtracting(metered).sorted { $0.rawValue < $1.rawValue }
            if !missing.isEmpty {
                for meter in opened { meter.close() }
                let reasons = (opened.flatMap(\.problems) + notes).filter { missing.contains($0.source) }
                    .map { "  \($0.source.rawValue)\($0.deviceID.map { " \($0)" } ?? ""): \($0.reason)" }
                throw CommandFailure.usage("--source \(missing.map(\.rawValue).joined(separator: ",")) cannot be read here; nothing was run"
                    + (reasons.isEmpty ? "" : ":\n" + reasons.joined(separator: "\n"))
                    + "\n(emit sensors lists every meter and the fix; without --source, emit run meters what it can)")
            }
        }
        let configuration = RunConfiguration(runID: runID, nodeID: NodeIdentity.current(), interval: intervalSeconds, window: windowSeconds)
        let session = RunSession(configuration: configuration, meters: opened, deliver: { sink.write($0) })
        if session.meteredDevices.isEmpty {
            Console.error("emit run: no physical meter is available; running the command and emitting nothing:")
            for problem in opened.flatMap(\.problems) + notes { Console.error("  \(problem.source.rawValue): \(problem.reason)") }
        }
        if let note = session.intervalNote { Console.error("emit run: \(note)") }

        let forwarder = SignalForwarder(signals: [SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        session.start()
        let child: pid_t
        do { child = try ChildProcess.spawn(command) } catch {
            _ = session.stop()
            forwarder.restore()
            throw CommandFailure(exitCode: Self.failedToStart, message: "cannot start \(command[0]): \(error)")
        }
        forwarder.forward(to: child)
        let status = ChildProcess.wait(child)
        let report = session.stop()
        forwarder.restore()

        RunSummary.print(report, problems: notes)
        Console.flush()
        // Events that could not be stored are a loud failure even when the command succeeded.
        if let failure = sink.failure {
            throw CommandFailure(exitCode: status == 0 ? 1 : status, message: "run: \(failure)")
        }
        throw CommandFailure(exitCode: status, message: "")
    }
}

extension RunCommand {
    /// The same run, metered by the node agent: begin, the command, end (and with --window, a
    /// window closed every D that the next one continues from).
    private func meterThroughAgent(_ client: AgentClient, window: Double?, sink: EventSink) throws {
        let selection = try meters.selection()
        guard AgentClient.isListening(client.socketPath) else {
            throw CommandFailure(exitCode: Self.failedToStart, message: "the node agent's socket \(client.socketPath) exists but no agent answers on it; start the agent, or meter here with --no-agent")
        }
        let request = AgentProtocol.BeginRequest(runID: runID, scope: AgentRunScope.request(devices: nil))
        do { _ = try client.begin(request) } catch {
            throw CommandFailure(exitCode: Self.failedToStart, message: "the node agent (\(client.socketPath)) refused the run: \(error.message); --no-agent meters here")
        }
        let chosen = selection.sources
        let keep: @Sendable ([EnergyEvent]) -> [EnergyEvent] = { events in events.filter { chosen?.contains($0.source) ?? true } }
        let closer = window.map { AgentWindowCloser(client: client, runID: runID, every: $0, deliver: { sink.write(keep($0)) }) }
        let forwarder = SignalForwarder(signals: [SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        let child: pid_t
        do { child = try ChildProcess.spawn(command) } catch {
            closer?.stop()
            _ = try? client.end(AgentProtocol.EndRequest(runID: runID, deliver: false))
            forwarder.restore()
            throw CommandFailure(exitCode: Self.failedToStart, message: "cannot start \(command[0]): \(error)")
        }
        forwarder.forward(to: child)
        let status = ChildProcess.wait(child)
        closer?.stop()
        forwarder.restore()
        let answer: JSONValue
        do { answer = try client.end(AgentProtocol.EndRequest(runID: runID, deliver: false)) } catch {
            throw CommandFailure(exitCode: status == 0 ? 1 : status, message: "run: the node agent did not end the run: \(error.message) (`emit agent end --run-id \(runID)` ends it later)")
        }
        let events = keep(try AgentRunEvents.events(in: answer))
        sink.write(events)
        AgentRunEvents.summarize(answer, events: events, title: "emit run: \(runID)")
        Console.flush()
        if let failure = sink.failure {
            throw CommandFailure(exitCode: status == 0 ? 1 : status, message: "run: \(failure)")
        }
        throw CommandFailure(exitCode: status, message: "")
    }
}

/// `emit run --window D` through the agent: closes a window of the run every D, the next one
/// continuing from the same reading, so the windows tile the run.
final class AgentWindowCloser: @unchecked Sendable {
    private let stopSignal = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)

    init(client: AgentClient, runID: String, every seconds: Double, deliver: @escaping @Sendable ([EnergyEvent]) -> Void) {
        let thread = Thread { [stopSignal, done] in
            defer { done.signal() }
            while stopSignal.wait(timeout: .now() + seconds) == .timedOut {
                guard let answer = try? client.end(AgentProtocol.EndRequest(runID: runID, deliver: false, continuing: true)),
                      let events = try? AgentRunEvents.events(in: answer) else { continue }
                deliver(events)
            }
        }
        thread.start()
    }

    func stop() {
        stopSignal.signal()
        done.wait()
    }
}

/// Where a run's events go; written from the sampler thread as windows close.
final class EventSink: @unchecked Sendable {
    private let output: OutputOptions
    private let lock = NSLock()
    private(set) var failure: String?

    init(_ output: OutputOptions) {
        self.output = output
    }

    func write(_ events: [EnergyEvent]) {
        lock.lock()
        defer { lock.unlock() }
        do { try output.write(events) } catch let error as CommandFailure {
            failure = error.message
        } catch {
            failure = "\(error)"
        }
    }
}

/// Spawns and reaps the metered command.
enum ChildProcess {
    struct SpawnError: Error, CustomStringConvertible {
        let code: Int32
        var description: String { String(cString: strerror(code)) }
    }

    static func spawn(_ argv: [String]) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // emit ignores the forwarded signals; the command must start with default handlers
        // (an ignored disposition would survive exec).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, argv[0], nil, &attributes, &cArgs, environ)
        guard result == 0 else { throw SpawnError(code: result) }
        return pid
    }

    /// The command's exit status in shell terms: its exit code, or 128+S when killed by signal S.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 1 }
        }
        let signal = status & 0x7F
        if signal == 0 { return (status >> 8) & 0xFF }
        return 128 + signal
    }
}

/// Forwards termination signals sent to emit to the metered command.
final class SignalForwarder: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let signals: [Int32]
    private let lock = NSLock()
    private var child: pid_t?
    private var pending: [Int32] = []

    init(signals: [Int32]) {
        self.signals = signals
        for signalNumber in signals {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in self?.received(signalNumber) }
            source.resume()
            sources.append(source)
        }
    }

    private func received(_ signalNumber: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if let child { kill(child, signalNumber) } else { pending.append(signalNumber) }
    }

    func forward(to pid: pid_t) {
        lock.lock()
        defer { lock.unlock() }
        child = pid
        for signalNumber in pending { kill(pid, signalNumber) }
        pending.removeAll()
    }

    func restore() {
        for source in sources { source.cancel() }
        for signalNumber in signals { signal(signalNumber, SIG_DFL) }
    }
}

/// The human summary of a run, on stderr.
enum RunSummary {
    static func print(_ report: RunReport, problems notes: [MeterProblem]) {
        print(title: "emit run: \(report.runID)", report.session, problems: notes)
    }

    static func print(title: String, _ report: SessionReport, problems notes: [MeterProblem]) {
        guard !report.devices.isEmpty else { return }
        let seconds = report.window?.seconds ?? 0
        Console.error(String(format: "%@ — %.3f s, %d event(s), sampled every %@", title, seconds, report.eventsEmitted, Durations.text(report.intervalSeconds)))
        let rows = report.devices.map { d -> [String] in
            var anomalies: [String] = []
            if d.wraps > 0 { anomalies.append("\(d.wraps) wrap(s)") }
            if d.resets > 0 { anomalies.append("\(d.resets) reset(s)") }
            if d.failedReads > 0 { anomalies.append("\(d.failedReads) failed read(s): \(d.lastFailure ?? "")") }
            if d.samples == 0 && d.failedReads == 0 { anomalies.append("no read completed (the meter did not answer)") }
            if let reason = d.withheldReason {
                let windows = d.withheldWindows == 1 ? "1 window" : "\(d.withheldWindows) windows"
                anomalies.append("\(d.withheldWindows > 0 ? windows : "the run") not reported as measured: \(reason)")
            }
            let evidence = d.method.map { method in
                (method == .counterDelta ? "counter" : "power") + (d.resolutionJoules.map { " ±" + Self.joules($0) } ?? "")
            } ?? "none"
            return [d.device.source.rawValue, d.device.device.deviceClass.rawValue, d.device.device.id,
                    d.method == nil ? "-" : String(format: "%.3f", d.joules), d.method == nil ? "-" : String(format: "%.2f", d.averageWatts),
                    String(d.samples), String(format: "%.1f%%", d.coverage * 100), evidence,
                    anomalies.isEmpty ? "-" : anomalies.joined(separator: "; ")]
        }
        for line in TextTable.render(header: ["SOURCE", "CLASS", "DEVICE", "JOULES", "AVG W", "SAMPLES", "COVERAGE", "EVIDENCE", "ANOMALIES"], rows: rows) {
            Console.error("  " + line)
        }
        let unusable = report.problems + notes
        // Per-device notes stay out of the summary unless they explain a whole missing source
        // (say, a BMC named with --source that never answered) or a permission to fix.
        let meteredSources = Set(report.devices.map(\.device.source))
        for problem in unusable where problem.reason.contains("permission denied") || problem.deviceID == nil
            || !meteredSources.contains(problem.source) {
            Console.error("  not metered: \(problem.source.rawValue)\(problem.deviceID.map { " \($0)" } ?? ""): \(problem.reason)")
        }
        for failure in report.buildFailures { Console.error("  event not built: \(failure)") }
    }

    /// An energy step for a person: 0.001 J, 3600 J, 3.6e+06 J.
    static func joules(_ value: Double) -> String {
        value >= 1e5 ? String(format: "%.3g J", value) : String(format: "%.6g J", value)
    }
}
