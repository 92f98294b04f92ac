import EmitContract
import Foundation
import AsyncHTTPClient
import NIOCore

/// GPU energy from a dcgm-exporter endpoint: `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` (DCGM field
/// 156, millijoules since the driver loaded), with `DCGM_FI_DEV_POWER_USAGE` (field 155, W) from
/// the same scrape beside it. The exporter refreshes its values on a period of its own (30 s by
/// default), so a short run can read one counter value at start and end: the session then
/// integrates the power series instead of calling the unmoved counter 0 J. Under MIG the
/// exporter repeats each physical GPU's series for every GPU instance; the meter keeps one
/// series per physical GPU (by UUID) so a GPU is never counted twice.
public final class DCGMExporterMeter: EnergyMeter, @unchecked Sendable {
    public let readsOverNetwork = true
    public static let metric = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
    public static let powerMetric = "DCGM_FI_DEV_POWER_USAGE"

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
        switch fetch(probe: true) {
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
        /// The power reading of the same GPU in the same scrape, where the exporter serves one.
        var power: PowerReading?
    }

    /// One counter per physical GPU, in the exporter's order.
    func fetch(probe: Bool = false) -> Result<[GPUCounter], ReadFailureReason> {
        let text: String
        switch HTTPText.get(url, timeout: timeout, probe: probe) {
        case .failure(let reason): return .failure(reason)
        case .success(let body): text = body
        }
        let samples: [PrometheusSample]
        do { samples = try PrometheusText.parse(text, metrics: [Self.metric, Self.powerMetric]) } catch {
            return .failure(ReadFailureReason("\(url): \(error)"))
        }
        var seen = Set<String>()
        var counters: [GPUCounter] = []
        var power: [String: PowerReading] = [:]
        for sample in samples {
            guard let uuid = sample.labels["UUID"] ?? sample.labels["uuid"], !uuid.isEmpty else { continue }
            if sample.name == Self.powerMetric {
                // The first series of a GPU: a MIG instance repeats its parent's reading.
                if power[uuid] == nil, sample.value.isFinite, sample.value >= 0 {
                    power[uuid] = PowerReading(watts: sample.value, quantumWatts: sample.quantum)
                }
                continue
            }
            guard seen.insert(uuid).inserted else { continue }  // a MIG instance repeating its GPU's counter
            let device = Device(class: .gpu, id: uuid, name: sample.labels["modelName"], index: sample.labels["gpu"].flatMap { Int($0) })
            counters.append(GPUCounter(device: device, millijoules: sample.value))
        }
        for index in counters.indices { counters[index].power = power[counters[index].device.id] }
        return .success(counters)
    }

    public func sample() -> [SampleValue] {
        switch fetch() {
        case .failure(let reason):
            return devices.map { _ in .unavailable(reason: reason.description) }
        case .success(let counters):
            let byID = Dictionary(counters.map { ($0.device.id, $0) }, uniquingKeysWith: { a, _ in a })
            return devices.map { device in
                guard let counter = byID[device.device.id] else { return .unavailable(reason: "\(device.device.id) no longer served by \(url)") }
                let value = counter.millijoules
                guard value.isFinite, value >= 0, value < 1.8e19 else { return .unavailable(reason: "\(device.device.id): counter value \(value) is not a counter") }
                return .counter(raw: UInt64(value), unitsPerJoule: 1e3, wrapRange: nil, power: counter.power)
            }
        }
    }

    public func close() {}
}

/// A blocking HTTP GET for node-local endpoints, called from the sampler thread (never from an
/// event loop or async code). async-http-client rather than URLSession: one HTTP stack for the
/// whole binary, and no libcurl to load.
enum HTTPText {
    /// `probe`: first try a plain connection, so a refused one fails at once (at open; a
    /// sample's read is bounded by the timeout anyway).
    static func get(_ url: URL, timeout: TimeInterval, probe: Bool = false) -> Result<String, ReadFailureReason> {
        if probe, let host = url.host, let refused = NetworkFailure.probe(host: host, port: url.port ?? (url.scheme == "https" ? 443 : 80), timeout: timeout) {
            return .failure(ReadFailureReason("\(url): \(refused)"))
        }
        do {
            let response = try HTTPClient.shared.get(url: url.absoluteString, deadline: .now() + .milliseconds(Int64(timeout * 1000))).wait()
            guard (200..<300).contains(Int(response.status.code)) else {
                return .failure(ReadFailureReason("\(url): HTTP status \(response.status.code)"))
            }
            return .success(response.body.map { String(buffer: $0) } ?? "")
        } catch {
            return .failure(ReadFailureReason("\(url): \(NetworkFailure.describe(error))"))
        }
    }
}
