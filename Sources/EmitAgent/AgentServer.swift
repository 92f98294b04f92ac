import EmitContract
import EmitMeters
import EmitSessions
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Where and how the control socket listens.
public struct AgentSocket: Sendable {
    public var path: String
    /// The group given read-write access (mode 0660); nil: root only (0600).
    public var group: gid_t?

    public init(path: String, group: gid_t? = nil) {
        self.path = path
        self.group = group
    }

    public static let defaultPath = "/run/emit/agent.sock"
}

/// The control API (AgentProtocol) on a Unix socket: HTTP/1.1 through swift-nio's codec, on one
/// event loop. Each begin or end is answered once its change is written to the runs' journal
/// (fsynced every interval); requests read in one turn of the loop share one write
/// (LoopCommitter). The caller's uid is the kernel's word (SO_PEERCRED), never the request's:
/// only a run's uid or root may read or end it.
public final class AgentServer: Service {
    public static let maxBodyBytes = 64 << 10

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// Prepares the socket path: refuses one another process listens on, removes a stale one,
    /// creates the folder.
    public static func prepare(_ socket: AgentSocket) throws(AgentError) {
        let folder = (socket.path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]) } catch {
                throw AgentError(status: 500, code: "socket", field: "socket", message: "cannot create \(folder): \(error.localizedDescription)")
            }
        }
        var info = stat()
        guard lstat(socket.path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw AgentError(status: 500, code: "socket", field: "socket", message: "\(socket.path) exists and is not a socket; remove it or choose --socket")
        }
        if AgentClient.isListening(socket.path) {
            throw AgentError(status: 500, code: "socket", field: "socket", message: "\(socket.path) is in use: another agent listens on it")
        }
        unlink(socket.path)
    }

    /// Listens on the socket; `deliver` stores events in the agent's outbox; `served` is told
    /// the route of every request (AgentProtocol's paths).
    public init(agent: Agent, socket: AgentSocket, deliver: @escaping @Sendable ([EnergyEvent]) throws -> Void,
                health: @escaping @Sendable () -> [(String, JSONValue)] = { [] },
                served: @escaping @Sendable (String) -> Void = { _ in }) throws(AgentError) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let routes = AgentRoutes(agent: agent, deliver: deliver, health: health, served: served, committer: LoopCommitter(agent: agent, loop: loop))
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AgentHTTPHandler(routes: routes))
                }
            }
        do {
            channel = try bootstrap.bind(unixDomainSocketPath: socket.path).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw AgentError(status: 500, code: "socket", field: "socket", message: "cannot listen on \(socket.path): \(error)")
        }
        // Created under the default umask (no one else may connect); opened to the group now.
        if let gid = socket.group {
            _ = chown(socket.path, uid_t.max, gid)
            chmod(socket.path, 0o660)
        } else {
            chmod(socket.path, 0o600)
        }
    }

    /// Serves until cancelled or shut down gracefully, then closes the socket.
    public func run() async throws {
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: { [channel] in
            channel.close(promise: nil)
        }
        try await group.shutdownGracefully()
    }

    /// Linux's `struct ucred` (not exported to Swift without _GNU_SOURCE): pid, uid, gid.
    struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }
}

/// Answers waiting for their change to be in the journal, and the commit that puts it there:
/// once per turn of the loop, after it read what arrived, so requests read together share one
/// write. A write of a few hundred bytes into the page cache is cheaper than handing it to
/// another thread and back (the fsync happens every interval, on the agent's writer thread).
/// Used on its loop.
final class LoopCommitter: @unchecked Sendable {
    private let agent: Agent
    let loop: any EventLoop
    private var waiting: [() -> Void] = []

    init(agent: Agent, loop: any EventLoop) {
        self.agent = agent
        self.loop = loop
    }

    /// Calls `answer` once every change made so far is in the journal.
    func answerOnceWritten(_ answer: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        waiting.append(answer)
        guard waiting.count == 1 else { return }
        // Runs after the I/O of this turn: every request read in it is in the journal's next write.
        loop.execute { [self] in
            try? agent.commitPending()  // a failure answers all the same; health says why
            let ready = waiting
            waiting.removeAll(keepingCapacity: true)
            for answer in ready { answer() }
        }
    }
}

/// What each route does; the handler only reads requests and writes answers.
struct AgentRoutes: Sendable {
    let agent: Agent
    let deliver: @Sendable ([EnergyEvent]) throws -> Void
    let health: @Sendable () -> [(String, JSONValue)]
    let served: @Sendable (String) -> Void
    let committer: LoopCommitter

    typealias Answer = (status: Int, json: JSONValue)

    static let routes: Set<String> = [AgentProtocol.begin, AgentProtocol.end, AgentProtocol.list, AgentProtocol.show, AgentProtocol.health]

    /// Handles one request; `answer` is called once, on the loop.
    func handle(method: HTTPMethod, uri: String, body: ByteBuffer, uid: UInt32, answer: @escaping (Answer) -> Void) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        if Self.routes.contains(path) { served(path) }
        do {
            switch (method, path) {
            case (.POST, AgentProtocol.begin):
                let request = try AgentProtocol.BeginRequest(json: try Self.json(body))
                let (run, _) = try agent.openRun(runID: request.runID, uid: uid, scope: request.scope, labels: request.labels)
                committer.answerOnceWritten { answer((201, AgentProtocol.json(run))) }
            case (.POST, AgentProtocol.end):
                let request = try AgentProtocol.EndRequest(json: try Self.json(body))
                let (result, _) = try agent.closeRun(runID: request.runID, uid: uid, continuing: request.continuing)
                committer.answerOnceWritten { [deliver, loop = committer.loop] in
                    guard request.deliver else { return answer((200, Self.ended(result, delivered: nil))) }
                    // The outbox's own durable write happens off the loop; the answer comes back to it.
                    let bound = NIOLoopBound(answer, eventLoop: loop)
                    DispatchQueue.global().async {
                        let outcome: Result<Void, any Error> = Result { try deliver(result.events) }
                        loop.execute { bound.value((200, Self.ended(result, delivered: outcome))) }
                    }
                }
            case (.GET, AgentProtocol.list):
                answer((200, .object([("runs", .array(agent.openRuns(uid: uid).map(AgentProtocol.json)))])))
            case (.GET, AgentProtocol.show):
                let query = parts.count > 1 ? URLComponents(string: "?" + parts[1])?.queryItems ?? [] : []
                guard let runID = query.first(where: { $0.name == "run_id" })?.value, !runID.isEmpty else {
                    throw AgentError(status: 400, code: "missing_field", field: "run_id", message: "?run_id= is required")
                }
                answer((200, AgentProtocol.json(try agent.show(runID: runID, uid: uid))))
            case (.GET, AgentProtocol.health):
                answer((200, healthJSON()))
            case (_, AgentProtocol.begin), (_, AgentProtocol.end), (_, AgentProtocol.show), (_, AgentProtocol.health):
                throw AgentError(status: 405, code: "method", message: "\(method) is not allowed on \(path)")
            default:
                throw AgentError(status: 404, code: "not_found", message: "no route \(path)")
            }
        } catch let error as AgentError {
            answer((error.status, AgentProtocol.json(error)))
        } catch {
            answer((500, AgentProtocol.json(AgentError(status: 500, code: "internal", message: "\(error)"))))
        }
    }

    static func json(_ body: ByteBuffer) throws(AgentError) -> JSONValue {
        do { return try JSONParser.parse(Array(body.readableBytesView)) } catch {
            throw AgentError(status: 400, code: "invalid_json", field: "body", message: "the body is not JSON: \(error)")
        }
    }

    /// An ended run's answer: its events, or how many went to the outbox (or, when the outbox
    /// failed, the events after all: the run is over and they exist).
    static func ended(_ result: RunResult, delivered: Result<Void, any Error>?) -> JSONValue {
        var members: [(String, JSONValue)] = [("run", AgentProtocol.json(result.run))]
        if let window = result.window {
            members += [("valid_from", .string(window.from.text)), ("valid_to", .string(window.to.text))]
        }
        switch delivered {
        case .success?:
            members.append(("stored_in_outbox", .number(Double(result.events.count))))
        case .failure(let error)?:
            members.append(("events", .array(result.events.map(\.json))))
            members.append(("outbox_error", .string("\(error)")))
            return .object(members)
        case nil:
            members.append(("events", .array(result.events.map(\.json))))
        }
        members.append(("not_measured", .array(result.withheld.map { .object([("device", .string($0.device)), ("reason", .string($0.reason))]) })))
        return .object(members)
    }

    func healthJSON() -> JSONValue {
        let totals = agent.sampler.totals()
        var members: [(String, JSONValue)] = [
            ("status", .string(agent.lastCheckpointFailure == nil ? "ok" : "degraded")),
            ("node_id", .string(agent.configuration.nodeID)),
            ("interval_ms", .number(agent.sampler.intervalSeconds * 1000)),
            ("rounds", .number(Double(totals.rounds))),
            ("open_runs", .number(Double(agent.openRunCount))),
            ("devices", .array(totals.devices.map { device in
                var d: [(String, JSONValue)] = [("key", .string(ContinuousSampler.key(device.device))),
                                                ("class", .string(device.device.device.deviceClass.rawValue))]
                if let name = device.device.device.name { d.append(("name", .string(name))) }
                d.append(("joules", device.joules.map { .number($0) } ?? .null))
                d.append(("failed_reads", .number(Double(device.failedReads))))
                return .object(d)
            })),
        ]
        if let failure = agent.lastCheckpointFailure { members.append(("checkpoint_failure", .string(failure))) }
        return .object(members + health())
    }
}

/// One connection: reads a request (head, body up to the limit, end), asks the kernel who is
/// calling, hands it to the routes, writes the answer; keeps the connection for the next.
final class AgentHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: AgentRoutes
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false
    private var uid: UInt32?

    init(routes: AgentRoutes) {
        self.routes = routes
    }

    func channelActive(context: ChannelHandlerContext) {
        // Asked once per connection, on its loop: the kernel's answer is immediate.
        if let provider = context.channel as? any SocketOptionProvider {
            let credentials = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
                as EventLoopFuture<AgentServer.PeerCredentials>
            credentials.assumeIsolated().whenSuccess { [self] in uid = $0.uid }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > AgentServer.maxBodyBytes { tooLarge = true } else { body.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive
            let respond: (AgentRoutes.Answer) -> Void = { [self] answer in write(context: context, answer, keepAlive: keepAlive) }
            if tooLarge {
                respond((413, AgentProtocol.json(AgentError(status: 413, code: "too_large", field: "body", message: "the body is over \(AgentServer.maxBodyBytes) bytes"))))
            } else if let uid {
                routes.handle(method: head.method, uri: head.uri, body: body, uid: uid, answer: respond)
            } else {
                respond((500, AgentProtocol.json(AgentError(status: 500, code: "peer", message: "SO_PEERCRED gave no caller for this connection"))))
            }
        }
    }

    private func write(context: ChannelHandlerContext, _ answer: AgentRoutes.Answer, keepAlive: Bool) {
        guard context.channel.isActive else { return }  // the client hung up: nothing to answer
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeString(JSONWriter.line(answer.json))
        buffer.writeString("\n")
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(buffer.readableBytes))])
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: answer.status), headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}
