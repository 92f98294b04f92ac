import EmitContract
import Foundation

/// Which physical interfaces to open, and how.
public struct MeterSelection: Sendable {
    /// Sources asked for; nil means every available one.
    public var sources: Set<EnergySource>?
    public var raplZones: RAPLZoneSelection
    public var powercapRoot: String?
    public var nvmlLibrary: String?
    public var dcgmURL: URL?
    /// The node's BMC: in-band when `host` is nil.
    public var ipmi: IPMIConnection
    public var redfish: RedfishConnection?
    /// `node` or `chassis`: what the BMC's reading covers.
    public var nodeClass: DeviceClass

    public static let supportedSources: [EnergySource] = [.rapl, .nvml, .dcgm, .ipmi, .redfish]
    /// Read only when named: a BMC's node or chassis reading contains the CPUs and GPUs that the
    /// other meters report, and an in-band ipmitool probe can take seconds on a node without one.
    public static let onlyWhenNamed: Set<EnergySource> = [.ipmi, .redfish]

    public init(sources: Set<EnergySource>? = nil, raplZones: RAPLZoneSelection = .packagesAndDRAM,
                powercapRoot: String? = nil, nvmlLibrary: String? = nil, dcgmURL: URL? = nil,
                ipmi: IPMIConnection = IPMIConnection(), redfish: RedfishConnection? = nil, nodeClass: DeviceClass = .node) {
        self.sources = sources
        self.raplZones = raplZones
        self.powercapRoot = powercapRoot
        self.nvmlLibrary = nvmlLibrary
        self.dcgmURL = dcgmURL
        self.ipmi = ipmi
        self.redfish = redfish
        self.nodeClass = nodeClass
    }

    func wants(_ source: EnergySource) -> Bool {
        sources?.contains(source) ?? !Self.onlyWhenNamed.contains(source)
    }

    /// Opens the selected meters. One physical GPU is metered once: through NVML when NVML sees
    /// it, through DCGM only when NVML is not selected or does not see it.
    public func open() -> (meters: [EnergyMeter], notes: [MeterProblem]) {
        var meters: [EnergyMeter] = []
        var notes: [MeterProblem] = []
        let env = ProcessInfo.processInfo.environment
        if wants(.rapl) {
            meters.append(RAPLMeter(root: powercapRoot ?? env["EMIT_POWERCAP_ROOT"] ?? "/sys/class/powercap", zones: raplZones))
        }
        var nvmlGPUs = Set<String>()
        if wants(.nvml) {
            let nvml = NVMLMeter(libraryPath: nvmlLibrary ?? env["EMIT_NVML_LIBRARY"])
            nvmlGPUs = Set(nvml.devices.map(\.device.id))
            meters.append(nvml)
        }
        if wants(.dcgm) {
            if let url = dcgmURL {
                meters.append(DCGMExporterMeter(url: url, excluding: nvmlGPUs))
            } else if sources?.contains(.dcgm) == true {
                notes.append(MeterProblem(source: .dcgm, reason: "no --dcgm-url given (a dcgm-exporter usually serves http://127.0.0.1:9400/metrics)"))
            } else {
                notes.append(MeterProblem(source: .dcgm, reason: "not probed: pass --dcgm-url to read a dcgm-exporter"))
            }
        }
        if wants(.ipmi) {
            meters.append(IPMIMeter(connection: ipmi, device: Device(class: nodeClass, id: ipmi.host ?? "bmc", name: "DCMI power reading")))
        }
        if wants(.redfish) {
            if let redfish {
                meters.append(RedfishMeter(connection: redfish, deviceClass: nodeClass))
            } else {
                notes.append(MeterProblem(source: .redfish, reason: "no --redfish-url given (the BMC's Redfish service, e.g. https://bmc.example)"))
            }
        }
        return (meters, notes)
    }
}
