import EmitContract
import Foundation
import AsyncHTTPClient
import NIOCore

/// GPU energy from a dcgm-exporter endpoint: `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` (DCGM field
/// 156, millijoules since the driver loaded). Under MIG the exporter repeats each physical GPU's
/// counter for every GPU instance; the meter keeps one series per physical GPU (by UUID) so a
/// GPU is never counted twice.
public final class DCGMExporterMeter: EnergyMeter, @unchecked Sendable {
    public let readsOverNetwork = true
    public static let metric = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"

    public let source = EnergySource.dcgm
    public private(set) var devices: [MeteredDevice] = []
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil
    public let url: URL
    private let timeout: TimeInterval

    /// `excluding`: GPU UUIDs metered elsewhere (NVML), left out so no GPU is counted twice.
    public init(url: URL, excluding: Set<String> = [], timeout: TimeInterval = 2) {
        self.url = url
        self.timeout = timeout
        switch fetch() {
        case .failure(let reason):
            problems.append(MeterProblem(source: .dcgm, reason: reason.description))
        case .success(let counters):
            if counters.isEmpty {
                problems.append(MeterProblem(source: .dcgm, reason: "\(url) serves no \(Self.metric) series (is field 156 in the exporter's counters file?)"))
            }
            for counter in counters {
                if excluding.contains(counter.device.id) {
                    problems.append(MeterProblem(source: .dcgm, deviceID: counter.device.id, reason: "metered through NVML instead (never counted twice)"))
                } else {
                    devices.append(MeteredDevice(source: .dcgm, device: counter.device))
                }
            }
        }
    }

    struct GPUCounter {
        let device: Device
        let millijoules: Double
    }

    /// One counter per physical GPU, in the exporter's order.
    func fetch() -> Result<[GPUCounter], ReadFailureReason> {
        let text: String
        switch HTTPText.get(url, timeout: timeout) {
        case .failure(let reason): return .failure(reason)
        case .success(let body): text = body
        }
        let samples: [PrometheusSample]
        do { samples = try PrometheusText.parse(text, metric: Self.metric) } catch {
            return .failure(ReadFailureReason("\(url): \(error)"))
        }
        var seen = Set<String>()
        var counters: [GPUCounter] = []
        for sample in samples {
            guard let uuid = sample.labels["UUID"] ?? sample.labels["uuid"], !uuid.isEmpty else { continue }
            guard seen.insert(uuid).inserted else { continue }  // a MIG instance repeating its GPU's counter
            let device = Device(class: .gpu, id: uuid, name: sample.labels["modelName"], index: sample.labels["gpu"].flatMap { Int($0) })
            counters.append(GPUCounter(device: device, millijoules: sample.value))
        }
        return .success(counters)
    }

    public func sample() -> [SampleValue] {
        switch fetch() {
        case .failure(let reason):
            return devices.map { _ in .unavailable(reason: reason.description) }
        case .success(let counters):
            let byID = Dictionary(counters.map { ($0.device.id, $0.millijoules) }, uniquingKeysWith: { a, _ in a })
            return devices.map { device in
                guard let value = byID[device.device.id] else { return .unavailable(reason: "\(device.device.id) no longer served by \(url)") }
                guard value.isFinite, value >= 0, value < 1.8e19 else { return .unavailable(reason: "\(device.device.id): counter value \(value) is not a counter") }
                return .counter(raw: UInt64(value), unitsPerJoule: 1e3, wrapRange: nil)
            }
        }
    }

    public func close() {}
}

/// A blocking HTTP GET for node-local endpoints, called from the sampler thread (never from an
/// event loop or async code). async-http-client rather than URLSession: one HTTP stack for the
/// whole binary, and no libcurl to load.
enum HTTPText {
    static func get(_ url: URL, timeout: TimeInterval) -> Result<String, ReadFailureReason> {
        do {
            let response = try HTTPClient.shared.get(url: url.absoluteString, deadline: .now() + .milliseconds(Int64(timeout * 1000))).wait()
            guard (200..<300).contains(Int(response.status.code)) else {
                return .failure(ReadFailureReason("\(url): HTTP status \(response.status.code)"))
            }
            return .success(response.body.map { String(buffer: $0) } ?? "")
        } catch {
            return .failure(ReadFailureReason("\(url): \(error)"))
        }
    }
}
