import EmitContract
import Foundation

/// GPU energy through NVML, loaded with dlopen (`EMIT_NVML_LIBRARY`, default
/// `libnvidia-ml.so.1` by the loader's search). Volta and newer GPUs have a 64-bit millijoule
/// counter (`counter_delta`); older ones only report power, which the session integrates
/// (`power_integration`). A GPU without either drops out with the reason; the others go on.
public final class NVMLMeter: EnergyMeter, @unchecked Sendable {
    public let source = EnergySource.nvml
    public private(set) var devices: [MeteredDevice] = []
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil

    private var library: NVMLLibrary?
    private var gpus: [(handle: NVMLLibrary.DeviceHandle, hasCounter: Bool)] = []

    public static let defaultLibrary = "libnvidia-ml.so.1"

    public init(libraryPath: String? = ProcessInfo.processInfo.environment["EMIT_NVML_LIBRARY"]) {
        let path = libraryPath.flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultLibrary
        let library: NVMLLibrary
        do { library = try NVMLLibrary(path: path) } catch {
            problems.append(MeterProblem(source: .nvml, reason: "\(error)"))
            return
        }
        let status = library.initialize()
        guard status == NVMLLibrary.success else {
            problems.append(MeterProblem(source: .nvml, reason: "nvmlInit_v2 failed: \(library.message(status))"))
            return
        }
        self.library = library
        var count: UInt32 = 0
        let countStatus = library.deviceCount(&count)
        guard countStatus == NVMLLibrary.success else {
            problems.append(MeterProblem(source: .nvml, reason: "nvmlDeviceGetCount_v2 failed: \(library.message(countStatus))"))
            return
        }
        if count == 0 { problems.append(MeterProblem(source: .nvml, reason: "NVML reports no GPU")) }
        for index in 0..<count {
            var handle: NVMLLibrary.DeviceHandle = nil
            let handleStatus = library.handleByIndex(index, &handle)
            guard handleStatus == NVMLLibrary.success else {
                problems.append(MeterProblem(source: .nvml, deviceID: "index \(index)", reason: library.message(handleStatus)))
                continue
            }
            let uuid = library.string { library.uuid(handle, $0, $1) }
            guard let id = uuid.value, !id.isEmpty else {
                problems.append(MeterProblem(source: .nvml, deviceID: "index \(index)", reason: "no UUID: \(library.message(uuid.code))"))
                continue
            }
            let name = library.string { library.name(handle, $0, $1) }.value
            var millijoules: UInt64 = 0
            let energyStatus = library.totalEnergy(handle, &millijoules)
            let hasCounter = energyStatus == NVMLLibrary.success
            if !hasCounter {
                var milliwatts: UInt32 = 0
                guard let power = library.powerUsage, power(handle, &milliwatts) == NVMLLibrary.success else {
                    problems.append(MeterProblem(source: .nvml, deviceID: id,
                        reason: "no energy counter (\(library.message(energyStatus))) and no power reading; this GPU cannot be metered"))
                    continue
                }
            }
            gpus.append((handle, hasCounter))
            devices.append(MeteredDevice(source: .nvml, device: Device(class: .gpu, id: id, name: name, index: Int(index))))
        }
    }

    /// How each device is read: an energy counter or integrated power.
    public func method(of index: Int) -> MeasurementMethod { gpus[index].hasCounter ? .counterDelta : .powerIntegration }

    public func sample() -> [SampleValue] {
        guard let library else { return [] }
        return gpus.map { gpu in
            if gpu.hasCounter {
                var millijoules: UInt64 = 0
                let status = library.totalEnergy(gpu.handle, &millijoules)
                guard status == NVMLLibrary.success else { return .unavailable(reason: library.message(status)) }
                return .counter(raw: millijoules, unitsPerJoule: 1e3, wrapRange: nil)
            }
            var milliwatts: UInt32 = 0
            let status = library.powerUsage.map { $0(gpu.handle, &milliwatts) } ?? NVMLLibrary.notSupported
            guard status == NVMLLibrary.success else { return .unavailable(reason: library.message(status)) }
            return .power(watts: Double(milliwatts) / 1000)
        }
    }

    public func close() {
        if let library { _ = library.shutdown() }
        library = nil
    }

    deinit { close() }
}
