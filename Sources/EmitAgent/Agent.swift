import EmitContract
import EmitMeters
import EmitSessions
import Foundation
import ServiceLifecycle

/// How the node agent runs.
public struct AgentConfiguration: Sendable {
    /// Where the state file (open runs, each device's last reading) lives.
    public var stateDirectory: String
    public var nodeID: String
    /// Sampling interval in seconds; also how often the state is checkpointed.
    public var interval: Double
    /// Begins and ends within this long of a round share it (see `ContinuousSampler`).
    public var sharedRoundAge: Double

    public init(stateDirectory: String, nodeID: String, interval: Double = 1, sharedRoundAge: Double = 0.001) {
        self.stateDirectory = stateDirectory
        self.nodeID = nodeID
        self.interval = interval
        self.sharedRoundAge = sharedRoundAge
    }

    /// Open runs: a journal appended when a run begins or ends, before the request is answered.
    public var runsFile: String { stateDirectory + "/agent-runs.jsonl" }
    /// Each device's totals and last reading: written every interval.
    /// The sampler's checkpoint: two files written in turn (`.1`, `.2`; CheckpointFile).
    public var samplerBase: String { stateDirectory + "/agent-sampler" }
    /// Where versions before the paired files kept it; read once, then removed.
    var legacySamplerFile: String { stateDirectory + "/agent-sampler.json" }
}

/// A run the agent meters: who began it, which devices, and the mark it began at.
public struct AgentRun: Sendable, Codable, Equatable {
    public let runID: String
    /// The caller's uid, from the kernel (SO_PEERCRED): only it, or root, may read or end the run.
    public let uid: UInt32
    /// Device keys (`source:id`) in scope.
    public let scope: [String]
    public let labels: [String: String]
    public let begin: ContinuousSampler.Mark
    /// Per device key: the most runs open on it at once during this run (more than 1: shared).
    public var sharedBy: [String: Int]
    /// What the scope resolution has to say (a MIG instance metered as its board).
    public let notes: [String]
}

/// What ending a run gives: its events, and the devices whose readings were not measured energy.
public struct RunResult: Sendable {
    public let run: AgentRun
    public let events: [EnergyEvent]
    public let withheld: [(device: String, reason: String)]
    public let window: TimeWindow?
}

/// The node agent's core: one continuous sampler for every open run, the runs, and their
/// checkpoint. Runs are windows between two marks of the sampler; nothing is divided between
/// runs (the cloud attributes), but a device two runs had open at once is labeled as shared.
///
/// Thread-safe: requests arrive on the server's event loops, checkpoints on a thread of their own.
public final class Agent: @unchecked Sendable {
    public let configuration: AgentConfiguration
    public let sampler: ContinuousSampler
    /// Guards the runs and the checkpoint bookkeeping; the writer waits on it too.
    private let state = NSCondition()
    private var runs: [String: AgentRun] = [:]
    /// Open runs per device key, now.
    private var openOnDevice: [String: Int] = [:]
    /// Changes to the runs, and how many of them are in the journal: a begin or end is answered
    /// only once its change is written (so it outlives the agent); the writer fsyncs the journal
    /// every interval (so it outlives a power loss). Requests arriving while a write runs share
    /// the next one.
    private var runsChanged = 0
    private var runsWritten = 0
    /// Changes fsynced (by the writer, every interval while any run is open or unsynced).
    private var runsSynced = 0
    /// Journal records not yet on disk, in order.
    private var pendingRecords: [RunsJournal.Record] = []
    private let journal: RunsJournal
    /// Written by the writer thread only (and by `checkpoint()` once that thread has stopped).
    private let samplerCheckpoint: CheckpointFile
    /// Serializes the journal's file between the writer and `checkpoint()`.
    private let journalLock = NSLock()
    private var started = false
    private var stopped = false
    private let writerDone = DispatchSemaphore(value: 0)
    /// The last checkpoint failure, for health.
    private var checkpointFailure: String?

    /// The stored state, if any, is read here: open runs go on, and each device resumes from its
    /// last reading.
    public init(configuration: AgentConfiguration, meters: [EnergyMeter]) throws {
        self.configuration = configuration
        samplerCheckpoint = CheckpointFile(base: configuration.samplerBase, folder: configuration.stateDirectory)
        var checkpoint: ContinuousSampler.Checkpoint?
        if let json = try samplerCheckpoint.load() {
            checkpoint = try Self.decode(ContinuousSampler.Checkpoint.self, json, from: samplerCheckpoint.paths.joined(separator: ", "))
        } else if let legacy = FileManager.default.contents(atPath: configuration.legacySamplerFile) {
            checkpoint = try Self.decode(ContinuousSampler.Checkpoint.self, legacy, from: configuration.legacySamplerFile)
        }
        sampler = ContinuousSampler(meters: meters, interval: configuration.interval, resume: checkpoint,
                                    sharedRoundAge: configuration.sharedRoundAge)
        runs = try RunsJournal.replay(configuration.runsFile)
        for run in runs.values {
            for key in run.scope { openOnDevice[key, default: 0] += 1 }
        }
        journal = RunsJournal(path: configuration.runsFile, folder: configuration.stateDirectory)
        if FileManager.default.fileExists(atPath: configuration.runsFile) { try journal.compact(Array(runs.values)) }
    }

    public var devices: [MeteredDevice] { sampler.devices }

    /// Starts sampling, and the writer: the sampler's checkpoint every interval, the runs as
    /// soon as they change.
    public func start() {
        sampler.start()
        state.withLock { started = true }
        let thread = Thread { [self] in writeLoop() }
        thread.name = "emit-agent-checkpoint"
        thread.start()
    }

    /// Stops sampling after a last checkpoint; open runs stay in the state files.
    public func stop() {
        state.lock()
        let wasRunning = started && !stopped
        stopped = true
        state.broadcast()
        state.unlock()
        guard wasRunning else { return }
        writerDone.wait()
        sampler.stop()
        try? checkpoint()
    }

    /// The agent's sampling as a service of its daemon. The agent is started before the
    /// services run (the socket takes requests as soon as it listens); this service stops it,
    /// after a last checkpoint, when the daemon shuts down: listed first, it is the last to stop.
    public struct Sampling: Service {
        let agent: Agent

        public init(_ agent: Agent) { self.agent = agent }

        public func run() async {
            try? await gracefulShutdown()  // returns on a graceful shutdown, throws when cancelled: stopped either way
            agent.stop()
        }
    }

    /// With no run open and nothing unsynced, the sampler's checkpoint serves only the devices'
    /// running totals, which a restart can take as well from a reading a minute old: the
    /// sampler counts the delta across the gap where at most one wrap fits, judged from the
    /// time, and says gap otherwise. The idle agent then writes it once a minute.
    static let idleCheckpointInterval = 60.0

    private func writeLoop() {
        defer { writerDone.signal() }
        var lastWrite: Date?
        while true {
            state.lock()
            while !stopped, let last = lastWrite {
                let idle = runs.isEmpty && runsSynced >= runsChanged
                let due = last.addingTimeInterval(idle ? max(configuration.interval, Self.idleCheckpointInterval) : configuration.interval)
                if Date() >= due { break }
                _ = state.wait(until: due)
            }
            if stopped { state.unlock(); return }
            let generation = runsChanged
            state.unlock()
            do {
                // Whoever changes the runs commits them (the server after each batch of requests);
                // anything left behind is written here, and all of it fsynced, every interval.
                try commitPending()
                try compact(onlyIfLong: true)
                try journal.sync { body in journalLock.withLock(body) }
                state.withLock { runsSynced = max(runsSynced, generation) }
                // Not fsynced: it serves restarts of the process, which the page cache
                // survives; a power loss reboots the node, and its counters restart anyway.
                try samplerCheckpoint.store(try Self.json(sampler.checkpoint()), sync: false)
                lastWrite = Date()
                state.withLock { checkpointFailure = nil }
            } catch {
                state.withLock { checkpointFailure = "\(error)" }
                lastWrite = Date().addingTimeInterval(min(1, configuration.interval) - configuration.interval)
            }
        }
    }

    /// Writes the changes to the runs not yet in the journal (one append for all of them).
    /// Called by the server's event loop after each batch of requests, and by the writer for
    /// anything left. On failure the change counts as written all the same (its waiters are
    /// answered; health says why) and the error is thrown.
    func commitPending() throws {
        try journalLock.withLock {
            // Taken under the journal's lock: records reach the file in the order they were made.
            let (generation, records): (Int, [RunsJournal.Record]) = state.withLock {
                defer { pendingRecords.removeAll() }
                return (runsChanged, pendingRecords)
            }
            guard generation > state.withLock({ runsWritten }) else { return }
            do { try journal.append(records) } catch {
                state.withLock { checkpointFailure = "\(error)" }
                markWritten(generation)
                throw error
            }
            markWritten(generation)
        }
    }

    /// Rewrites the journal with the open runs (which hold its records): at stop, and by the
    /// writer when it grew long (every `RunsJournal.compactAfter` records; requests made
    /// meanwhile wait for it). When the rewrite fails, the records are appended as they were.
    private func compact(onlyIfLong: Bool) throws {
        try journalLock.withLock {
            guard !onlyIfLong || journal.needsCompaction else { return }
            let (generation, records, snapshot) = state.withLock {
                defer { pendingRecords.removeAll() }
                return (runsChanged, pendingRecords, Array(runs.values))
            }
            do { try journal.compact(snapshot) } catch {
                try? journal.append(records)
                markWritten(generation)
                throw error
            }
            markWritten(generation)
        }
    }

    private func markWritten(_ generation: Int) {
        state.lock()
        runsWritten = max(runsWritten, generation)
        state.broadcast()
        state.unlock()
    }

    /// Called with `state` locked after a change to the runs: its records queued for the next
    /// commit; returns the change's generation.
    private func changedRunsLocked(_ records: [RunsJournal.Record]) -> Int {
        pendingRecords += records
        runsChanged += 1
        return runsChanged
    }

    /// Blocks until `generation` is in the journal (for callers on threads of their own).
    private func waitWritten(_ generation: Int) {
        state.lock()
        while started, !stopped, runsWritten < generation { state.wait() }
        state.unlock()
    }

    /// Opens the run and returns once it is in the journal.
    public func begin(runID: String, uid: UInt32, scope request: DeviceScope.Request, labels: [String: String]) throws(AgentError) -> AgentRun {
        let (run, generation) = try openRun(runID: runID, uid: uid, scope: request, labels: labels)
        try? commitPending()
        waitWritten(generation)
        return run
    }

    /// Ends the run and returns its events once the change is in the journal: one event per device in
    /// scope with measured energy. `continuing`: the run goes on from this very mark
    /// (consecutive windows that tile a run).
    public func end(runID: String, uid: UInt32, continuing: Bool = false) throws(AgentError) -> RunResult {
        let (result, generation) = try closeRun(runID: runID, uid: uid, continuing: continuing)
        try? commitPending()
        waitWritten(generation)
        return result
    }

    // MARK: - Runs

    func openRun(runID: String, uid: UInt32, scope request: DeviceScope.Request, labels: [String: String]) throws(AgentError) -> (AgentRun, Int) {
        try Self.check(runID: runID)
        try Self.check(labels: labels)
        let resolved = try DeviceScope.resolve(request, devices: sampler.devices)
        let mark = sampler.mark()
        state.lock()
        defer { state.unlock() }
        guard runs[runID] == nil else {
            throw AgentError(status: 409, code: "run_exists", field: "run_id", message: "run \"\(runID)\" is already open")
        }
        let opened = AgentRun(runID: runID, uid: uid, scope: resolved.keys, labels: labels, begin: mark, sharedBy: [:], notes: resolved.notes)
        // Every other open run on its devices now shares them with this many: the same rule
        // the journal's replay applies to the begin record, which is all that is written.
        RunsJournal.begin(opened, in: &runs, openOnDevice: &openOnDevice)
        // The first run open: the writer, checkpointing once a minute while idle, goes back to
        // every interval.
        if runs.count == 1 { state.broadcast() }
        let run = runs[runID] ?? opened
        return (run, changedRunsLocked([RunsJournal.Record(begin: run)]))
    }

    func closeRun(runID: String, uid: UInt32, continuing: Bool) throws(AgentError) -> (RunResult, Int) {
        _ = try show(runID: runID, uid: uid)
        let mark = sampler.mark()
        state.lock()
        guard let run = runs[runID] else {
            state.unlock()
            throw AgentError.notFound(runID)
        }
        // The journal's own rules, as its replay applies them to the record written.
        let record: RunsJournal.Record
        if continuing {
            let next = AgentRun(runID: run.runID, uid: run.uid, scope: run.scope, labels: run.labels, begin: mark, sharedBy: [:], notes: run.notes)
            RunsJournal.begin(next, in: &runs, openOnDevice: &openOnDevice)
            record = RunsJournal.Record(begin: runs[runID] ?? next)
        } else {
            RunsJournal.end(runID, in: &runs, openOnDevice: &openOnDevice)
            record = RunsJournal.Record(end: runID)
        }
        let generation = changedRunsLocked([record])
        state.unlock()
        return (events(of: run, to: mark), generation)
    }

    /// The run, to its owner or root.
    public func show(runID: String, uid: UInt32) throws(AgentError) -> AgentRun {
        state.lock()
        defer { state.unlock() }
        guard let run = runs[runID] else { throw AgentError.notFound(runID) }
        guard uid == 0 || uid == run.uid else {
            throw AgentError(status: 403, code: "forbidden", field: "run_id", message: "run \"\(runID)\" belongs to uid \(run.uid); only it or root may read or end it")
        }
        return run
    }

    /// Open runs: the caller's own, or all of them for root.
    public func openRuns(uid: UInt32) -> [AgentRun] {
        state.lock()
        defer { state.unlock() }
        return runs.values.filter { uid == 0 || $0.uid == uid }.sorted { $0.runID < $1.runID }
    }

    public var openRunCount: Int { state.withLock { runs.count } }
    public var lastCheckpointFailure: String? { state.withLock { checkpointFailure } }

    private func events(of run: AgentRun, to end: ContinuousSampler.Mark) -> RunResult {
        guard run.begin.timestamp < end.timestamp else { return RunResult(run: run, events: [], withheld: [], window: nil) }
        let window = TimeWindow(from: run.begin.timestamp, to: end.timestamp)
        let recordedAt = WallClock.now()
        var events: [EnergyEvent] = [], withheld: [(String, String)] = []
        for part in sampler.window(from: run.begin, to: end, scope: Set(run.scope)) {
            let key = ContinuousSampler.key(part.device)
            guard let (joules, measurement) = part.measurement else {
                withheld.append((key, part.withheldReason ?? "not measured"))
                continue
            }
            var labels = run.labels
            if let shared = run.sharedBy[key], shared > 1 { labels[Self.sharedLabel] = String(shared) }
            do {
                events.append(try RunMeterEventBuilder(
                    runID: run.runID, source: part.device.source, device: part.device.device, nodeID: configuration.nodeID,
                    window: window, energyJoules: joules, measurement: measurement, provenance: part.device.provenance,
                    labels: labels).build(recordedAt: recordedAt))
            } catch {
                withheld.append((key, "event not built: \(error)"))
            }
        }
        return RunResult(run: run, events: events, withheld: withheld, window: window)
    }

    /// The label on a device's event when other runs had the device open at the same time: how
    /// many runs, at most, shared it. emit never divides the energy.
    public static let sharedLabel = "shared_by_runs"

    // MARK: - Validation

    static func check(runID: String) throws(AgentError) {
        if let problem = Contract.runIDProblem(runID) {
            throw AgentError(status: 400, code: "bad_run_id", field: "run_id", message: "run_id \(problem)")
        }
    }

    static func check(labels: [String: String]) throws(AgentError) {
        guard labels.count <= 31 else {
            throw AgentError(status: 400, code: "bad_label", field: "labels", message: "at most 31 labels (one is kept for \(sharedLabel))")
        }
        for (key, value) in labels {
            let validKey = key.utf8.count <= 63 && key.first.map { $0.isASCII && $0.isLowercase } == true
                && key.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || "_.-".contains($0)) }
            guard validKey, key != sharedLabel else {
                throw AgentError(status: 400, code: "bad_label", field: "labels.\(key)", message: "label key \"\(key)\" must match ^[a-z][a-z0-9_.-]{0,62}$ and not be \(sharedLabel)")
            }
            guard value.count <= 256 else {
                throw AgentError(status: 400, code: "bad_label", field: "labels.\(key)", message: "label value of \"\(key)\" is over 256 characters")
            }
        }
    }

    // MARK: - State

    /// Writes both state files now: the journal compacted to the open runs, the sampler's state.
    public func checkpoint() throws {
        try compact(onlyIfLong: false)
        try samplerCheckpoint.store(try Self.json(sampler.checkpoint()), sync: true)
        unlink(configuration.legacySamplerFile)
    }

    static func json(_ value: some JSONFragmentWriting) throws -> [UInt8] {
        var out = JSONFragment()
        try value.writeJSON(into: &out)
        return out.bytes
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, from path: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw AgentError(status: 500, code: "state", message: "\(path) is not an agent state file (\(error)); move it aside to start afresh")
        }
    }
}

extension AgentProtocol {
    public static func json(_ run: AgentRun) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("run_id", .string(run.runID)), ("uid", .number(Double(run.uid))), ("began_at", .string(run.begin.timestamp.text)),
            ("devices", .array(run.scope.map { .string($0) })),
        ]
        if !run.labels.isEmpty { members.append(("labels", .object(run.labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        let shared = run.sharedBy.filter { $0.value > 1 }.sorted { $0.key < $1.key }
        if !shared.isEmpty { members.append(("shared_by_runs", .object(shared.map { ($0.key, .number(Double($0.value))) }))) }
        if !run.notes.isEmpty { members.append(("notes", .array(run.notes.map { .string($0) }))) }
        return .object(members)
    }
}
