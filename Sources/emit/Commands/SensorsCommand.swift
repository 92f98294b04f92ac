import ArgumentParser
import EmitContract
import EmitMeters

struct SensorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensors",
        abstract: "List every energy meter on this node, and every one that cannot be used and why.",
        discussion: """
            Probes RAPL (Linux powercap, EMIT_POWERCAP_ROOT), NVML (EMIT_NVML_LIBRARY, default \
            libnvidia-ml.so.1) and, with --dcgm-url, a dcgm-exporter. --json prints one object: \
            "devices" (source, class, id, name, index, method) and "unavailable" (source, id, reason).
            """
    )

    @OptionGroup var meters: MeterOptions

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

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
        if json {
            let devices = rows.map { device, method -> JSONValue in
                var members: [(String, JSONValue)] = [
                    ("source", .string(device.source.rawValue)), ("class", .string(device.device.deviceClass.rawValue)),
                    ("id", .string(device.device.id)),
                ]
                if let name = device.device.name { members.append(("name", .string(name))) }
                if let index = device.device.index { members.append(("index", .number(Double(index)))) }
                members.append(("method", .string(method.rawValue)))
                return .object(members)
            }
            let unavailable = problems.map { problem -> JSONValue in
                var members: [(String, JSONValue)] = [("source", .string(problem.source.rawValue))]
                if let id = problem.deviceID { members.append(("id", .string(id))) }
                members.append(("reason", .string(problem.reason)))
                return .object(members)
            }
            Console.out(JSONWriter.line(.object([("devices", .array(devices)), ("unavailable", .array(unavailable))])))
            return
        }
        if rows.isEmpty {
            Console.out("no usable energy meter on this node")
        } else {
            let table = rows.map { device, method in
                [device.source.rawValue, device.device.deviceClass.rawValue, device.device.id, device.device.name ?? "", method.rawValue]
            }
            for line in TextTable.render(header: ["SOURCE", "CLASS", "ID", "NAME", "METHOD"], rows: table) { Console.out(line) }
        }
        if !problems.isEmpty {
            Console.out("")
            Console.out("not usable:")
            for problem in problems {
                Console.out("  \(problem.source.rawValue)\(problem.deviceID.map { " \($0)" } ?? ""): \(problem.reason)")
            }
        }
    }
}
