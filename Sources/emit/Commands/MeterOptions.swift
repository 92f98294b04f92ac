import ArgumentParser
import EmitContract
import EmitMeters
import Foundation

/// The meter selection flags shared by `emit sensors` and `emit run`.
struct MeterOptions: ParsableArguments {
    @Option(name: .customLong("source"), help: ArgumentHelp(
        "Comma-separated sources to meter: rapl, nvml, dcgm. Default: every available one (NVML preferred over DCGM for the same GPU).",
        valueName: "LIST"))
    var sources: String?

    @Option(name: .customLong("rapl-zones"), help: ArgumentHelp(
        "RAPL zones: 'default' (cpu_package and dram, never double counted) or 'all' (adds cpu_core, uncore, psys with their own classes).",
        valueName: "default|all"))
    var raplZones: String = "default"

    @Option(name: .customLong("dcgm-url"), help: ArgumentHelp(
        "A dcgm-exporter metrics URL to read GPU energy from (DCGM field 156), e.g. http://127.0.0.1:9400/metrics.",
        valueName: "URL"))
    var dcgmURL: String?

    func selection() throws -> MeterSelection {
        var chosen: Set<EnergySource>?
        if let sources {
            var set = Set<EnergySource>()
            for name in sources.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                guard let source = EnergySource(rawValue: name), MeterSelection.supportedSources.contains(source) else {
                    throw CommandFailure.usage("--source: \"\(name)\" is not a run-grain meter here (choose from \(MeterSelection.supportedSources.map(\.rawValue).joined(separator: ", ")))")
                }
                set.insert(source)
            }
            guard !set.isEmpty else { throw CommandFailure.usage("--source: name at least one source") }
            chosen = set
        }
        guard let zones = RAPLZoneSelection(rawValue: raplZones) else {
            throw CommandFailure.usage("--rapl-zones must be 'default' or 'all', not \"\(raplZones)\"")
        }
        var url: URL?
        if let dcgmURL {
            guard let parsed = URL(string: dcgmURL), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
                throw CommandFailure.usage("--dcgm-url: \"\(dcgmURL)\" is not an http(s) URL")
            }
            url = parsed
        }
        return MeterSelection(sources: chosen, raplZones: zones, dcgmURL: url)
    }
}
