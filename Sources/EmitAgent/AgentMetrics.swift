import EmitContract
import EmitMeters
import EmitOTLP
import EmitSessions
import Hummingbird
import Logging
import NIOCore

/// `/metrics` in the Prometheus text format (0.0.4): each device's cumulative energy, named after
/// the OpenTelemetry hardware conventions (`hw.energy` → `hw_energy_joules_total`, node-level BMC
/// energy `hw.host.energy` → `hw_host_energy_joules_total`), and the agent's own health.
///
/// Written here rather than through a metrics registry: every value is read from the sampler at
/// scrape time, and a registry would only hold a second copy of it.
public enum AgentMetrics {
    /// OpenTelemetry `hw.type` of a device class.
    static func hardwareType(_ deviceClass: DeviceClass) -> String {
        switch deviceClass {
        case .gpu: return "gpu"
        case .cpuPackage, .cpuCore, .uncore: return "cpu"
        case .dram: return "memory"
        case .psys, .node, .chassis: return "enclosure"
        case .outlet, .ups, .pduInlet, .pduOutlet: return "power_supply"
        default: return deviceClass.rawValue
        }
    }

    /// Each device's cumulative energy as OTLP points (`hw.host.energy` for node and chassis BMCs).
    static func points(agent: Agent) -> [OTLPMetrics.Point] {
        agent.sampler.totals().devices.compactMap { entry in
            guard let joules = entry.joules else { return nil }
            let d = entry.device
            return OTLPMetrics.Point(metric: [.node, .chassis].contains(d.device.deviceClass) ? "hw.host.energy" : "hw.energy",
                                     hardwareID: d.device.id, hardwareType: hardwareType(d.device.deviceClass),
                                     hardwareName: d.device.name ?? d.device.id, source: d.source.rawValue,
                                     provenance: d.provenance.rawValue, joules: joules)
        }
    }

    public static func text(agent: Agent, outboxPending: Int?) -> String {
        let totals = agent.sampler.totals()
        var device = "# HELP hw_energy_joules_total Energy consumed by the component since the agent began metering it (OpenTelemetry hw.energy).\n# TYPE hw_energy_joules_total counter\n"
        var host = "# HELP hw_host_energy_joules_total Energy consumed by the host, from its BMC (OpenTelemetry hw.host.energy).\n# TYPE hw_host_energy_joules_total counter\n"
        var failed = "# HELP emit_agent_failed_reads_total Reads of a device that failed (a gap in its coverage, never zero energy).\n# TYPE emit_agent_failed_reads_total counter\n"
        for entry in totals.devices {
            let d = entry.device
            let labels = "hw_id=\"\(escape(d.device.id))\",hw_type=\"\(hardwareType(d.device.deviceClass))\",hw_name=\"\(escape(d.device.name ?? d.device.id))\",emit_source=\"\(d.source.rawValue)\",emit_provenance=\"\(d.provenance.rawValue)\""
            if let joules = entry.joules {
                let line = "{\(labels)} \(JSONWriter.formatNumber(joules))\n"
                if [.node, .chassis].contains(d.device.deviceClass) { host += "hw_host_energy_joules_total" + line } else { device += "hw_energy_joules_total" + line }
            }
            failed += "emit_agent_failed_reads_total{hw_id=\"\(escape(d.device.id))\",emit_source=\"\(d.source.rawValue)\"} \(entry.failedReads)\n"
        }
        var text = device + host + failed
        text += "# HELP emit_agent_samples_total Sampling rounds the agent has taken.\n# TYPE emit_agent_samples_total counter\nemit_agent_samples_total \(totals.rounds)\n"
        text += "# HELP emit_agent_open_runs Runs open in the agent now.\n# TYPE emit_agent_open_runs gauge\nemit_agent_open_runs \(agent.openRunCount)\n"
        if let outboxPending {
            text += "# HELP emit_agent_outbox_pending Events in the agent's outbox not yet delivered.\n# TYPE emit_agent_outbox_pending gauge\nemit_agent_outbox_pending \(outboxPending)\n"
        }
        return text
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// `GET /metrics` on HOST:PORT.
    public static func application(agent: Agent, host: String, port: Int, outboxPending: @escaping @Sendable () -> Int?,
                                   scraped: @escaping @Sendable () -> Void = {},
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            scraped()
            var buffer = ByteBuffer()
            buffer.writeString(text(agent: agent, outboxPending: outboxPending()))
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: buffer))
        }
        var logger = Logger(label: "emit-agent-metrics")
        logger.logLevel = .warning
        return Application(router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "emit-agent"),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
    }
}
