import ArgumentParser
import EmitContract
import EmitTransport
import Foundation
import Hummingbird
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Run the reference ingest endpoint: validate, store once, optionally relay.",
        discussion: """
            POST /v1/events takes JSON Lines (optionally Content-Encoding: gzip) with \
            Authorization: Bearer TOKEN and answers {"accepted", "duplicates", "rejected": [{"index", \
            "event_id", "codes"}]}; every event is checked with the contract validator and stored in \
            --db exactly once. 401 without a valid token, 413 over --max-body, 400 for a body that \
            is not JSON Lines, 503 with Retry-After while --db cannot take events (a full disk: \
            said once here on stderr, and again when it stores again; senders keep their events \
            and retry). GET /v1/events returns everything stored (same token); GET /healthz \
            answers ok. With --forward-to, accepted events also enter this host's outbox and are \
            delivered upstream, so a site relay can collect from many nodes. A relay refused for \
            good (a wrong upstream token) says so and keeps the events in the outbox; receiving \
            goes on.

            SIGTERM or SIGINT stops it gracefully within 8 s: no new requests, then the relay's \
            batches on the wire are answered and marked (one still unanswered then goes again at \
            the next start; the upstream receiver holds each event once).

            Without --token-file it refuses to start: anyone who reaches the port could store \
            events. --allow-unauthenticated lifts that on a loopback address only (tests, a \
            single host), with a warning.
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

    @Flag(name: .customLong("allow-unauthenticated"), help: "Start without --token-file, on a loopback address only.")
    var allowUnauthenticated = false

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw CommandFailure.usage("--listen must be HOST:PORT, not \"\(listen)\"")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw CommandFailure.usage("--tls-cert and --tls-key go together") }
        guard maxBody > 0 else { throw CommandFailure.usage("--max-body must be positive") }
        let listenHost = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if tokenFile == nil {
            guard allowUnauthenticated else {
                throw CommandFailure.usage("refusing to accept anyone's events: give --token-file FILE (the bearer token clients must send), or --allow-unauthenticated on a loopback address")
            }
            guard listenHost == "localhost" || listenHost == "::1" || listenHost.hasPrefix("127.") else {
                throw CommandFailure.usage("--allow-unauthenticated works only on a loopback address (127.0.0.1, ::1, localhost), not \(listenHost); give --token-file FILE")
            }
            Console.error("emit receive: warning: no --token-file: any process on this host can store events")
        }
        // Checked before anything is created: a refused start leaves nothing behind.
        let folder = (db as NSString).deletingLastPathComponent
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.isEmpty ? "." : folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CommandFailure.usage("--db \(db): the folder \(folder) does not exist")
        }
        if let problem = ListenCheck.problem(host: listenHost, port: port) { throw CommandFailure.usage(problem) }
        let dbExisted = FileManager.default.fileExists(atPath: db)
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
            onRunning: { bound in Console.error("emit receive: listening on \(scheme)://\(host):\(bound) (store \(store.path))") },
            log: { Console.error("emit receive: \($0)") })
        // Shut down in reverse order: the server stops taking events first, then the relay
        // finishes the batches it has on the wire.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let flusher {
            // A relay that stops (refused credentials, a collector refusing for good) leaves the
            // events in its outbox; the receiver goes on taking them.
            let relay = DeliveryService(flusher, stoppedForGood: { reason in
                Console.error("emit receive (relay): stopped: \(reason); events stay in the outbox \(flusher.outbox.path); receiving goes on")
            })
            services.append(.init(service: relay, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore, serviceName: "relay"))
        }
        services.append(.init(service: app, serviceName: "receiver"))
        do { try await Daemon.run("emit-receive", services) } catch {
            await flusher?.shutdown()
            if !dbExisted { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) } }
            throw CommandFailure.usage(ListenCheck.describe(error, host: listenHost, port: port))
        }
    }
}

/// Whether HOST:PORT can be listened on, asked of the kernel before a server is built, and
/// the sentence for a listening failure.
enum ListenCheck {
    /// Why `flag`'s HOST:PORT cannot be listened on, or nil.
    static func problem(host: String, port: Int, flag: String = "--listen") -> String? {
        guard port != 0 else { return nil }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else {
            return "\(flag): \(host) is not an address of this machine"
        }
        defer { freeaddrinfo(found) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 else { return nil }
        return sentence(errno, host: host, port: port, flag: flag)
    }

    static func sentence(_ code: Int32, host: String, port: Int, flag: String = "--listen") -> String {
        switch code {
        case EADDRINUSE: return "\(flag): \(host):\(port) is already in use (another server on that port?); choose another port"
        case EACCES: return "\(flag): \(host):\(port): permission denied (ports below 1024 need root)"
        case EADDRNOTAVAIL: return "\(flag): \(host) is not an address of this machine"
        default: return "\(flag): cannot listen on \(host):\(port): \(String(cString: strerror(code)))"
        }
    }

    /// A listening failure after the check (the port taken meanwhile) in the check's words.
    static func describe(_ error: any Error, host: String, port: Int, flag: String = "--listen", otherwise prefix: String = "receive") -> String {
        let text = "\(error)"
        if text.contains("Address already in use") { return sentence(EADDRINUSE, host: host, port: port, flag: flag) }
        if text.contains("Permission denied") { return sentence(EACCES, host: host, port: port, flag: flag) }
        if text.contains("Cannot assign requested address") { return sentence(EADDRNOTAVAIL, host: host, port: port, flag: flag) }
        return "\(prefix): \(text)"
    }
}
