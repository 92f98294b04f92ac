import EmitContract
import EmitMeters
import EmitSessions
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
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

/// A request's context: the channel, so the handler can ask the kernel who is calling.
struct AgentRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The control API (AgentProtocol) on a Unix socket, HTTP/1.1 through Hummingbird. The caller's
/// uid is the kernel's word (SO_PEERCRED), never the request's: only a run's uid or root may
/// read or end it.
public enum AgentServer {
    public static let maxBodyBytes = 64 << 10

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

    /// Builds the application; `deliver` stores events in the agent's outbox.
    public static func application(
        agent: Agent, socket: AgentSocket, deliver: @escaping @Sendable ([EnergyEvent]) throws -> Void,
        health: @escaping @Sendable () -> [(String, JSONValue)] = { [] },
        onRunning: @escaping @Sendable () async -> Void = {}
    ) -> some ApplicationProtocol {
        let router = Router(context: AgentRequestContext.self)

        router.post(RouterPath(AgentProtocol.begin)) { request, context -> Response in
            await respond(context) { uid throws(AgentError) in
                let begin = try AgentProtocol.BeginRequest(json: try await body(request))
                let run = try await agent.beginWhenDurable(runID: begin.runID, uid: uid, scope: begin.scope, labels: begin.labels)
                return (201, AgentProtocol.json(run))
            }
        }

        router.post(RouterPath(AgentProtocol.end)) { request, context -> Response in
            await respond(context) { uid throws(AgentError) in
                let end = try AgentProtocol.EndRequest(json: try await body(request))
                let result = try await agent.endWhenDurable(runID: end.runID, uid: uid, continuing: end.continuing)
                var members: [(String, JSONValue)] = [("run", AgentProtocol.json(result.run))]
                if let window = result.window {
                    members += [("valid_from", .string(window.from.text)), ("valid_to", .string(window.to.text))]
                }
                if end.deliver {
                    do { try deliver(result.events) } catch {
                        // The run is over and its events exist: hand them back rather than lose them.
                        members.append(("events", .array(result.events.map(\.json))))
                        members.append(("outbox_error", .string("\(error)")))
                        return (200, .object(members))
                    }
                    members.append(("stored_in_outbox", .number(Double(result.events.count))))
                } else {
                    members.append(("events", .array(result.events.map(\.json))))
                }
                members.append(("not_measured", .array(result.withheld.map { .object([("device", .string($0.device)), ("reason", .string($0.reason))]) })))
                return (200, .object(members))
            }
        }

        router.get(RouterPath(AgentProtocol.list)) { _, context -> Response in
            await respond(context) { uid throws(AgentError) in
                (200, .object([("runs", .array(agent.openRuns(uid: uid).map(AgentProtocol.json)))]))
            }
        }

        router.get(RouterPath(AgentProtocol.show)) { request, context -> Response in
            await respond(context) { uid throws(AgentError) in
                guard let runID = request.uri.queryParameters["run_id"].map(String.init), !runID.isEmpty else {
                    throw AgentError(status: 400, code: "missing_field", field: "run_id", message: "?run_id= is required")
                }
                return (200, AgentProtocol.json(try agent.show(runID: runID, uid: uid)))
            }
        }

        router.get(RouterPath(AgentProtocol.health)) { _, context -> Response in
            await respond(context) { _ throws(AgentError) in
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
                return (200, .object(members + health()))
            }
        }

        var logger = Logger(label: "emit-agent")
        logger.logLevel = .warning
        return Application(
            router: router, server: .http1(),
            configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socket.path), serverName: "emit-agent"),
            onServerRunning: { _ in
                // Created under the default umask (no one else may connect); opened to the group now.
                if let group = socket.group {
                    _ = chown(socket.path, uid_t.max, group)
                    chmod(socket.path, 0o660)
                } else {
                    chmod(socket.path, 0o600)
                }
                await onRunning()
            },
            logger: logger)
    }

    /// The caller's uid from the kernel, then the handler; errors as JSON.
    static func respond(_ context: AgentRequestContext,
                        _ handler: (UInt32) async throws(AgentError) -> (Int, JSONValue)) async -> Response {
        do {
            let uid = try await peerUID(context.channel)
            let (status, json) = try await handler(uid)
            return response(status, json)
        } catch {
            return response(error.status, AgentProtocol.json(error))
        }
    }

    static func peerUID(_ channel: any Channel) async throws(AgentError) -> UInt32 {
        guard let provider = channel as? SocketOptionProvider else {
            throw AgentError(status: 500, code: "peer", message: "the connection has no socket to ask for peer credentials")
        }
        do {
            let credentials: PeerCredentials = try await provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)).get()
            return credentials.uid
        } catch {
            throw AgentError(status: 500, code: "peer", message: "SO_PEERCRED failed: \(error)")
        }
    }

    /// Linux's `struct ucred` (not exported to Swift without _GNU_SOURCE): pid, uid, gid.
    struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    static func body(_ request: Request) async throws(AgentError) -> JSONValue {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: maxBodyBytes) } catch {
            throw AgentError(status: 413, code: "too_large", field: "body", message: "the body is over \(maxBodyBytes) bytes or was cut off")
        }
        do { return try JSONParser.parse(Array(buffer.readableBytesView)) } catch {
            throw AgentError(status: 400, code: "invalid_json", field: "body", message: "the body is not JSON: \(error)")
        }
    }

    static func response(_ status: Int, _ json: JSONValue) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(JSONWriter.line(json))
        buffer.writeString("\n")
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}
