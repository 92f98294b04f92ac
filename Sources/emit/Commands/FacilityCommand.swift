import ArgumentParser
import EmitCampus
import EmitContract
import EmitMeters
import EmitSessions
import Dispatch
import Foundation
import Synchronization

struct FacilityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facility",
        abstract: "The Campus Pack (campus:facility_energy): operator windows and their proration to runs.",
        subcommands: [FacilityImportCommand.self, FacilityCollectCommand.self, FacilityProrateCommand.self]
    )
}

struct FacilityImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Normalize operator energy windows (CSV, JSON Lines, Green Button) into facility-grain events.",
        discussion: """
            CSV: a header naming valid_from, valid_to and exactly one energy column whose name \
            carries its unit (energy_j, energy_wh, energy_kwh, energy_mwh), optional meter_id (the \
            event's device id) and provenance (measured or estimated); columns in any order; a UTF-8 \
            BOM, CRLF, quoted fields and blank lines are accepted. Timestamps are RFC 3339 with any \
            offset, written as UTC. JSON Lines rows use the same members. Green Button: ESPI \
            IntervalReadings of consumption (flowDirection 1, uom 72), source smart_meter.

            All or nothing: when any row is invalid nothing is emitted, every bad row is printed as \
            FILE:LINE: CODE: message, exit 1. Gaps between one meter's windows are warnings on \
            stderr; they are never filled.
            """
    )

    @Option(name: .customLong("facility-id"), help: "The facility the windows belong to.")
    var facilityID: String

    @Option(help: "Region of the facility (at least one of --region, --grid-region).")
    var region: String?

    @Option(name: .customLong("grid-region"), help: "Grid region of the facility.")
    var gridRegion: String?

    @Option(help: "The meter interface: pdu, ups, ipmi, redfish or smart_meter.")
    var source: String

    @Option(name: .customLong("pue-applied"), help: ArgumentHelp("true when the energy already includes facility overhead (never defaulted).", valueName: "true|false"))
    var pueApplied: String

    @Option(help: ArgumentHelp("csv, jsonl or greenbutton (default: from the file name).", valueName: "FORMAT"))
    var format: String?

    @OptionGroup var output: OutputOptions

    @Argument(help: "The export file, or - for stdin.")
    var file: String

    func run() throws {
        guard let source = EnergySource(rawValue: self.source), source.allows(.facility) else {
            throw CommandFailure.usage("--source must be one of pdu, ups, ipmi, redfish, smart_meter (facility-grain sources), not \"\(self.source)\"")
        }
        guard pueApplied == "true" || pueApplied == "false" else { throw CommandFailure.usage("--pue-applied must be true or false") }
        guard region != nil || gridRegion != nil else { throw CommandFailure.usage("give --region or --grid-region (or both)") }
        let kind = try resolveFormat()
        if kind == "greenbutton", source != .smartMeter { throw CommandFailure.usage("Green Button data is a utility meter's: use --source smart_meter") }
        let settings = FacilityImportSettings(facilityID: facilityID, region: region, gridRegion: gridRegion, source: source, pueApplied: pueApplied == "true")

        var path = file
        var spool: String?
        if file == "-" {
            let temp = FileManager.default.temporaryDirectory.appendingPathComponent("emit-facility-\(UUID().uuidString)").path
            guard FileManager.default.createFile(atPath: temp, contents: FileHandle.standardInput.readDataToEndOfFile()) else {
                throw CommandFailure.usage("facility import: cannot spool stdin to \(temp)")
            }
            path = temp
            spool = temp
        }
        defer { if let spool { try? FileManager.default.removeItem(atPath: spool) } }

        // The facility-level fields are checked once, on a probe window, before any row.
        let recordedAt = WallClock.now()
        let probe = FacilityWindow(location: "--facility-id/--region/--grid-region", position: 0, meterID: nil,
                                   window: TimeWindow(from: recordedAt, to: Timestamp(epochSeconds: recordedAt.epochSeconds + 1, nanoseconds: 0)),
                                   energyJoules: 0, provenance: .measured)
        do throws(EnergyEvent.Invalid) { _ = try settings.event(for: probe, recordedAt: recordedAt) } catch {
            throw CommandFailure.usage("facility import: \(error.findings.map(\.description).joined(separator: "; "))")
        }

        // Pass 1: every row checked (nothing written); one compact record per window for the
        // per-meter overlap check.
        var problems: [ImportProblem] = []
        let shownFile = file
        let isGreenButton = kind == "greenbutton"
        var ledger = WindowLedger(describe: { isGreenButton ? "\(shownFile): IntervalReading \($0)" : "\(shownFile):\($0)" })
        var rows = 0
        do {
            try read(path: path, kind: kind, problems: &problems) { window in
                rows += 1
                ledger.add(window, position: window.position)
            }
        } catch {
            throw CommandFailure.usage("facility import: \(error)")
        }
        let (overlaps, gaps) = ledger.check()
        problems += overlaps
        if !problems.isEmpty {
            for problem in problems { Console.out(problem.description.replacingOccurrences(of: path, with: file)) }
            throw CommandFailure.rejected("facility import: \(problems.count) problem(s); nothing emitted")
        }
        for gap in gaps { Console.error("emit facility import: warning: \(gap)") }

        // Pass 2: emit, in chunks of windows whose events are built on every core.
        var chunk: [FacilityWindow] = []
        var emitted = 0
        var ignored: [ImportProblem] = []
        func flush() throws {
            try output.write(try FacilityEvents.build(chunk, settings: settings, recordedAt: recordedAt))
            emitted += chunk.count
            chunk.removeAll(keepingCapacity: true)
        }
        try read(path: path, kind: kind, problems: &ignored) { window in
            chunk.append(window)
            if chunk.count == 10_000 { try flush() }
        }
        if !chunk.isEmpty { try flush() }
        Console.error("emit facility import: \(emitted) facility event(s) from \(rows) row(s) of \(file)")
    }

    func resolveFormat() throws -> String {
        if let format {
            guard ["csv", "jsonl", "greenbutton"].contains(format) else { throw CommandFailure.usage("--format must be csv, jsonl or greenbutton") }
            return format
        }
        let lower = file.lowercased()
        if lower.hasSuffix(".csv") { return "csv" }
        if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") { return "jsonl" }
        if lower.hasSuffix(".xml") { return "greenbutton" }
        throw CommandFailure.usage("cannot tell the format of \(file); pass --format csv|jsonl|greenbutton")
    }

    func read(path: String, kind: String, problems: inout [ImportProblem], _ window: (FacilityWindow) throws -> Void) throws {
        switch kind {
        case "greenbutton": try GreenButtonImport.read(path: path, problems: &problems, window: window)
        case "jsonl": try TabularImport.read(path: path, format: .jsonl, problems: &problems, window: window)
        default: try TabularImport.read(path: path, format: .csv, problems: &problems, window: window)
        }
    }
}

struct FacilityProrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prorate",
        abstract: "Emit a run's facility_proration event (tier estimated) from one facility event.",
        discussion: """
            energy = the facility event's joules × --share; the window and pue_applied are the \
            facility event's; proration.facility_event_id points at it.
            """
    )

    @Option(name: .customLong("facility-event"), help: ArgumentHelp("A file holding exactly one facility-grain event (.json or one JSON line).", valueName: "FILE"))
    var facilityEvent: String

    @Option(name: .customLong("run-id"), help: "The compute_assignment_run_id that gets the share.")
    var runID: String

    @Option(help: "The run's share of the facility window, in (0, 1].")
    var share: Double

    @Option(help: "How the share was computed: declared, gpu_seconds, cpu_seconds, node_seconds, it_energy.")
    var basis: String = "declared"

    @OptionGroup var output: OutputOptions

    func run() throws {
        guard share > 0, share <= 1 else { throw CommandFailure.usage("--share must be within (0, 1], got \(share)") }
        guard let basis = ProrationBasis(rawValue: basis) else {
            throw CommandFailure.usage("--basis must be one of \(ProrationBasis.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var events: [JSONValue] = []
        var problems: [String] = []
        do {
            try EventFileReader.forEachRecord(path: facilityEvent) { record in
                switch record {
                case let .line(n, text):
                    do { events.append(try JSONParser.parse(text)) } catch { problems.append("\(facilityEvent):\(n): invalid_json: \(error)") }
                case let .element(_, value): events.append(value)
                case let .unreadable(n, message): problems.append("\(facilityEvent):\(n): invalid_json: \(message)")
                }
            }
        } catch { throw CommandFailure.usage("facility prorate: \(error)") }
        guard problems.isEmpty else { throw CommandFailure.rejected(problems.joined(separator: "\n")) }
        guard events.count == 1, let json = events.first else {
            throw CommandFailure.usage("\(facilityEvent) must hold exactly one facility event, it holds \(events.count)")
        }
        let facility: EnergyEvent
        do { facility = try EnergyEvent(validating: json) } catch {
            throw CommandFailure.rejected("\(facilityEvent): the facility event is invalid: \(error)")
        }
        let event: EnergyEvent
        do {
            event = try FacilityProrationEventBuilder(facilityEvent: facility, runID: runID, computeShare: share, basis: basis).build(recordedAt: WallClock.now())
        } catch {
            throw CommandFailure.rejected("facility prorate: \(error)")
        }
        try output.write([event])
        Console.error("emit facility prorate: \(JSONWriter.formatNumber(event.energyJoules)) J (\(share) of \(JSONWriter.formatNumber(facility.energyJoules)) J) for run \(runID), pue_applied \(event.pueApplied)")
    }
}

/// Builds facility events for a chunk of checked windows in parallel, in order.
enum FacilityEvents {
    static func build(_ windows: [FacilityWindow], settings: FacilityImportSettings, recordedAt: Timestamp) throws -> [EnergyEvent] {
        let results = Mutex<[Int: Result<EnergyEvent, EnergyEvent.Invalid>]>([:])
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, windows.count / 256))
        let stride = (windows.count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var local: [Int: Result<EnergyEvent, EnergyEvent.Invalid>] = [:]
            for i in (worker * stride)..<min(windows.count, (worker + 1) * stride) {
                do throws(EnergyEvent.Invalid) { local[i] = .success(try settings.event(for: windows[i], recordedAt: recordedAt)) } catch {
                    local[i] = .failure(error)
                }
            }
            results.withLock { all in all.merge(local) { a, _ in a } }
        }
        let all = results.withLock { $0 }
        return try windows.indices.map { i in
            switch all[i] {
            case .success(let event)?: return event
            case .failure(let invalid)?: throw CommandFailure.rejected("\(windows[i].location): \(invalid)")
            case nil: throw CommandFailure.usage("internal: window \(i) was not built")
            }
        }
    }
}

struct FacilityCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Sample live facility meters (IPMI, Redfish, NUT UPS, SNMP PDU) and emit facility windows.",
        discussion: """
            Every --interval each configured meter is read: BMC power through ipmitool (DCMI, or an \
            SDR sensor), Redfish energy counters (else power), a UPS's ups.realpower through upsd, \
            a PDU's energy counter (else power) over SNMP v2c. Every --window one event per meter \
            is written, the windows consecutive and non-overlapping; counters give counter_delta, \
            power readings are integrated (power_integration); reads that fail or that the device \
            marks as not measuring lower coverage and are never counted as 0 W.

            The configuration is JSON: facility_id, region and/or grid_region, and meters, each \
            with id (the event's device id), source (ipmi, redfish, ups, pdu), class, pue_applied \
            and its connection: ipmi host/port/username/password_file/cipher_suite/sensor (no \
            host: the local BMC in-band); redfish url/chassis/username/password_file/ca_file; ups \
            host/port/ups; pdu host/port/community_file (or community)/profile (apc-rpdu2, \
            raritan-pdu2, entity-sensor)/index/outlet/unit/prefer. Credentials come from files only.

            Stops after --windows N whole windows, or on SIGINT/SIGTERM, then writes the partial \
            window up to that moment.
            """
    )

    @Option(help: ArgumentHelp("The JSON configuration: facility and meters.", valueName: "FILE"))
    var config: String

    @Option(help: ArgumentHelp("Sampling interval of every meter.", valueName: "D"))
    var interval: String = "10s"

    @Option(help: ArgumentHelp("Length of each emitted window.", valueName: "D"))
    var window: String = "15m"

    @Option(help: ArgumentHelp("Stop after N whole windows (default: run until interrupted).", valueName: "N"))
    var windows: Int?

    @OptionGroup var output: OutputOptions

    func run() throws {
        let intervalSeconds = try Durations.seconds(interval, flag: "--interval")
        let windowSeconds = try Durations.seconds(window, flag: "--window")
        guard windowSeconds >= intervalSeconds else { throw CommandFailure.usage("--window (\(window)) must be at least --interval (\(interval))") }
        if let windows, windows < 1 { throw CommandFailure.usage("--windows must be at least 1") }
        let configuration: CollectConfiguration
        do { configuration = try CollectConfiguration.load(path: config) } catch {
            throw CommandFailure(exitCode: 1, message: error.description)
        }
        let sink = EventSink(output)
        let done = DispatchSemaphore(value: 0)
        let wanted = windows
        let collector = FacilityCollector(
            configuration: configuration, interval: intervalSeconds, window: windowSeconds,
            windowClosed: { count in if let wanted, count == wanted { done.signal() } },
            deliver: { sink.write($0) })
        for problem in collector.problems {
            Console.error("emit facility collect: not metered: \(problem.source.rawValue) \(problem.deviceID ?? ""): \(problem.reason)")
        }
        guard !collector.meteredDevices.isEmpty else {
            throw CommandFailure(exitCode: 1, message: "facility collect: none of the \(configuration.meters.count) configured meter(s) can be read")
        }
        for device in collector.meteredDevices {
            Console.error("emit facility collect: metering \(device.source.rawValue) \(device.device.id)\(device.device.name.map { " (\($0))" } ?? "")\(device.provenance == .measured ? "" : " as \(device.provenance.rawValue)")")
        }
        Console.flush()

        // SIGINT/SIGTERM end the collection; the partial window is still written.
        let interrupted = Atomic<Bool>(false)
        let stopSignals = [SIGINT, SIGTERM]
        let sources = stopSignals.map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                interrupted.store(true, ordering: .relaxed)
                done.signal()
            }
            source.resume()
            return source
        }
        collector.start()
        done.wait()
        let report = collector.stop(emitPartialWindow: interrupted.load(ordering: .relaxed))
        for source in sources { source.cancel() }
        RunSummary.print(title: "emit facility collect: \(configuration.facilityID)", report, problems: [])
        Console.flush()
        if let failure = sink.failure { throw CommandFailure(exitCode: 1, message: "facility collect: \(failure)") }
    }
}
