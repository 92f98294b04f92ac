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

        // The facility-level members are checked once, on probe events, before any row.
        let recordedAt = WallClock.now()
        let template: FacilityEventTemplate
        do throws(EnergyEvent.Invalid) { template = try settings.template(recordedAt: recordedAt) } catch {
            throw CommandFailure.usage("facility import: \(error.findings.map(\.description).joined(separator: "; "))")
        }

        // One pass over the file: every row checked, the good windows kept compactly; nothing is
        // written until every window has passed, the overlap check included (all or nothing).
        var problems: [ImportProblem] = []
        let shownFile = file
        let isGreenButton = kind == "greenbutton"
        let describe: @Sendable (Int) -> String = { isGreenButton ? "\(shownFile): IntervalReading \($0)" : "\(shownFile):\($0)" }
        var windows = ImportedWindows(describe: describe)
        do {
            try read(path: path, kind: kind, problems: &problems, into: &windows)
        } catch {
            throw CommandFailure.usage("facility import: \(error)")
        }
        let (overlaps, gaps) = windows.check()
        problems += overlaps
        if !problems.isEmpty {
            for problem in problems { Console.out(problem.description.replacingOccurrences(of: path, with: file)) }
            throw CommandFailure.rejected("facility import: \(problems.count) problem(s); nothing emitted")
        }
        for gap in gaps { Console.error("emit facility import: warning: \(gap)") }

        // The events, in file order, in chunks whose lines are built on every core.
        let chunk = 10_000
        for start in stride(from: 0, to: windows.count, by: chunk) {
            try output.write(try FacilityEvents.lines(windows, start..<min(windows.count, start + chunk), template: template, describe: describe))
        }
        Console.error("emit facility import: \(windows.count) facility event(s) from \(windows.count) row(s) of \(file)")
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

    func read(path: String, kind: String, problems: inout [ImportProblem], into windows: inout ImportedWindows) throws {
        switch kind {
        case "greenbutton": try GreenButtonImport.read(path: path, problems: &problems, into: &windows)
        case "jsonl": try TabularImport.read(path: path, format: .jsonl, problems: &problems, into: &windows)
        default: try TabularImport.read(path: path, format: .csv, problems: &problems, into: &windows)
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

/// Writes the event lines of a range of checked windows on every core, in order.
enum FacilityEvents {
    static func lines(_ windows: ImportedWindows, _ range: Range<Int>, template: FacilityEventTemplate,
                      describe: @Sendable (Int) -> String) throws -> EventLines {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, range.count / 256))
        let stride = (range.count + workers - 1) / workers
        let parts = Mutex<[Int: Result<EventLines, CommandFailure>]>([:])
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var lines = EventLines()
            var failure: CommandFailure?
            for i in (range.lowerBound + worker * stride)..<min(range.upperBound, range.lowerBound + (worker + 1) * stride) {
                let window = windows.window(i)
                do throws(EnergyEvent.Invalid) {
                    try lines.append { out throws(EnergyEvent.Invalid) in
                        try template.appendLine(deviceID: window.meterID, window: window.window, energyJoules: window.energyJoules,
                                                provenance: window.provenance, to: &out)
                    }
                } catch {
                    failure = CommandFailure.rejected("\(describe(window.position)): \(error)")
                    break
                }
            }
            let result: Result<EventLines, CommandFailure> = failure.map { .failure($0) } ?? .success(lines)
            parts.withLock { $0[worker] = result }
        }
        var all = EventLines()
        let done = parts.withLock { $0 }
        for worker in 0..<workers {
            switch done[worker] {
            case .success(let lines)?: all.append(contentsOf: lines)
            case .failure(let failure)?: throw failure
            case nil: throw CommandFailure.usage("internal: part \(worker) was not built")
            }
        }
        return all
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
            host: the local BMC in-band); redfish url/chassis/username/password_file/ca_file/session; ups \
            host/port/ups; pdu host/port/community_file (or community)/profile (apc-rpdu2, \
            raritan-pdu2, entity-sensor)/index/outlet/unit/prefer. Credentials come from files only.

            Stops after --windows N whole windows, or on SIGINT/SIGTERM, then writes the partial \
            window up to that moment.
            """
    )

    @Option(help: ArgumentHelp("The JSON configuration: facility and meters.", valueName: "FILE"))
    var config: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Sampling interval of every meter.", valueName: "D"))
    var interval: String = "10s"

    @Option(parsing: .unconditional, help: ArgumentHelp("Length of each emitted window.", valueName: "D"))
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
            // One header, then every problem on a line of its own in the same FILE: FIELD: form.
            throw CommandFailure(exitCode: 1, message: "facility collect: --config: \(error.problems.count) problem(s), nothing collected:\n"
                                 + error.problems.joined(separator: "\n"))
        }
        let sink = EventSink(output)
        let done = DispatchSemaphore(value: 0)
        let wanted = windows
        let collector = FacilityCollector(
            configuration: configuration, interval: intervalSeconds, window: windowSeconds,
            windowClosed: { count in if let wanted, count == wanted { done.signal() } },
            deliver: { sink.write($0) })
        let meteredIDs = Set(collector.meteredDevices.map(\.device.id))
        for problem in collector.problems {
            // A BMC that failed its first read is still sampled (it may come back): a warning.
            let kept = problem.deviceID.map(meteredIDs.contains) ?? false
            Console.error("emit facility collect: \(kept ? "first read failed, still sampled" : "not metered"): \(problem.source.rawValue) \(problem.deviceID ?? ""): \(problem.reason)")
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
