import ArgumentParser
import EmitContract
import EmitMeters
import Foundation

/// The meter selection flags shared by `emit sensors` and `emit run`.
struct MeterOptions: ParsableArguments {
    @Option(name: .customLong("source"), help: ArgumentHelp(
        "Comma-separated sources to meter: rapl, nvml, dcgm, ipmi, redfish. Default: rapl, nvml and dcgm where available (NVML preferred over DCGM for the same GPU); the BMC's node reading (ipmi, redfish) only when named, since it contains the others.",
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

    @Option(name: .customLong("ipmi-host"), help: ArgumentHelp(
        "--source ipmi: a remote BMC (IPMI 2.0 lanplus) as HOST or HOST:PORT; default: the local BMC in-band (/dev/ipmi0, root).",
        valueName: "HOST[:PORT]"))
    var ipmiHost: String?

    @Option(name: .customLong("ipmi-username"), help: ArgumentHelp("--source ipmi: the BMC user of --ipmi-host.", valueName: "USER"))
    var ipmiUsername: String?

    @Option(name: .customLong("ipmi-password-file"), help: ArgumentHelp("--source ipmi: a file holding that user's password (read by ipmitool -f).", valueName: "FILE"))
    var ipmiPasswordFile: String?

    @Option(name: .customLong("redfish-url"), help: ArgumentHelp("--source redfish: the BMC's Redfish service, e.g. https://bmc.example.", valueName: "URL"))
    var redfishURL: String?

    @Option(name: .customLong("redfish-chassis"), help: ArgumentHelp("--source redfish: the chassis Id (default: the first reporting energy or power).", valueName: "ID"))
    var redfishChassis: String?

    @Option(name: .customLong("redfish-username"), help: ArgumentHelp("--source redfish: the Basic-auth user.", valueName: "USER"))
    var redfishUsername: String?

    @Option(name: .customLong("redfish-password-file"), help: ArgumentHelp("--source redfish: a file holding that user's password.", valueName: "FILE"))
    var redfishPasswordFile: String?

    @Option(name: .customLong("redfish-ca-file"), help: ArgumentHelp("--source redfish: PEM CA certificate(s) the BMC's certificate is signed by.", valueName: "FILE"))
    var redfishCAFile: String?

    @Flag(name: .customLong("redfish-session"), help: "--source redfish: log in once through the SessionService (X-Auth-Token) instead of Basic auth on every request.")
    var redfishSession = false

    @Option(name: .customLong("bmc-class"), help: ArgumentHelp("What the BMC's reading covers: node (default) or chassis.", valueName: "node|chassis"))
    var bmcClass: String = "node"

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
        guard let nodeClass = DeviceClass(rawValue: bmcClass), [.node, .chassis].contains(nodeClass) else {
            throw CommandFailure.usage("--bmc-class must be node or chassis, not \"\(bmcClass)\"")
        }
        var ipmi = IPMIConnection(username: ipmiUsername, passwordFile: ipmiPasswordFile)
        if let ipmiHost {
            let parts = ipmiHost.split(separator: ":", omittingEmptySubsequences: false)
            guard !parts[0].isEmpty, parts.count <= 2, parts.count == 1 || Int(parts[1]).map({ (1...65535).contains($0) }) == true else {
                throw CommandFailure.usage("--ipmi-host: \"\(ipmiHost)\" is not HOST or HOST:PORT")
            }
            ipmi.host = String(parts[0])
            ipmi.port = parts.count == 2 ? Int(parts[1]) : nil
        } else if ipmiUsername != nil || ipmiPasswordFile != nil {
            throw CommandFailure.usage("--ipmi-username and --ipmi-password-file are for a remote BMC: give --ipmi-host too")
        }
        var redfish: RedfishConnection?
        if let redfishURL {
            guard let parsed = URL(string: redfishURL), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
                throw CommandFailure.usage("--redfish-url: \"\(redfishURL)\" is not an http(s) URL")
            }
            redfish = RedfishConnection(url: parsed, chassis: redfishChassis, username: redfishUsername,
                                        passwordFile: redfishPasswordFile, caFile: redfishCAFile, useSession: redfishSession)
        }
        return MeterSelection(sources: chosen, raplZones: zones, dcgmURL: url, ipmi: ipmi, redfish: redfish, nodeClass: nodeClass)
    }
}
