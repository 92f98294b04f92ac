import ArgumentParser
import EmitContract
import EmitTransport
import Foundation
import Hummingbird

struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Run the reference ingest endpoint: validate, store once, optionally relay.",
        discussion: """
            POST /v1/events takes JSON Lines (optionally Content-Encoding: gzip) with \
            Authorization: Bearer TOKEN and answers {"accepted", "duplicates", "rejected": [{"index", \
            "event_id", "codes"}]}; every event is checked with the contract validator and stored in \
            --db exactly once. 401 without a valid token, 413 over --max-body, 400 for a body that \
            is not JSON Lines. GET /v1/events returns everything stored (same token); GET /healthz \
            answers ok. With --forward-to, accepted events also enter this host's outbox and are \
            delivered upstream, so a site relay can collect from many nodes.
            """
    )

    @Option(help: ArgumentHelp("Address to listen on (use port 0 for any free port).", valueName: "HOST:PORT"))
    var listen: String = "127.0.0.1:8786"

    @Option(help: ArgumentHelp("The SQLite store of received events.", valueName: "FILE"))
    var db: String

    @Option(name: .customLong("token-file"), help: ArgumentHelp("A file holding the bearer token clients must send.", valueName: "FILE"))
    var tokenFile: String?

    @Option(name: .customLong("max-body"), help: ArgumentHelp("Largest request body accepted, in bytes (after gzip decompression too).", valueName: "BYTES"))
    var maxBody: Int = 64 << 20

    @Option(name: .customLong("forward-to"), help: ArgumentHelp("Relay accepted events to this receiver.", valueName: "URL"))
    var forwardTo: String?

    @Option(name: .customLong("forward-token-file"), help: ArgumentHelp("Bearer token for --forward-to.", valueName: "FILE"))
    var forwardTokenFile: String?

    @Option(name: .customLong("outbox"), help: ArgumentHelp("The relay's outbox (default: $EMIT_HOME/outbox.sqlite).", valueName: "FILE"))
    var outboxPath: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("PEM certificate chain: serve HTTPS.", valueName: "FILE"))
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("PEM private key for --tls-cert.", valueName: "FILE"))
    var tlsKey: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM certificates to trust for --forward-to over https.", valueName: "FILE"))
    var caFile: String?

    @Flag(name: .customLong("allow-insecure-http"), help: "Allow --forward-to over plain HTTP to a host that is not loopback.")
    var allowInsecureHTTP = false

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw CommandFailure.usage("--listen must be HOST:PORT, not \"\(listen)\"")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw CommandFailure.usage("--tls-cert and --tls-key go together") }
        guard maxBody > 0 else { throw CommandFailure.usage("--max-body must be positive") }
        var configuration = ReceiverConfiguration()
        configuration.host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        configuration.port = port
        configuration.token = try tokenFile.map(TokenFile.read)
        configuration.maxBodyBytes = maxBody
        configuration.tlsCertificate = tlsCert
        configuration.tlsKey = tlsKey
        let store: EventDatabase
        do { store = try EventDatabase(path: db) } catch { throw CommandFailure.usage("\(error)") }

        var flusher: Flusher?
        var forwardOutbox: EventDatabase?
        if let forwardTo {
            var options: FlushOptions
            do { options = FlushOptions(endpoint: try FlushOptions.endpoint(from: forwardTo, allowInsecureHTTP: allowInsecureHTTP)) } catch {
                throw CommandFailure.usage("--forward-to: \(error)")
            }
            options.token = try forwardTokenFile.map(TokenFile.read)
            options.follow = true
            options.caFile = caFile
            options.giveUpAfter = .infinity
            do { forwardOutbox = try EventDatabase(path: outboxPath ?? EmitHome.outboxPath) } catch { throw CommandFailure.usage("\(error)") }
            if let forwardOutbox { flusher = try Flusher(outbox: forwardOutbox, options: options, log: { Console.error("emit receive (relay): \($0)") }) }
        }
        let scheme = tlsCert == nil ? "http" : "https"
        let host = configuration.host
        let app = try Receiver.application(
            configuration: configuration, processor: IngestProcessor(store: store, forwardOutbox: forwardOutbox),
            onRunning: { bound in Console.error("emit receive: listening on \(scheme)://\(host):\(bound) (store \(store.path))") })
        let relay = flusher
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            if let relay {
                group.addTask {
                    do { _ = try await relay.run() } catch is CancellationError {} catch {
                        Console.error("emit receive (relay): \(error)")
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
        await flusher?.shutdown()
    }
}
