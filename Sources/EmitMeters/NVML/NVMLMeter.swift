import EmitContract
import Foundation

/// GPU energy through NVML, loaded with dlopen (`EMIT_NVML_LIBRARY`, default
/// `libnvidia-ml.so.1` by the loader's search). Volta and newer GPUs have a 64-bit millijoule
/// counter (`counter_delta`); older ones only report power, which the session integrates
/// (`power_integration`). A GPU without either drops out with the reason; the others go on.
///
/// Some boards refresh the counter on a period of their own, longer than a short sampling
/// interval. Power is read beside the counter at the first read and, once the counter has been
/// seen to hold still between two reads, at every read after: the session integrates it in the
/// windows where the stale counter's steps are too coarse. A counter that moves at every read
/// costs one call a sample, as before.
public final class NVMLMeter: EnergyMeter, @unchecked Sendable {
    public let source = EnergySource.nvml
    public private(set) var devices: [MeteredDevice] = []
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil

    private var library: NVMLLibrary?
    private var gpus: [GPU] = []

    private struct GPU {
        let handle: NVMLLibrary.DeviceHandle
        let hasCounter: Bool
        /// The last counter value, and whether power is read beside it (see the type's doc).
        var lastMillijoules: UInt64?
        var readsPower = true
    }

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
            gpus.append(GPU(handle: handle, hasCounter: hasCounter))
            devices.append(MeteredDevice(source: .nvml, device: Device(class: .gpu, id: id, name: name, index: Int(index))))
        }
    }

    /// How each device is read: an energy counter or integrated power.
    public func method(of index: Int) -> MeasurementMethod { gpus[index].hasCounter ? .counterDelta : .powerIntegration }

    public func sample() -> [SampleValue] {
        guard let library else { return [] }
        return gpus.indices.map { index in
            let gpu = gpus[index]
            if gpu.hasCounter {
                var millijoules: UInt64 = 0
                let status = library.totalEnergy(gpu.handle, &millijoules)
                guard status == NVMLLibrary.success else { return .unavailable(reason: library.message(status)) }
                if gpu.lastMillijoules == millijoules { gpus[index].readsPower = true }
                gpus[index].lastMillijoules = millijoules
                let power = gpus[index].readsPower ? try? self.power(of: gpu.handle, library).get() : nil
                // After the first read, power waits until the counter is seen to hold.
                if gpu.lastMillijoules == nil { gpus[index].readsPower = false }
                return .counter(raw: millijoules, unitsPerJoule: 1e3, wrapRange: nil,
                                power: power.map { PowerReading(watts: $0, quantumWatts: 1e-3) })
            }
            switch power(of: gpu.handle, library) {
            case .success(let watts): return .power(watts: watts, quantumWatts: 1e-3)
            case .failure(let failure): return .unavailable(reason: library.message(failure.status))
            }
        }
    }

    /// nvmlDeviceGetPowerUsage: milliwatts, so a 1 mW quantum.
    private func power(of handle: NVMLLibrary.DeviceHandle, _ library: NVMLLibrary) -> Result<Double, PowerFailure> {
        var milliwatts: UInt32 = 0
        let status = library.powerUsage.map { $0(handle, &milliwatts) } ?? NVMLLibrary.notSupported
        guard status == NVMLLibrary.success else { return .failure(PowerFailure(status: status)) }
        return .success(Double(milliwatts) / 1000)
    }

    private struct PowerFailure: Error {
        let status: NVMLLibrary.Return
    }

    public func close() {
        if let library { _ = library.shutdown() }
        library = nil
    }

    deinit { close() }
}
