import ArgumentParser
import EmitAgent
import EmitContract
import EmitMeters
import EmitOTLP
import EmitSessions
import EmitTransport
import Foundation
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "The node agent: meters every local device continuously and serves run windows to unprivileged jobs.",
        discussion: """
            `emit agent` (or `emit agent serve`) runs as root, one per node: it holds the counters \
            (RAPL is root-only since Linux 5.10), samples them on one clock, and serves runs over a \
            Unix socket (HTTP/1.1, JSON). A run is the difference of two readings of that one \
            sampler, so a hundred open runs cost no more sampling than one. The caller's uid comes \
            from the kernel (SO_PEERCRED): only the uid that began a run, or root, may read or end it.

            A job's user types nothing new: `emit run` uses the agent whenever its socket exists \
            ($EMIT_AGENT_SOCKET, else /run/emit/agent.sock; --no-agent meters locally). Scheduler \
            hooks use `emit agent begin` and `emit agent end` (examples/slurm).

            Open runs and each device's last reading are checkpointed every interval \
            ($EMIT_HOME, default /var/lib/emit: agent-runs.jsonl, agent-sampler.1 and .2): after `kill -9` or a restart the \
            run goes on and the counter delta across the downtime still counts where no reset and \
            at most one wrap can have happened; after a reboot the window says counter_resets.
            """,
        subcommands: [AgentServeCommand.self, AgentBeginCommand.self, AgentEndCommand.self, AgentStatusCommand.self],
        defaultSubcommand: AgentServeCommand.self
    )
}

/// `emit agent --config FILE`: the serve flags as JSON members, for a unit file that stays short.
///
/// ```json
/// {"socket": "/run/emit/agent.sock", "socket_group": "emit", "interval": "1s",
///  "source": "rapl,nvml", "to": "https://ingest.example:8786", "token_file": "/etc/emit/token",
///  "metrics_listen": "127.0.0.1:9464"}
/// ```
/// A member the command line also sets is taken from the command line. Unknown members, wrong
/// types and literal secrets are refused, every problem listed with its member.
enum AgentConfigFile {
    static var strings: [String: WritableKeyPath<AgentServeCommand, String?>] { [
        "socket": \.socket.path, "socket_group": \.socketGroup, "source": \.meters.sources, "dcgm_url": \.meters.dcgmURL,
        "ipmi_host": \.meters.ipmiHost, "ipmi_username": \.meters.ipmiUsername, "ipmi_password_file": \.meters.ipmiPasswordFile,
        "redfish_url": \.meters.redfishURL, "redfish_chassis": \.meters.redfishChassis, "redfish_username": \.meters.redfishUsername,
        "redfish_password_file": \.meters.redfishPasswordFile, "redfish_ca_file": \.meters.redfishCAFile,
        "to": \.deliverTo, "token_file": \.tokenFile, "ca_file": \.caFile, "metrics_listen": \.metricsListen,
        "protocol": \.delivery.deliveryProtocol, "otlp_encoding": \.delivery.otlpEncoding,
        "otlp_metrics_to": \.otlpMetricsTo, "otlp_metrics_interval": \.otlpMetricsInterval,
    ] }
    static var defaulted: [String: (WritableKeyPath<AgentServeCommand, String>, String)] { [
        "interval": (\.interval, "1s"), "rapl_zones": (\.meters.raplZones, "default"), "bmc_class": (\.meters.bmcClass, "node"),
    ] }
    static var flags: [String: WritableKeyPath<AgentServeCommand, Bool>] { [
        "redfish_session": \.meters.redfishSession, "allow_insecure_http": \.allowInsecureHTTP, "metrics_allow_remote": \.metricsAllowRemote,
        "gzip": \.delivery.gzip,
    ] }

    static func apply(_ path: String, to command: inout AgentServeCommand) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure.usage("--config: cannot read \(path)") }
        let root: JSONValue
        do { root = try JSONParser.parse(Array(data)) } catch { throw CommandFailure.usage("--config: \(path) is not JSON: \(error)") }
        guard case .object(let members) = root else { throw CommandFailure.usage("--config: \(path) must hold a JSON object") }
        var problems: [String] = []
        for (name, value) in members {
            if let key = strings[name] {
                guard let text = value.stringValue, !text.isEmpty else { problems.append("\(path): \(name): must be a non-empty string"); continue }
                if command[keyPath: key] == nil { command[keyPath: key] = text }
            } else if let (key, fallback) = defaulted[name] {
                guard let text = value.stringValue, !text.isEmpty else { problems.append("\(path): \(name): must be a non-empty string"); continue }
                if command[keyPath: key] == fallback { command[keyPath: key] = text }
            } else if let key = flags[name] {
                guard let flag = value.boolValue else { problems.append("\(path): \(name): must be true or false"); continue }
                command[keyPath: key] = command[keyPath: key] || flag
            } else if name.hasSuffix("password") || name == "token" {
                problems.append("\(path): \(name): secrets are named by file (\(name)_file), never written in the configuration")
            } else {
                problems.append("\(path): \(name): unknown member (expected \((strings.keys.sorted() + defaulted.keys.sorted() + flags.keys.sorted()).joined(separator: ", ")))")
            }
        }
        if !problems.isEmpty { throw CommandFailure.usage("--config: \(problems.count) problem(s):\n" + problems.joined(separator: "\n")) }
    }
}

/// The socket flag every agent subcommand shares.
struct AgentSocketOption: ParsableArguments {
    @Option(name: .customLong("socket"), help: ArgumentHelp("The agent's control socket (default: $EMIT_AGENT_SOCKET, else \(AgentSocket.defaultPath)).", valueName: "PATH"))
    var path: String?

    var resolved: String { path ?? AgentClient.socketPath() }
    var client: AgentClient { AgentClient(socketPath: resolved) }
}

/// Where the agent keeps its state and outbox: EMIT_HOME, else /var/lib/emit.
enum AgentHome {
    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["EMIT_HOME"], !home.isEmpty { return home }
        return "/var/lib/emit"
    }
}

struct AgentServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the agent (the default subcommand).",
        discussion: """
            Listens on --socket (mode 0600, or 0660 with --socket-group). Refuses a socket another \
            agent listens on and removes a stale one. SIGTERM or SIGINT stops it gracefully \
            within 8 s: the batches delivery has on the wire are answered and marked (one still \
            unanswered then goes again at the next start), a last metrics push, then a last \
            checkpoint. Open runs survive in the state file.

            Events of runs ended without --out go to the agent's outbox ($EMIT_HOME/outbox.sqlite); \
            with --to URL --token-file F they are delivered continuously (the flush of \
            `emit outbox flush`: batches, backoff, exactly once at the receiver); delivery refused \
            for good (a wrong token) is logged and stops, metering goes on. \
            --metrics-listen HOST:PORT serves /metrics for Prometheus: hw_energy_joules_total per \
            device (hw_host_energy_joules_total for the BMC's node reading) and the agent's health.
            """
    )

    @OptionGroup var socket: AgentSocketOption

    @Option(name: .customLong("socket-group"), help: ArgumentHelp("Group allowed to use the socket (mode 0660); without it only root can.", valueName: "GROUP"))
    var socketGroup: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Sampling and checkpoint interval (1s, 500ms, ...).", valueName: "D"))
    var interval: String = "1s"

    @OptionGroup var meters: MeterOptions

    @Option(name: .customLong("to"), help: ArgumentHelp("Deliver the outbox continuously to this receiver.", valueName: "URL"))
    var deliverTo: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Bearer token for --to.", valueName: "FILE"))
    var tokenFile: String?

    @OptionGroup var delivery: DeliveryOptions

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM certificates to trust for --to over https.", valueName: "FILE"))
    var caFile: String?

    @Flag(name: .customLong("allow-insecure-http"), help: "Allow --to over plain HTTP to a host that is not loopback.")
    var allowInsecureHTTP = false

    @Option(name: .customLong("otlp-metrics-to"), help: ArgumentHelp(
        "Push each device's cumulative energy as OpenTelemetry hw.energy / hw.host.energy metrics (OTLP/HTTP; /v1/metrics is appended) every --otlp-metrics-interval.",
        valueName: "URL"))
    var otlpMetricsTo: String?

    @Option(name: .customLong("otlp-metrics-interval"), parsing: .unconditional, help: ArgumentHelp("How often to push the metrics (default: the sampling interval).", valueName: "D"))
    var otlpMetricsInterval: String?

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Serve Prometheus /metrics here, e.g. 127.0.0.1:9464 (default: off).", valueName: "HOST:PORT"))
    var metricsListen: String?

    @Flag(name: .customLong("metrics-allow-remote"), help: "Allow --metrics-listen on an address that is not loopback (the metrics carry no token).")
    var metricsAllowRemote = false

    @Option(name: .customLong("config"), help: ArgumentHelp("A JSON file whose members are these flags' names with underscores (\"socket_group\": \"emit\"); flags given here win.", valueName: "FILE"))
    var config: String?

    func run() async throws {
        var command = self
        if let config { try AgentConfigFile.apply(config, to: &command) }
        try await command.serve()
    }

    private func serve() async throws {
        let intervalSeconds = try Durations.seconds(interval, flag: "--interval")
        let metricsAddress = try metricsListen.map { try Self.address($0) }
        if let metricsAddress, !metricsAllowRemote, !Self.isLoopback(metricsAddress.host) {
            throw CommandFailure.usage("--metrics-listen: \(metricsAddress.host) is not a loopback address; say --metrics-allow-remote to serve the metrics beyond this node")
        }
        // Known before the agent starts metering, not when /metrics fails to open after it.
        if let metricsAddress, let problem = ListenCheck.problem(host: metricsAddress.host, port: metricsAddress.port, flag: "--metrics-listen") {
            throw CommandFailure.usage(problem)
        }
        var flushOptions: FlushOptions?
        if let deliverTo {
            let (deliveryProtocol, encoding, headers) = try delivery.resolved(metricsToo: otlpMetricsTo != nil)
            do {
                flushOptions = FlushOptions(endpoint: try FlushOptions.endpoint(from: deliverTo, allowInsecureHTTP: allowInsecureHTTP, protocol: deliveryProtocol))
            } catch {
                throw CommandFailure.usage("--to: \(error)")
            }
            flushOptions?.deliveryProtocol = deliveryProtocol
            flushOptions?.otlpEncoding = encoding
            flushOptions?.headers = headers
            flushOptions?.token = try tokenFile.map(TokenFile.read)
            flushOptions?.follow = true
            flushOptions?.caFile = caFile
            flushOptions?.gzip = delivery.gzip
            flushOptions?.giveUpAfter = .infinity
        } else if tokenFile != nil {
            throw CommandFailure.usage("--token-file is for --to: name the receiver too")
        } else if delivery.deliveryProtocol != nil || (delivery.otlpEncoding != nil || !delivery.headers.isEmpty || delivery.gzip) && otlpMetricsTo == nil {
            throw CommandFailure.usage("--protocol, --otlp-encoding, --header and --gzip are for --to or --otlp-metrics-to: name the receiver too")
        }
        var metricsTarget: OTLPMetricsTarget?
        if let otlpMetricsTo {
            let url: URL
            do { url = try FlushOptions.endpoint(from: otlpMetricsTo, allowInsecureHTTP: allowInsecureHTTP, protocol: .otlp) } catch {
                throw CommandFailure.usage("--otlp-metrics-to: \(error)")
            }
            let base = url.absoluteString.hasSuffix(OTLPLogs.path) ? String(url.absoluteString.dropLast(OTLPLogs.path.count)) : url.absoluteString
            var target = OTLPMetricsTarget(url: URL(string: base.hasSuffix(OTLPMetrics.path) ? base : base + OTLPMetrics.path) ?? url,
                                           interval: try otlpMetricsInterval.map { try Durations.seconds($0, flag: "--otlp-metrics-interval") } ?? intervalSeconds)
            let (_, encoding, headers) = try delivery.resolved(metricsToo: true)
            target.encoding = encoding
            target.headers = headers
            target.gzip = delivery.gzip
            target.caFile = caFile
            metricsTarget = target
        } else if otlpMetricsInterval != nil {
            throw CommandFailure.usage("--otlp-metrics-interval is for --otlp-metrics-to")
        }
        var group: gid_t?
        if let socketGroup {
            guard let entry = getgrnam(socketGroup) else { throw CommandFailure.usage("--socket-group: no group \"\(socketGroup)\" on this system") }
            group = entry.pointee.gr_gid
        }
        let home = AgentHome.path
        do { try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]) } catch {
            throw CommandFailure.usage("cannot create the state directory \(home): \(error.localizedDescription)")
        }
        let listening = AgentSocket(path: socket.resolved, group: group)
        do { try AgentServer.prepare(listening) } catch { throw CommandFailure.usage(error.message) }
        let (opened, notes) = try meters.selection().open()
        let agent: Agent
        do {
            agent = try Agent(configuration: AgentConfiguration(stateDirectory: home, nodeID: NodeIdentity.current(), interval: intervalSeconds), meters: opened)
        } catch let error as AgentError {
            throw CommandFailure.usage(error.message)
        }
        guard !agent.devices.isEmpty else {
            for problem in opened.flatMap(\.problems) + notes { Console.error("  \(problem.source.rawValue): \(problem.reason)") }
            throw CommandFailure.usage("agent: no device can be metered on this node (above: why); nothing to serve")
        }
        if let note = agent.sampler.intervalNote { Console.error("emit agent: \(note)") }
        let outbox = (home as NSString).appendingPathComponent("outbox.sqlite")
        agent.start()
        Console.error("emit agent: metering \(agent.devices.count) device(s) every \(Durations.text(agent.sampler.intervalSeconds)); socket \(listening.path); state and outbox in \(home)")
        for problem in opened.flatMap(\.problems) + notes { Console.error("  not metered: \(problem.source.rawValue)\(problem.deviceID.map { " \($0)" } ?? ""): \(problem.reason)") }
        Console.flush()
        // Start-up (parsing, discovery, the first rounds, the server's set-up) and the first
        // request of each kind (the runtime resolving conformances once, caches filled once)
        // touch pages of the binary that the agent will not touch again: given back once each
        // has settled, the agent's RSS is what it runs on.
        StartupPages.release()
        DispatchQueue.global().asyncAfter(deadline: .now() + 2 * max(1, intervalSeconds)) { StartupPages.release() }
        let firstUse = StartupPages.AfterFirstUse()
        // One connection pool for the agent's life, opened before anything is served (an
        // outbox the agent cannot open stops it now, not at the first run's end), with a small
        // page cache: runs' events arrive a few at a time.
        let database: EventDatabase
        do { database = try EventDatabase(path: outbox, pageCacheKiB: 2 << 10) } catch {
            agent.stop()
            throw CommandFailure.usage("agent: outbox: \(error)")
        }
        let pending: @Sendable () -> Int? = { try? database.counts().pending }
        // Where delivery goes, or why it stopped (a stop is logged once; status keeps saying it).
        let deliveryState = Mutex<String?>(flushOptions.map { "to \($0.endpoint.absoluteString)" })
        let server: AgentServer
        do {
            server = try AgentServer(
                agent: agent, socket: listening,
                deliver: { events in
                    do { _ = try database.add(events) } catch { throw StorageFailure.Described(error, at: outbox) }
                },
                health: {
                    [("outbox", .string(outbox)), ("outbox_pending", pending().map { .number(Double($0)) } ?? .null)]
                        + (deliveryState.withLock { $0 }.map { [("delivery", .string($0))] } ?? [])
                },
                served: { firstUse.used($0) })
        } catch {
            agent.stop()
            throw CommandFailure.usage(error.message)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            // Shut down in reverse order: delivery, pushes and endpoints first, the sampling last.
            .init(service: Agent.Sampling(agent), serviceName: "sampling"),
            .init(service: server, serviceName: "socket"),
        ]
        if let metricsAddress {
            let metrics = AgentMetrics.application(agent: agent, host: metricsAddress.host, port: metricsAddress.port, outboxPending: pending,
                                                   scraped: { firstUse.used("metrics") },
                                                   onRunning: { port in Console.error("emit agent: metrics on http://\(metricsAddress.host):\(port)/metrics") })
            services.append(.init(service: metrics, serviceName: "metrics"))
        }
        if let metricsTarget {
            let pusher = AgentMetricsPusher(agent: agent, target: metricsTarget, log: { Console.error("emit agent (metrics): \($0)") })
            services.append(.init(service: pusher, serviceName: "metrics push"))
        }
        if let flushOptions {
            let flusher: Flusher
            do { flusher = try Flusher(outbox: database, options: flushOptions, log: { Console.error("emit agent (delivery): \($0)") }) } catch {
                agent.stop()
                throw CommandFailure.usage("--to: \(error)")
            }
            // Delivery that stops (refused credentials, a collector refusing for good) leaves
            // the events in the outbox; metering goes on. One whose outbox fails (a full disk)
            // waits and tries again.
            let destination = "to \(flushOptions.endpoint.absoluteString)"
            let delivery = DeliveryService(flusher, paused: { reason in
                deliveryState.withLock { $0 = reason.map { "paused: \($0)" } ?? destination }
            }, stoppedForGood: { reason in
                deliveryState.withLock { $0 = "stopped: \(reason)" }
                Console.error("emit agent (delivery): stopped: \(reason); events stay in the outbox (emit outbox flush delivers them); metering goes on")
            })
            services.append(.init(service: delivery, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore, serviceName: "delivery"))
        }
        do {
            try await Daemon.run("emit-agent", services)
        } catch {
            agent.stop()
            unlink(listening.path)
            throw CommandFailure.usage(metricsAddress.map { ListenCheck.describe(error, host: $0.host, port: $0.port, flag: "--metrics-listen", otherwise: "agent") }
                                       ?? "agent: \(error)")
        }
        agent.stop()  // already stopped by its service; a no-op then
        unlink(listening.path)
    }

    static func address(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CommandFailure.usage("--metrics-listen: \"\(text)\" is not HOST:PORT")
        }
        return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

struct AgentBeginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "begin",
        abstract: "Begin a run in the agent (a scheduler's prolog).",
        discussion: """
            Without --devices the scope is the GPUs in CUDA_VISIBLE_DEVICES or \
            NVIDIA_VISIBLE_DEVICES (indices or UUIDs; a MIG UUID is metered as its whole GPU, and \
            the run says so), else every device. CPU packages and node meters are always metered \
            whole unless --devices names packages.
            """
    )

    @Option(name: .customLong("run-id"), help: "The compute_assignment_run_id.")
    var runID: String

    @Option(help: ArgumentHelp("Comma-separated GPU indices, GPU-/MIG- UUIDs and package-N ids.", valueName: "LIST"))
    var devices: String?

    @Option(name: .customLong("label"), help: ArgumentHelp("A label for the run's events (repeatable).", valueName: "KEY=VALUE"))
    var labels: [String] = []

    @OptionGroup var socket: AgentSocketOption

    func run() throws {
        let request = AgentProtocol.BeginRequest(runID: runID, scope: AgentRunScope.request(devices: devices), labels: try AgentLabels.parse(labels))
        let run: JSONValue
        do { run = try socket.client.begin(request) } catch { throw CommandFailure.usage("agent: \(error.message)") }
        Console.out(JSONWriter.line(run))
        if case .array(let notes)? = run["notes"] {
            for note in notes { Console.error("emit agent begin: \(note.stringValue ?? "")") }
        }
    }
}

struct AgentEndCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end",
        abstract: "End a run in the agent (a scheduler's epilog) and write or store its events.",
        discussion: """
            Without --out the events go to the agent's outbox (delivered by whatever flushes it); \
            with --out FILE or - they come back and are written here. Devices whose readings could \
            not stand as measured energy are listed with the reason.
            """
    )

    @Option(name: .customLong("run-id"), help: "The run to end.")
    var runID: String

    @OptionGroup var output: OutputOptions
    @OptionGroup var socket: AgentSocketOption

    func run() throws {
        let answer: JSONValue
        do { answer = try socket.client.end(AgentProtocol.EndRequest(runID: runID, deliver: output.destination == nil)) } catch {
            throw CommandFailure.usage("agent: \(error.message)")
        }
        let events = try AgentRunEvents.events(in: answer)
        if output.destination != nil || answer["outbox_error"] != nil {
            if let failure = answer["outbox_error"]?.stringValue { Console.error("emit agent end: the agent could not store the events (\(failure)); writing them here") }
            try output.write(events)
        }
        AgentRunEvents.summarize(answer, events: events, title: "emit agent end: \(runID)")
    }
}

struct AgentStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the agent's devices, open runs (yours, or all for root) and outbox."
    )

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @OptionGroup var socket: AgentSocketOption

    func run() throws {
        let health: JSONValue, runs: JSONValue
        do {
            health = try socket.client.health()
            runs = try socket.client.runs()
        } catch {
            throw CommandFailure.usage("agent: \(error.message)")
        }
        if json {
            Console.out(JSONWriter.line(.object([("health", health), ("runs", runs["runs"] ?? .array([]))])))
            return
        }
        Console.out("agent: \(health["status"]?.stringValue ?? "?"), node \(health["node_id"]?.stringValue ?? "?"), \(Int(health["rounds"]?.numberValue ?? 0)) rounds, every \(Int(health["interval_ms"]?.numberValue ?? 0)) ms")
        if case .array(let devices)? = health["devices"] {
            let rows = devices.map { d in
                [d["key"]?.stringValue ?? "", d["class"]?.stringValue ?? "", d["name"]?.stringValue ?? "",
                 d["joules"]?.numberValue.map { String(format: "%.3f", $0) } ?? "-", String(Int(d["failed_reads"]?.numberValue ?? 0))]
            }
            for line in TextTable.render(header: ["DEVICE", "CLASS", "NAME", "JOULES SINCE START", "FAILED READS"], rows: rows) { Console.out("  " + line) }
        }
        if case .array(let open)? = runs["runs"], !open.isEmpty {
            Console.out("open runs:")
            let rows = open.map { r in
                [r["run_id"]?.stringValue ?? "", String(Int(r["uid"]?.numberValue ?? 0)), r["began_at"]?.stringValue ?? "",
                 (r["devices"].flatMap { if case .array(let items) = $0 { items.compactMap(\.stringValue) } else { nil } } ?? []).joined(separator: ",")]
            }
            for line in TextTable.render(header: ["RUN", "UID", "BEGAN", "DEVICES"], rows: rows) { Console.out("  " + line) }
        } else {
            Console.out("open runs: none")
        }
        if let outbox = health["outbox"]?.stringValue {
            Console.out("outbox: \(outbox), \(health["outbox_pending"]?.numberValue.map { String(Int($0)) } ?? "?") pending")
        }
        if let delivery = health["delivery"]?.stringValue { Console.out("delivery: \(delivery)") }
    }
}

/// A run's scope from flags and the environment a job runs in.
enum AgentRunScope {
    static func request(devices: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> DeviceScope.Request {
        if let devices { return DeviceScope.Request(devices: [devices]) }
        return DeviceScope.Request(visibleDevices: environment["CUDA_VISIBLE_DEVICES"] ?? environment["NVIDIA_VISIBLE_DEVICES"])
    }
}

enum AgentLabels {
    static func parse(_ pairs: [String]) throws -> [String: String] {
        var labels: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw CommandFailure.usage("--label: \"\(pair)\" is not KEY=VALUE")
            }
            labels[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        return labels
    }
}

/// The events an end answer carries, validated, and its summary for stderr.
enum AgentRunEvents {
    static func events(in answer: JSONValue) throws -> [EnergyEvent] {
        guard case .array(let items)? = answer["events"] else { return [] }
        return try items.map { item in
            do { return try EnergyEvent(validating: item) } catch {
                throw CommandFailure.usage("agent: an event it returned does not validate (\(error)): \(JSONWriter.line(item))")
            }
        }
    }

    static func summarize(_ answer: JSONValue, events: [EnergyEvent], title: String) {
        let from = answer["valid_from"]?.stringValue ?? "", to = answer["valid_to"]?.stringValue ?? ""
        let stored = answer["stored_in_outbox"]?.numberValue.map { ", \(Int($0)) stored in the agent's outbox" } ?? ""
        Console.error("\(title) — \(from) .. \(to), \(events.isEmpty ? Int(answer["stored_in_outbox"]?.numberValue ?? 0) : events.count) event(s)\(stored) (through the node agent)")
        let rows = events.map { e -> [String] in
            let m = e.json["measurement"]
            let method = m?["method"]?.stringValue == "counter_delta" ? "counter" : "power"
            let resolution = m?["resolution_joules"]?.numberValue.map { " ±" + RunSummary.joules($0) } ?? ""
            var notes: [String] = []
            if let resets = m?["counter_resets"]?.numberValue, resets > 0 { notes.append("\(Int(resets)) reset(s)") }
            if let shared = e.json["labels"]?[Agent.sharedLabel]?.stringValue { notes.append("shared by \(shared) runs") }
            return [e.source.rawValue, e.json["device"]?["class"]?.stringValue ?? "", e.deviceID ?? "", String(format: "%.3f", e.energyJoules),
                    String(format: "%.1f%%", (m?["coverage"]?.numberValue ?? 0) * 100), method + resolution, notes.isEmpty ? "-" : notes.joined(separator: "; ")]
        }
        if !rows.isEmpty {
            for line in TextTable.render(header: ["SOURCE", "CLASS", "DEVICE", "JOULES", "COVERAGE", "EVIDENCE", "NOTES"], rows: rows) { Console.error("  " + line) }
        }
        if case .array(let withheld)? = answer["not_measured"] {
            for item in withheld { Console.error("  not measured: \(item["device"]?.stringValue ?? ""): \(item["reason"]?.stringValue ?? "")") }
        }
    }
}
