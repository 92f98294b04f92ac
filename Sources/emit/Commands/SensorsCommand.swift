import ArgumentParser
import EmitContract
import EmitMeters
import EmitSessions
import Foundation

struct SensorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensors",
        abstract: "List every energy meter on this node, and every one that cannot be used and why.",
        discussion: """
            Probes RAPL (Linux powercap, EMIT_POWERCAP_ROOT), NVML (EMIT_NVML_LIBRARY, default \
            libnvidia-ml.so.1) and, with --dcgm-url, a dcgm-exporter; the BMC (ipmi, redfish) when \
            named with --source.

            Then it watches the meters for --watch (1s; 0s to skip) the way `emit run` does and \
            says, per device, what a window that long would rest on: the counter's delta where \
            the counter advanced and its step (its quantum, or the jump of a counter refreshed \
            less often than it is read) is at most 1% of the energy it counted; else integrated \
            power from the same device; else nothing measured, and why. RESOLUTION is the \
            smallest energy step that evidence shows in the window (measurement.resolution_joules \
            in the events).

            --json prints one object: "devices" (source, class, id, name, index, method, and after \
            a watch "evidence", "resolution_joules", "watts", "withheld"), "notes" (source, id, \
            note) and "unavailable" (source, id, reason).
            """
    )

    @OptionGroup var meters: MeterOptions

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(parsing: .unconditional, help: ArgumentHelp("How long to watch the meters before saying what each window would rest on (0s: no watch).", valueName: "D"))
    var watch: String = "1s"

    func run() throws {
        let (opened, notes) = try meters.selection().open()
        defer { opened.forEach { $0.close() } }
        var rows: [(MeteredDevice, MeasurementMethod)] = []
        for meter in opened {
            for (index, device) in meter.devices.enumerated() {
                rows.append((device, meter.method(of: index)))
            }
        }
        let problems = opened.flatMap(\.problems) + notes
        let meterNotes = opened.flatMap(\.notes)
        let watched = try watchSeconds().map { Self.watch(opened, seconds: $0) }
        if json {
            let devices = rows.enumerated().map { index, row -> JSONValue in
                let (device, method) = row
                var members: [(String, JSONValue)] = [
                    ("source", .string(device.source.rawValue)), ("class", .string(device.device.deviceClass.rawValue)),
                    ("id", .string(device.device.id)),
                ]
                if let name = device.device.name { members.append(("name", .string(name))) }
                if let index = device.device.index { members.append(("index", .number(Double(index)))) }
                members.append(("method", .string(method.rawValue)))
                if let report = watched?.devices[index] {
                    members.append(("evidence", report.method.map { .string($0.rawValue) } ?? .null))
                    members.append(("resolution_joules", report.resolutionJoules.map { .number($0) } ?? .null))
                    members.append(("watts", report.method == nil ? .null : .number(report.averageWatts)))
                    members.append(("withheld", report.withheldReason.map { .string($0) } ?? .null))
                }
                return .object(members)
            }
            let notesJSON = meterNotes.map { note -> JSONValue in
                var members: [(String, JSONValue)] = [("source", .string(note.source.rawValue))]
                if let id = note.deviceID { members.append(("id", .string(id))) }
                members.append(("note", .string(note.reason)))
                return .object(members)
            }
            let unavailable = problems.map { problem -> JSONValue in
                var members: [(String, JSONValue)] = [("source", .string(problem.source.rawValue))]
                if let id = problem.deviceID { members.append(("id", .string(id))) }
                members.append(("reason", .string(problem.reason)))
                return .object(members)
            }
            Console.out(JSONWriter.line(.object([("devices", .array(devices)), ("notes", .array(notesJSON)), ("unavailable", .array(unavailable))])))
            return
        }
        if rows.isEmpty {
            Console.out("no usable energy meter on this node")
        } else {
            let table = rows.enumerated().map { index, row -> [String] in
                let (device, method) = row
                var cells = [device.source.rawValue, device.device.deviceClass.rawValue, device.device.id, device.device.name ?? "", method.rawValue]
                if let report = watched?.devices[index] {
                    cells.append(report.method.map { $0 == .counterDelta ? "counter" : "power" } ?? "none")
                    cells.append(report.resolutionJoules.map { RunSummary.joules($0) } ?? "-")
                    cells.append(report.method == nil ? "-" : String(format: "%.2f", report.averageWatts))
                }
                return cells
            }
            let header = ["SOURCE", "CLASS", "ID", "NAME", "METHOD"] + (watched == nil ? [] : ["EVIDENCE", "RESOLUTION", "AVG W"])
            for line in TextTable.render(header: header, rows: table) { Console.out(line) }
            if let watched {
                Console.out(String(format: "(evidence and resolution for a %.3g s window)", watched.window?.seconds ?? 0))
                let withheld = watched.devices.filter { $0.withheldReason != nil }
                if !withheld.isEmpty {
                    Console.out("")
                    Console.out("not measured over the watch:")
                    for d in withheld {
                        Console.out("  \(d.device.source.rawValue) \(d.device.device.id): \(d.withheldReason ?? "")")
                    }
                }
            }
        }
        for case let redfish as RedfishMeter in opened where redfish.chassis.count > 1 {
            Console.out("")
            Console.out("redfish chassis (one is metered; a chassis that contains others already includes them):")
            let table = redfish.chassis.map { c in
                [c.id, c.counter?.label ?? "-", c.power?.label ?? "-",
                 c.contains.isEmpty ? "-" : c.contains.joined(separator: ", "), c.onlyThroughContains ? "Links.Contains only" : "collection"]
            }
            for line in TextTable.render(header: ["CHASSIS", "COUNTER", "POWER", "CONTAINS", "LISTED IN"], rows: table) { Console.out("  " + line) }
        }
        if !meterNotes.isEmpty {
            Console.out("")
            Console.out("notes:")
            for note in meterNotes {
                Console.out("  \(note.source.rawValue)\(note.deviceID.map { " \($0)" } ?? ""): \(note.reason)")
            }
        }
        if !problems.isEmpty {
            Console.out("")
            Console.out("not usable:")
            for problem in problems {
                Console.out("  \(problem.source.rawValue)\(problem.deviceID.map { " \($0)" } ?? ""): \(problem.reason)")
            }
        }
    }

    private func watchSeconds() throws -> Double? {
        if ["0", "0s", "0ms"].contains(watch) { return nil }
        return try Durations.seconds(watch, flag: "--watch")
    }

    /// Meters the devices for `seconds` (four reads at least), the way a run does, and keeps no event.
    static func watch(_ meters: [EnergyMeter], seconds: Double) -> SessionReport {
        let session = MeteringSession(
            interval: seconds / 4, window: nil, meters: meters,
            eventFactory: { device, window, joules, measurement, recordedAt in
                try RunMeterEventBuilder(runID: "sensors-watch", source: device.source, device: device.device, nodeID: "watch",
                                         window: window, energyJoules: joules, measurement: measurement).build(recordedAt: recordedAt)
            },
            deliver: { _ in })
        session.start()
        Thread.sleep(forTimeInterval: seconds)
        return session.stop()
    }
}
