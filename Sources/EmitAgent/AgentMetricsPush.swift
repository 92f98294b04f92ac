import AsyncHTTPClient
import CompressNIO
import EmitContract
import EmitOTLP
import Foundation
import NIOCore
import NIOSSL
import ServiceLifecycle

/// Where `emit agent --otlp-metrics-to` pushes each device's cumulative energy.
public struct OTLPMetricsTarget: Sendable {
    public var url: URL
    public var encoding: OTLPEncoding = .protobuf
    public var headers: [(name: String, value: String)] = []
    public var gzip = false
    public var caFile: String?
    public var interval: Double

    public init(url: URL, interval: Double) {
        self.url = url
        self.interval = interval
    }
}

/// Pushes OTLP metrics every interval. A failed push loses nothing (the next one carries the
/// cumulative totals), so it is said once, not retried: once when it begins failing, once when
/// it works again.
public final class AgentMetricsPusher: Service {
    private let agent: Agent
    private let target: OTLPMetricsTarget
    private let client: HTTPClient
    private let log: @Sendable (String) -> Void
    /// When the totals began (the agent's start): the start of every cumulative point.
    private let start = UInt64(max(0, Date().timeIntervalSince1970) * 1e9)

    public init(agent: Agent, target: OTLPMetricsTarget, log: @escaping @Sendable (String) -> Void) {
        self.agent = agent
        self.target = target
        self.log = log
        var configuration = HTTPClient.Configuration()
        if let caFile = target.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caFile)]
            configuration.tlsConfiguration = tls
        }
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Pushes every interval until cancelled; a graceful shutdown ends the wait, and one last
    /// push carries the final totals.
    public func run() async {
        var failing: String?
        while !Task.isCancelled {
            do {
                try await push()
                if failing != nil { log("pushing metrics to \(target.url.absoluteString) again") }
                failing = nil
            } catch is CancellationError {
                break
            } catch {
                let reason = "\(error)"
                if failing != reason { log("metrics push to \(target.url.absoluteString) failed: \(reason) (the next push carries the totals)") }
                failing = reason
            }
            if Task.isShuttingDownGracefully { break }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(self.target.interval * 1e9)) }
        }
        try? await client.shutdown()
    }

    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    func push() async throws {
        let now = UInt64(max(0, Date().timeIntervalSince1970) * 1e9)
        let body = try OTLPMetrics.request(AgentMetrics.points(agent: agent), start: start, now: now, nodeID: agent.configuration.nodeID, encoding: target.encoding)
        var request = HTTPClientRequest(url: target.url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: target.encoding.contentType)
        for (name, value) in target.headers { request.headers.replaceOrAdd(name: name, value: value) }
        if target.gzip {
            var plain = ByteBuffer(bytes: body)
            request.body = .bytes(try plain.compress(with: .gzip()))
            request.headers.add(name: "Content-Encoding", value: "gzip")
        } else {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Refused(description: "HTTP \(response.status.code): \(OTLPLogs.errorMessage(Array(answer.readableBytesView), contentType: response.headers.first(name: "Content-Type")))")
        }
    }
}
