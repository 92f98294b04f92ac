import ArgumentParser
import EmitContract
import EmitTransport
import Foundation
import ServiceLifecycle

struct OutboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "Inspect, fill, export and deliver the local outbox.",
        discussion: """
            The outbox is a SQLite database ($EMIT_HOME/outbox.sqlite, WAL, synchronous=FULL) keyed \
            by event_id: an event is on disk before a command reports it emitted, and the same event \
            added twice is stored once. emit run and emit model write to it when --out is not given.
            """,
        subcommands: [OutboxAdd.self, OutboxStatus.self, OutboxExport.self, OutboxFlush.self]
    )
}

/// Thrown inside the insert transaction to roll it back when any event is invalid.
private struct RolledBack: Error {}

/// `--outbox FILE`, shared by the outbox commands.
struct OutboxLocation: ParsableArguments {
    @Option(name: .customLong("outbox"), help: ArgumentHelp("The outbox database (default: $EMIT_HOME/outbox.sqlite).", valueName: "FILE"))
    var path: String?

    /// `mustExist`: a command that only reads (status, export, flush) refuses an outbox named
    /// with --outbox that is not there, rather than creating an empty one and reporting on it.
    func open(mustExist: Bool = false) throws -> EventDatabase {
        let file = path ?? EmitHome.outboxPath
        if mustExist, let path, !FileManager.default.fileExists(atPath: path) {
            throw CommandFailure.usage("--outbox: \(path) does not exist (an outbox is created by the commands that write events: emit run, emit outbox add)")
        }
        do { return try EventDatabase(path: file) } catch {
            throw CommandFailure.usage("\(error)")
        }
    }
}

struct OutboxAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Validate events from JSON/JSON Lines files and enqueue them, all or nothing.",
        discussion: "Any invalid event: nothing is enqueued, every problem is listed as emit validate lists it, exit 1."
    )

    @OptionGroup var outbox: OutboxLocation

    @Argument(help: "Event files (.json, .jsonl, .ndjson) or - for stdin.")
    var files: [String] = ["-"]

    func run() throws {
        // Stdin cannot be read twice: keep it in a temporary file for the second pass.
        var paths = files
        var spooled: String?
        if let stdinIndex = files.firstIndex(of: "-") {
            let spool = FileManager.default.temporaryDirectory.appendingPathComponent("emit-outbox-add-\(UUID().uuidString).jsonl").path
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard FileManager.default.createFile(atPath: spool, contents: data) else {
                throw CommandFailure.usage("outbox add: cannot spool stdin to \(spool)")
            }
            paths[stdinIndex] = spool
            spooled = spool
        }
        defer { if let spooled { try? FileManager.default.removeItem(atPath: spooled) } }

        // One streaming pass inside one transaction: valid events are inserted as they are read,
        // every problem is listed, and any invalid event rolls the whole transaction back.
        let database = try outbox.open()
        var invalid = 0
        var valid = 0
        let result: (added: Int, offered: Int)
        do {
            result = try database.addInOneTransaction { inserter in
                for (file, path) in zip(files, paths) {
                    if EventFileReader.isJSONDocument(path) {
                        try EventFileReader.forEachRecord(path: path) { record in
                            let (position, findings) = Validator.standard.findings(of: record)
                            guard findings.isEmpty, case let .element(_, value) = record, let id = value["event_id"]?.stringValue else {
                                invalid += 1
                                for finding in findings { Console.out("\(file):\(position): \(finding)") }
                                return
                            }
                            valid += 1
                            if invalid == 0 { try inserter.insert(id: id, body: JSONWriter.line(value)) }
                        }
                    } else {
                        try EventFileReader.forEachLineBatch(path: path) { batch in
                            for (line, (number, findings, id)) in zip(batch, ParallelValidation.validateKeepingIDs(batch, with: .standard)) {
                                guard findings.isEmpty, let id else {
                                    invalid += 1
                                    for finding in findings { Console.out("\(file):\(number): \(finding)") }
                                    continue
                                }
                                valid += 1
                                if invalid == 0 { try inserter.insert(id: id, body: line.1) }
                            }
                        }
                    }
                }
                if invalid > 0 { throw RolledBack() }
            }
        } catch is RolledBack {
            Console.out("\(valid) valid, \(invalid) invalid")
            throw CommandFailure.rejected("outbox add: nothing enqueued: \(invalid) invalid event(s)")
        } catch let error as EventFileError {
            throw CommandFailure.usage("outbox add: \(error); nothing was enqueued")
        } catch {
            throw CommandFailure.usage("outbox add: could not store the events in \(database.path) (\(StorageFailure.describe(error, at: database.path))); nothing was enqueued, the input files are unchanged")
        }
        Console.error("emit outbox: \(result.added) added, \(result.offered - result.added) already in the outbox")
    }
}

struct OutboxStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Counts of pending, delivered and rejected events, and the age of the oldest pending one.")

    @OptionGroup var outbox: OutboxLocation

    @Flag(help: "Print one JSON object: pending, delivered, rejected, oldest_pending_age_seconds.")
    var json = false

    func run() throws {
        let database = try outbox.open(mustExist: true)
        let counts: EventDatabase.Counts
        do { counts = try database.counts() } catch { throw CommandFailure.usage("outbox status: \(database.path): \(StorageFailure.describe(error, at: database.path))") }
        let age = counts.oldestPendingAddedAt.map { max(0, Date().timeIntervalSince($0)) }
        if json {
            Console.out(JSONWriter.line(.object([
                ("pending", .number(Double(counts.pending))), ("delivered", .number(Double(counts.delivered))),
                ("rejected", .number(Double(counts.rejected))), ("oldest_pending_age_seconds", age.map { .number(($0 * 1000).rounded() / 1000) } ?? .null),
                ("path", .string(database.path)),
            ])))
            return
        }
        Console.out("outbox \(database.path)")
        Console.out("  pending    \(counts.pending)\(age.map { String(format: " (oldest %.0f s old)", $0) } ?? "")")
        Console.out("  delivered  \(counts.delivered)")
        Console.out("  rejected   \(counts.rejected)")
    }
}

struct OutboxExport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write outbox events as JSON Lines.")

    @OptionGroup var outbox: OutboxLocation

    @Flag(name: .customLong("pending"), help: "Only events not yet delivered.")
    var pendingOnly = false

    @Flag(name: .customLong("rejected"), help: "Only events the receiver refused; why, on stderr (one line per event).")
    var rejectedOnly = false

    @Flag(name: .customLong("all"), help: "Every event, whatever its state (the default).")
    var all = false

    @Option(name: .customLong("out"), help: ArgumentHelp("FILE (appended) or - for stdout (the default).", valueName: "FILE|-"))
    var destination: String = "-"

    func validate() throws {
        if [pendingOnly, rejectedOnly, all].filter({ $0 }).count > 1 { throw ValidationError("--pending, --rejected and --all exclude each other") }
    }

    func run() throws {
        let database = try outbox.open(mustExist: true)
        var handle: FileHandle?
        if destination != "-" {
            if !FileManager.default.fileExists(atPath: destination), !FileManager.default.createFile(atPath: destination, contents: nil) {
                throw CommandFailure.usage("cannot create \(destination)")
            }
            guard let opened = FileHandle(forWritingAtPath: destination) else { throw CommandFailure.usage("cannot open \(destination) for appending") }
            opened.seekToEndOfFile()
            handle = opened
        }
        defer { try? handle?.close() }
        var count = 0
        var chunk = ""
        do {
            let reasons = rejectedOnly ? try database.rejectionCodes() : [:]
            try database.forEach(state: pendingOnly ? .pending : rejectedOnly ? .rejected : nil) { stored in
                count += 1
                if rejectedOnly { Console.error("rejected \(stored.eventID): \(reasons[stored.eventID] ?? "no reason kept")") }
                if let handle {
                    chunk += stored.body + "\n"
                    if chunk.utf8.count > 1 << 20 { handle.write(Data(chunk.utf8)); chunk = "" }
                } else {
                    Console.out(stored.body)
                }
            }
            if let handle, !chunk.isEmpty { handle.write(Data(chunk.utf8)) }
        } catch {
            throw CommandFailure.usage("outbox export: \(StorageFailure.describe(error))")
        }
        Console.error("emit outbox: exported \(count) event(s)")
    }
}

struct OutboxFlush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush",
        abstract: "Deliver pending events to an ingest endpoint (POST /v1/events).",
        discussion: """
            Batches are marked delivered or rejected only after the receiver answered for them; \
            401/403 stop at once and change nothing; 5xx, timeouts and connection errors keep \
            events pending and are retried with exponential backoff and jitter until \
            --give-up-after. Plain HTTP is refused to a non-loopback host unless \
            --allow-insecure-http.

            SIGTERM or SIGINT stops the flush once the batches on the wire are answered, within \
            8 s (one still unanswered then stays pending and goes with the next flush).

            Exit 0 when nothing is left pending (or --follow was stopped by a signal), 1 when some \
            were rejected, 3 when events remain pending after giving up or a signal, 2 on a usage \
            or authorization error.
            """
    )

    @OptionGroup var outbox: OutboxLocation

    @Option(name: .customLong("to"), help: ArgumentHelp("The receiver, e.g. https://ingest.example:8786 (/v1/events is appended to a bare host; /v1/logs with --protocol otlp).", valueName: "URL"))
    var url: String

    @OptionGroup var delivery: DeliveryOptions

    @Option(name: .customLong("token-file"), help: ArgumentHelp("A file holding the bearer token.", valueName: "FILE"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Events per request (about 3.5 MB of JSON at 5000; a receiver answering 413 makes it halve).", valueName: "N"))
    var batch: Int = FlushOptions.defaultBatchSize

    @Flag(help: "Keep running and deliver new events as they arrive.")
    var follow = false

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM certificates to trust for https (a private CA).", valueName: "FILE"))
    var caFile: String?

    @Flag(name: .customLong("allow-insecure-http"), help: "Allow plain HTTP to a host that is not loopback.")
    var allowInsecureHTTP = false

    @Option(name: .customLong("give-up-after"), parsing: .unconditional, help: ArgumentHelp("Stop retrying after failing this long without progress (e.g. 30s, 5m).", valueName: "D"))
    var giveUpAfter: String = "5m"

    @Option(name: .customLong("connect-timeout"), parsing: .unconditional, help: ArgumentHelp("Longest wait for a connection to the receiver (a refused one fails at once).", valueName: "D"))
    var connectTimeout: String = "5s"

    @Option(name: .customLong("request-timeout"), parsing: .unconditional, help: ArgumentHelp("Longest wait for the receiver's answer to one batch.", valueName: "D"))
    var requestTimeout: String = "60s"

    func run() async throws {
        guard batch > 0 else { throw CommandFailure.usage("--batch must be at least 1") }
        let (deliveryProtocol, encoding, headers) = try delivery.resolved()
        var options: FlushOptions
        do {
            options = FlushOptions(endpoint: try FlushOptions.endpoint(from: url, allowInsecureHTTP: allowInsecureHTTP, protocol: deliveryProtocol))
        } catch {
            throw CommandFailure.usage("outbox flush: \(error)")
        }
        options.deliveryProtocol = deliveryProtocol
        options.otlpEncoding = encoding
        options.headers = headers
        options.token = try tokenFile.map(TokenFile.read)
        options.batchSize = batch
        options.follow = follow
        options.caFile = caFile
        options.gzip = delivery.gzip
        options.giveUpAfter = try Durations.seconds(giveUpAfter, flag: "--give-up-after")
        options.connectTimeout = try Durations.seconds(connectTimeout, flag: "--connect-timeout")
        options.requestTimeout = try Durations.seconds(requestTimeout, flag: "--request-timeout")
        let flusher = try Flusher(outbox: try outbox.open(mustExist: true), options: options, log: { Console.error("emit outbox flush: \($0)") })
        // A service, so that SIGTERM or SIGINT stops it once the batches on the wire are answered.
        let delivery = DeliveryService(flusher)
        let outcome: FlushOutcome
        do {
            try await Daemon.run("emit-outbox-flush", [.init(service: delivery, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "delivery")])
            guard case .success(let ended)? = delivery.outcome else { throw CancellationError() }
            outcome = ended
        } catch let error as FlushError {
            throw CommandFailure.usage("outbox flush: \(error)")
        } catch is CancellationError {
            throw CommandFailure(exitCode: 3, message: "outbox flush: stopped by a signal before the receiver answered; what was on the wire stays pending for the next flush")
        } catch {
            throw CommandFailure(exitCode: 3, message: "outbox flush: \(StorageFailure.describe(error))")
        }
        // A collector does not say what it held already (OTLP is at-least-once; sinks deduplicate).
        let held = options.deliveryProtocol == .emit ? " (\(outcome.duplicates) already held by the receiver)" : ""
        let stopped = outcome.stopped ? " (stopped by a signal; they go with the next flush)" : ""
        Console.error("emit outbox flush: \(outcome.delivered) delivered\(held), \(outcome.rejected) rejected, \(outcome.pending) pending\(stopped)")
        if outcome.stopped, !follow {
            throw CommandFailure(exitCode: 3, message: "outbox flush: stopped before the outbox was empty")
        }
        if let reason = outcome.gaveUp, outcome.pending > 0 {
            throw CommandFailure(exitCode: 3, message: "outbox flush: \(reason)")
        }
        if outcome.rejected > 0 { throw CommandFailure.rejected("outbox flush: \(outcome.rejected) event(s) rejected; see emit outbox export") }
    }
}

/// Secrets come from files, never from the command line, and are never printed.
enum TokenFile {
    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure.usage("cannot read the token file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw CommandFailure.usage("the token file \(path) is empty") }
        return token
    }
}
