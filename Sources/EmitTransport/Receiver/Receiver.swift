import CompressNIO
import EmitContract
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The reference ingest endpoint: `POST /v1/events` (JSON Lines, optionally gzip, bearer token),
/// `GET /v1/events` (everything stored, as JSON Lines) and `GET /healthz`.
public struct ReceiverConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8786
    public var token: String?
    public var maxBodyBytes = 64 << 20
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init() {}
}

public enum Receiver {
    /// A store that cannot take events (a full disk) is retried after this many seconds.
    static let storeRetryAfterSeconds = 30

    /// Builds the application; `onRunning` gets the bound port (useful with port 0); `log` is
    /// told when the store fails and when it stores again.
    public static func application(
        configuration: ReceiverConfiguration, processor: IngestProcessor,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in },
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router()
        let token = configuration.token.map { Array($0.utf8) }
        let maxBody = configuration.maxBodyBytes
        let store = processor.store
        let storeFailure = StoreFailureLog(log: log)

        router.get("/healthz") { _, _ in "ok\n" }

        router.post(RouterPath(IngestProtocol.path)) { request, _ -> Response in
            if let failure = authorize(request, token: token) { return failure }
            var request = request
            var body = try await request.collectBody(upTo: maxBody)
            if let encoding = request.headers[.contentEncoding]?.lowercased(), encoding != "identity" {
                guard encoding == "gzip" else {
                    return text(.unsupportedMediaType, "Content-Encoding \(encoding) is not supported (use gzip or none)\n")
                }
                do { body = try body.decompress(with: .gzip(), maxSize: maxBody) } catch {
                    if let failure = error as? CompressNIOError, failure == .bufferOverflow {
                        return text(.contentTooLarge, "the decompressed body exceeds \(maxBody) bytes\n")
                    }
                    return text(.badRequest, "the gzip body cannot be decompressed\n")
                }
            }
            let bytes = Array(body.readableBytesView)
            do {
                let result = try await processor.ingest(bytes)
                storeFailure.stored()
                var out = ByteBuffer()
                out.writeString(JSONWriter.line(result.json))
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: out))
            } catch let error as IngestProcessor.NotJSONLines {
                return text(.badRequest, "not JSON Lines: \(error)\n")
            } catch let failure as IngestProcessor.StoreFailed {
                // The sender keeps the events and retries; what was stored is deduplicated then.
                storeFailure.failed(failure)
                var response = text(.serviceUnavailable, "the receiver cannot store events: \(StorageFailure.describe(failure.error, at: failure.path))\n")
                response.headers[.retryAfter] = String(storeRetryAfterSeconds)
                return response
            }
        }

        router.get(RouterPath(IngestProtocol.path)) { request, _ -> Response in
            if let failure = authorize(request, token: token) { return failure }
            return Response(status: .ok, headers: [.contentType: IngestProtocol.contentType], body: ResponseBody { writer in
                var page: [EventDatabase.Stored] = []
                var after: Int64 = 0
                repeat {
                    page = try store.page(after: after, limit: 5000)
                    var buffer = ByteBuffer()
                    for stored in page {
                        buffer.writeString(stored.body)
                        buffer.writeInteger(UInt8(ascii: "\n"))
                    }
                    if !page.isEmpty { try await writer.write(buffer) }
                    after = page.last?.seq ?? after
                } while page.count == 5000
                try await writer.finish(nil)
            })
        }

        var logger = Logger(label: "emit-receive")
        logger.logLevel = .warning  // requests are not logged: their headers carry tokens
        let server: HTTPServerBuilder
        if let cert = configuration.tlsCertificate, let key = configuration.tlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            server = try .tls(.http1(), tlsConfiguration: tls)
        } else {
            server = .http1()
        }
        return Application(
            router: router, server: server,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "emit-receive"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// Bearer token check in constant time (no early exit on the first differing byte).
    static func authorize(_ request: Request, token: [UInt8]?) -> Response? {
        guard let token else { return nil }
        let header = request.headers[.authorization] ?? ""
        let prefix = "Bearer "
        guard header.hasPrefix(prefix) else {
            return text(.unauthorized, "a bearer token is required\n", headers: [.wwwAuthenticate: "Bearer"])
        }
        let given = Array(header.utf8.dropFirst(prefix.utf8.count))
        var difference = UInt8(given.count == token.count ? 0 : 1)
        for i in 0..<max(given.count, token.count) {
            difference |= (i < given.count ? given[i] : 0) ^ (i < token.count ? token[i] : 0xFF)
        }
        return difference == 0 ? nil : text(.unauthorized, "the bearer token is not valid\n", headers: [.wwwAuthenticate: "Bearer"])
    }

    static func text(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(message)
        var fields = headers
        fields[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: buffer))
    }
}

/// Says on the receiver's side, once per cause, why requests are answered 503, and when storing
/// works again: a full disk must not pass unseen while senders quietly retry.
final class StoreFailureLog: Sendable {
    private let log: @Sendable (String) -> Void
    private let last = Mutex<String?>(nil)

    init(log: @escaping @Sendable (String) -> Void) {
        self.log = log
    }

    func failed(_ failure: IngestProcessor.StoreFailed) {
        let said = failure.description
        let isNew = last.withLock { last in
            defer { last = said }
            return last != said
        }
        if isNew { log("cannot store events in \(said); answering 503 (the senders keep their events and retry)") }
    }

    func stored() {
        let recovered = last.withLock { last in
            defer { last = nil }
            return last != nil
        }
        if recovered { log("storing events again") }
    }
}
