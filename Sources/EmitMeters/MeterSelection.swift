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

    public static let supportedSources: [EnergySource] = [.rapl, .nvml, .dcgm]

    public init(sources: Set<EnergySource>? = nil, raplZones: RAPLZoneSelection = .packagesAndDRAM,
                powercapRoot: String? = nil, nvmlLibrary: String? = nil, dcgmURL: URL? = nil) {
        self.sources = sources
        self.raplZones = raplZones
        self.powercapRoot = powercapRoot
        self.nvmlLibrary = nvmlLibrary
        self.dcgmURL = dcgmURL
    }

    func wants(_ source: EnergySource) -> Bool { sources?.contains(source) ?? true }

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
        return (meters, notes)
    }
}
