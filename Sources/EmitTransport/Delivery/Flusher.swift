import AsyncHTTPClient
import CompressNIO
import EmitContract
import EmitOTLP
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// How `emit outbox flush` delivers.
public struct FlushOptions: Sendable {
    public var endpoint: URL
    public var token: String?
    /// Events per request: about 3.5 MB of JSON, where the receiver's commits are cheap per
    /// event (BENCHMARKS.md, Transport).
    public static let defaultBatchSize = 5000
    public var batchSize: Int = defaultBatchSize
    public var follow = false
    public var caFile: String?
    public var gzip = false
    /// Stop retrying (and leave the rest pending) after failing this long without progress.
    public var giveUpAfter: TimeInterval = 300
    public var pollInterval: TimeInterval = 1
    public var requestTimeout: TimeInterval = 60
    public var connectTimeout: TimeInterval = 5
    /// Batches on the wire at once (each is a disjoint range of the outbox).
    public var maxInFlight = 4
    /// emit's ingest protocol (JSON Lines to /v1/events), or OTLP/HTTP logs (to /v1/logs).
    public var deliveryProtocol: DeliveryProtocol = .emit
    public var otlpEncoding: OTLPEncoding = .protobuf
    /// Extra request headers (a collector's API key, a tenant id).
    public var headers: [(name: String, value: String)] = []

    public init(endpoint: URL, token: String? = nil) {
        self.endpoint = endpoint
        self.token = token
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    public enum DeliveryProtocol: String, Sendable, CaseIterable {
        case emit, otlp
        /// What a bare host gets appended.
        var path: String { self == .emit ? IngestProtocol.path : OTLPLogs.path }
    }

    /// The endpoint URL: a base URL gets `/v1/events` appended (`/v1/logs` for OTLP, to any path
    /// that does not end in it, as OpenTelemetry's exporters treat a base endpoint).
    public static func endpoint(from text: String, allowInsecureHTTP: Bool, protocol delivery: DeliveryProtocol = .emit) throws -> URL {
        guard var url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host else {
            throw FlushError.usage("\"\(text)\" is not an http(s) URL")
        }
        guard scheme == "https" || scheme == "http" else { throw FlushError.usage("\"\(text)\": only http and https are supported") }
        if scheme == "http", !isLoopback(host), !allowInsecureHTTP {
            throw FlushError.usage("refusing plain HTTP to \(host): events and the token would cross the network unencrypted; use https, or --allow-insecure-http")
        }
        if url.path.isEmpty || url.path == "/" || (delivery == .otlp && !url.path.hasSuffix(OTLPLogs.path)) {
            url = URL(string: text.hasSuffix("/") ? String(text.dropLast()) + delivery.path : text + delivery.path) ?? url
        }
        return url
    }
}

public enum FlushError: Error, CustomStringConvertible {
    case usage(String)
    case unauthorized(Int, String)
    case gaveUp(String)

    public var description: String {
        switch self {
        case let .usage(m): return m
        case let .unauthorized(status, body): return "the receiver refused the token (HTTP \(status))\(body.isEmpty ? "" : ": \(body)"); nothing was marked"
        case let .gaveUp(m): return m
        }
    }
}

/// What a flush did.
public struct FlushOutcome: Sendable {
    public var delivered = 0
    public var duplicates = 0
    public var rejected = 0
    public var pending = 0
    public var gaveUp: String?
    /// Asked to finish (`finishInFlight`) before the outbox was empty.
    public var stopped = false
}

/// Delivers pending outbox events in batches. A batch is marked only after the receiver answered
/// for it, so a crash at any point leaves events pending, and the receiver's idempotence by
/// `event_id` makes the retry harmless. 5xx, timeouts and connection errors are retried with
/// exponential backoff and jitter (a Retry-After wins); 401/403 stop at once. Over OTLP only
/// 429, 502, 503 and 504 are retried, other 4xx are rejections and other 5xx stop the flush.
public final class Flusher: Sendable {
    public let outbox: EventDatabase
    public let options: FlushOptions
    private let client: HTTPClient
    let log: @Sendable (String) -> Void
    /// Request bodies' memory (and OTLP's writers), reused from one batch to the next: a body is
    /// megabytes, and fresh memory of that size costs the kernel more to hand out (zeroed pages,
    /// a fault each) than copying the events into it costs.
    private let requestMemory = Mutex<[(writer: OTLPRequestWriter, body: ByteBuffer)]>([])
    /// How many request bodies are kept (tests).
    var keptRequestMemory: Int { requestMemory.withLock { $0.count } }
    /// Set by `finishInFlight`: nothing new is sent and nothing waited for.
    private let finishing = Mutex(false)
    var isFinishing: Bool { finishing.withLock { $0 } }

    public init(outbox: EventDatabase, options: FlushOptions, log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.outbox = outbox
        self.options = options
        self.log = log
        var configuration = HTTPClient.Configuration()
        if let caFile = options.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caFile)]
            configuration.tlsConfiguration = tls
        }
        configuration.timeout = .init(connect: .milliseconds(Int64(options.connectTimeout * 1000)), read: .milliseconds(Int64(options.requestTimeout * 1000)))
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Asks `run` to send no new batch, begin no wait (backoff, polling), and return once the
    /// batches on the wire are answered and marked: a stop that leaves nothing sent without its
    /// answer recorded (such a batch would go again, and a collector would hold it twice).
    public func finishInFlight() {
        finishing.withLock { $0 = true }
    }

    /// One batch on its way: the events and what happened to the request.
    private enum Attempt: Sendable {
        case answered(batch: [EventDatabase.Stored], status: Int, body: [UInt8], contentType: String?, retryAfter: Double?)
        case failed(batch: [EventDatabase.Stored], reason: String)
    }

    public func run() async throws -> FlushOutcome {
        var outcome = FlushOutcome()
        var batchSize = max(1, options.batchSize)
        var failingSince: Date?
        var attempt = 0
        var cursor: Int64 = 0           // highest seq handed to a request
        var retry: [[EventDatabase.Stored]] = []
        try await withThrowingTaskGroup(of: Attempt.self) { group in
            var inFlight = 0
            while true {
                // Keep up to `maxInFlight` batches on the wire: the receiver's durable write of
                // one overlaps the next request. Batches are disjoint ranges of seq.
                while inFlight < options.maxInFlight, outcome.gaveUp == nil, !isFinishing {
                    let batch: [EventDatabase.Stored]
                    if let again = retry.popLast() { batch = again } else {
                        batch = try outbox.pending(limit: batchSize, after: cursor)
                        guard let last = batch.last else { break }
                        cursor = last.seq
                    }
                    inFlight += 1
                    group.addTask { [self] in
                        // A refused or unreachable receiver fails the attempt at once; the HTTP
                        // client alone would retry the connection until its deadline.
                        if let host = options.endpoint.host,
                           let refused = NetworkFailure.probe(host: host, port: options.endpoint.port ?? (options.endpoint.scheme == "https" ? 443 : 80),
                                                              timeout: options.connectTimeout) {
                            return .failed(batch: batch, reason: "\(options.endpoint.absoluteString): \(refused)")
                        }
                        do {
                            let response = try await send(batch)
                            return .answered(batch: batch, status: response.status, body: response.body,
                                             contentType: response.contentType, retryAfter: response.retryAfter)
                        } catch {
                            return .failed(batch: batch, reason: "\(options.endpoint.absoluteString): \(NetworkFailure.describe(error))")
                        }
                    }
                }
                if inFlight == 0 {
                    if options.follow, outcome.gaveUp == nil, !isFinishing {
                        // Idle: the request memory kept for a backlog (megabytes a writer) goes
                        // back, so a long-lived agent or relay does not hold it between bursts.
                        requestMemory.withLock { $0.removeAll() }
                        try await pause(options.pollInterval)
                        cursor = 0  // pick up anything still pending, in order
                        continue
                    }
                    break
                }
                guard let finished = try await group.next() else { break }
                inFlight -= 1
                switch finished {
                case let .failed(batch, reason):
                    retry.append(batch)
                    try await backoff(&attempt, &failingSince, reason: reason, outcome: &outcome)
                case let .answered(batch, status, body, contentType, retryAfter):
                    // emit's ingest protocol, or OTLP/HTTP's rules (opentelemetry-proto, otlp.md
                    // "OTLP/HTTP Response") where they differ.
                    let otlp = options.deliveryProtocol == .otlp
                    let peer = otlp ? "the collector" : "the receiver"
                    let message = { otlp ? OTLPLogs.errorMessage(body, contentType: contentType) : String(decoding: body.prefix(300), as: UTF8.self) }
                    switch status {
                    case 200..<300 where !otlp:
                        let result = try IngestResult(json: try JSONParser.parse(body))
                        var rejected: [(seq: Int64, codes: [String])] = []
                        for r in result.rejected where r.index >= 0 && r.index < batch.count {
                            rejected.append((batch[r.index].seq, r.codes))
                        }
                        try markDelivered(batch, rejected: rejected, outcome: &outcome)
                        outcome.duplicates += result.duplicates
                        attempt = 0
                        failingSince = nil
                    case 200..<300:
                        let partial = OTLPLogs.partialSuccess(body, contentType: contentType)
                        if let partial, partial.rejected > 0, batch.count > 1 {
                            // OTLP does not say which records it refused: each event goes again
                            // alone (the accepted ones arrive twice; sinks drop them by emit.event_id).
                            retry.append(contentsOf: batch.reversed().map { [$0] })
                            log("the collector refused \(partial.rejected) of \(batch.count) records (\(partial.message)); sending them one at a time to find which")
                        } else {
                            let refused = (partial?.rejected ?? 0) > 0
                            if let partial, !refused, !partial.message.isEmpty { log("the collector accepted the batch with a warning: \(partial.message)") }
                            try markDelivered(batch, rejected: refused ? [(batch[0].seq, [Self.rejectionCode(partial?.message ?? "")])] : [], outcome: &outcome)
                        }
                        attempt = 0
                        failingSince = nil
                    case 401, 403:
                        group.cancelAll()
                        throw FlushError.unauthorized(status, message())
                    case 413 where batch.count > 1:
                        let half = batch.count / 2
                        batchSize = max(1, min(batchSize, half))
                        retry.append(Array(batch[half...]))
                        retry.append(Array(batch[..<half]))
                        log("\(peer) says the batch is too large (413); sending \(batchSize) per batch")
                    case 413 where !otlp:
                        outcome.gaveUp = "event \(batch[0].eventID) alone is larger than the receiver accepts (413); it stays pending"
                    case _ where otlp ? [429, 502, 503, 504].contains(status) : status == 408 || status == 429 || (500..<600).contains(status):
                        retry.append(batch)
                        // One line, however the server wrote it (a proxy's HTML error page).
                        let said = message().split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                            .filter { !$0.isEmpty }.joined(separator: " ").prefix(200)
                        try await backoff(&attempt, &failingSince, reason: "HTTP \(status)" + (said.isEmpty ? "" : ": \(said)"), retryAfter: retryAfter, outcome: &outcome)
                    case 400..<500 where otlp && batch.count > 1:
                        // A refused request names no record: each event alone, to keep the good ones.
                        retry.append(contentsOf: batch.reversed().map { [$0] })
                        log("the collector refused a batch of \(batch.count) (HTTP \(status): \(message())); sending them one at a time to find which")
                    case 400..<500 where otlp:
                        try markDelivered(batch, rejected: [(batch[0].seq, [Self.rejectionCode("HTTP \(status): " + message())])], outcome: &outcome)
                    default:
                        // Not retried (OTLP forbids it for these); the events stay pending for the next flush.
                        outcome.gaveUp = "\(peer) answered HTTP \(status): \(message())"
                    }
                }
            }
        }
        outcome.pending = try outbox.counts().pending
        outcome.stopped = isFinishing && outcome.pending > 0
        return outcome
    }

    /// Waits `seconds`, or less once asked to finish.
    func pause(_ seconds: Double) async throws {
        let until = ContinuousClock.now + .nanoseconds(Int64(seconds * 1e9))
        while !isFinishing, ContinuousClock.now < until {
            try await Task.sleep(for: min(.milliseconds(50), until - .now))
        }
    }

    /// Marks a batch answered: its rejected events kept with their codes, the rest delivered.
    private func markDelivered(_ batch: [EventDatabase.Stored], rejected: [(seq: Int64, codes: [String])], outcome: inout FlushOutcome) throws {
        if let first = batch.first?.seq, let last = batch.last?.seq { try outbox.markDelivered(seqs: first...last, rejected: rejected) }
        outcome.delivered += batch.count - rejected.count
        outcome.rejected += rejected.count
    }

    /// How an OTLP refusal is kept with the event: the collector's own words, after a code.
    static func rejectionCode(_ message: String) -> String {
        "otlp_rejected: " + String(message.replacingOccurrences(of: ",", with: ";").prefix(300))
    }

    private func backoff(_ attempt: inout Int, _ failingSince: inout Date?, reason: String, retryAfter: Double? = nil,
                         outcome: inout FlushOutcome) async throws {
        let since = failingSince ?? Date()
        failingSince = since
        if Date().timeIntervalSince(since) > options.giveUpAfter {
            outcome.gaveUp = "gave up after \(Int(options.giveUpAfter)) s of failures (last: \(reason))"
            return
        }
        // Exponential backoff from 100 ms, capped at 10 s, with full jitter in [0.5, 1.5).
        // A server's Retry-After wins (within what is left before giving up).
        let base = min(10.0, 0.1 * pow(2.0, Double(attempt)))
        var delay = base * Double.random(in: 0.5..<1.5)
        if let retryAfter { delay = min(max(0, retryAfter), max(0, options.giveUpAfter - Date().timeIntervalSince(since)) + 0.01) }
        attempt += 1
        guard !isFinishing else { return }  // the batch stays pending for the next start
        log(String(format: "delivery failed (%@); retrying in %.2f s", reason, delay))
        try await pause(delay)
    }

    private func send(_ batch: [EventDatabase.Stored]) async throws -> (status: Int, body: [UInt8], contentType: String?, retryAfter: Double?) {
        var request = HTTPClientRequest(url: options.endpoint.absoluteString)
        request.method = .POST
        if let token = options.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in options.headers { request.headers.replaceOrAdd(name: name, value: value) }
        var (writer, body) = requestMemory.withLock { $0.popLast() } ?? (OTLPRequestWriter(), ByteBuffer())
        defer { requestMemory.withLock { if $0.count < options.maxInFlight { $0.append((writer, body)) } } }
        switch options.deliveryProtocol {
        case .emit:
            body.clear()
            body.reserveCapacity(batch.reduce(0) { $0 + $1.body.utf8.count + 1 })
            for stored in batch {
                body.writeString(stored.body)
                body.writeInteger(UInt8(ascii: "\n"))
            }
            request.headers.replaceOrAdd(name: "Content-Type", value: IngestProtocol.contentType)
        case .otlp:
            try writer.write(batch.map(\.body), encoding: options.otlpEncoding, into: &body)
            request.headers.replaceOrAdd(name: "Content-Type", value: options.otlpEncoding.contentType)
        }
        if options.gzip {
            request.body = .bytes(try body.compress(with: .gzip()))
            request.headers.add(name: "Content-Encoding", value: "gzip")
            return try await execute(request)
        }
        request.body = .bytes(body)
        defer { request.body = nil }  // the body's only owner again once sent, so its memory is reused
        return try await execute(request)
    }

    private func execute(_ request: HTTPClientRequest) async throws -> (status: Int, body: [UInt8], contentType: String?, retryAfter: Double?) {
        let response = try await client.execute(request, timeout: .seconds(Int64(options.requestTimeout)))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), Array(body.readableBytesView), response.headers.first(name: "Content-Type"),
                Self.retryAfter(response.headers.first(name: "Retry-After")))
    }

    /// Retry-After as seconds from now: a number of seconds or an HTTP date (RFC 9110 §10.2.3).
    static func retryAfter(_ value: String?) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }
}
