import EmitContract
import Foundation
import SwiftProtobuf

/// Each device's cumulative energy as OpenTelemetry hardware metrics: `hw.energy` (unit J) per
/// component, `hw.host.energy` for a whole host from its BMC, a monotonic cumulative sum whose
/// start is when the agent began metering (a new start says the total began again).
public enum OTLPMetrics {
    public static let path = "/v1/metrics"

    public struct Point: Sendable, Equatable {
        /// `hw.energy` or `hw.host.energy`.
        public var metric: String
        public var hardwareID: String
        /// `cpu`, `gpu`, `memory`, `enclosure`, `power_supply`, ...
        public var hardwareType: String
        public var hardwareName: String
        public var source: String
        public var provenance: String
        public var joules: Double

        public init(metric: String, hardwareID: String, hardwareType: String, hardwareName: String, source: String, provenance: String, joules: Double) {
            self.metric = metric
            self.hardwareID = hardwareID
            self.hardwareType = hardwareType
            self.hardwareName = hardwareName
            self.source = source
            self.provenance = provenance
            self.joules = joules
        }
    }

    /// One export request: every point at `now`, cumulative since `start` (Unix nanoseconds).
    public static func request(_ points: [Point], start: UInt64, now: UInt64, nodeID: String, encoding: OTLPEncoding) throws -> [UInt8] {
        var metrics: [Opentelemetry_Proto_Metrics_V1_Metric] = []
        for name in ["hw.energy", "hw.host.energy"] {
            let mine = points.filter { $0.metric == name }
            guard !mine.isEmpty else { continue }
            var metric = Opentelemetry_Proto_Metrics_V1_Metric()
            metric.name = name
            metric.unit = "J"
            metric.description_p = name == "hw.energy" ? "Energy consumed by the component" : "Energy consumed by the host, from its BMC"
            var sum = Opentelemetry_Proto_Metrics_V1_Sum()
            sum.aggregationTemporality = .cumulative
            sum.isMonotonic = true
            sum.dataPoints = mine.map { point in
                var data = Opentelemetry_Proto_Metrics_V1_NumberDataPoint()
                data.attributes = [
                    OTLPValues.attribute("hw.id", point.hardwareID), OTLPValues.attribute("hw.type", point.hardwareType),
                    OTLPValues.attribute("hw.name", point.hardwareName), OTLPValues.attribute("emit.energy_source", point.source),
                    OTLPValues.attribute("emit.energy_provenance", point.provenance),
                ]
                data.startTimeUnixNano = start
                data.timeUnixNano = now
                data.asDouble = point.joules
                return data
            }
            metric.sum = sum
            metrics.append(metric)
        }
        var scope = Opentelemetry_Proto_Metrics_V1_ScopeMetrics()
        scope.scope.name = "emit"
        scope.scope.version = EmitVersion.current
        scope.metrics = metrics
        var resource = Opentelemetry_Proto_Metrics_V1_ResourceMetrics()
        resource.resource.attributes = [
            OTLPValues.attribute("service.name", "emit"), OTLPValues.attribute("service.version", EmitVersion.current),
            OTLPValues.attribute("host.name", nodeID), OTLPValues.attribute("host.id", nodeID),
        ]
        resource.scopeMetrics = [scope]
        var request = Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceRequest()
        request.resourceMetrics = [resource]
        return try encoding.encode(request)
    }
}
