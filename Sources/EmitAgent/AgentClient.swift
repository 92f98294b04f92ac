import AsyncHTTPClient
import EmitContract
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// The agent's control API from a client (`emit run`, `emit agent begin|end|status`): HTTP/1.1
/// over the Unix socket through async-http-client. Blocking calls, for command-line code.
public struct AgentClient: Sendable {
    public let socketPath: String
    public let timeout: Double

    public init(socketPath: String, timeout: Double = 10) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    /// `EMIT_AGENT_SOCKET`, else the default path.
    public static func socketPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment["EMIT_AGENT_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? AgentSocket.defaultPath
    }

    /// Whether something accepts connections on the socket (a stale file does not).
    public static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) == 0 }
        }
    }

    public func begin(_ request: AgentProtocol.BeginRequest) throws(AgentError) -> JSONValue {
        try call(.POST, AgentProtocol.begin, body: request.json)
    }

    public func end(_ request: AgentProtocol.EndRequest) throws(AgentError) -> JSONValue {
        try call(.POST, AgentProtocol.end, body: request.json)
    }

    public func runs() throws(AgentError) -> JSONValue { try call(.GET, AgentProtocol.list) }

    public func health() throws(AgentError) -> JSONValue { try call(.GET, AgentProtocol.health) }

    /// One request; an error answer becomes the AgentError it carries.
    public func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) throws(AgentError) -> JSONValue {
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: path) else {
            throw AgentError(status: 0, code: "socket", field: "socket", message: "\(socketPath) cannot be used as a socket path")
        }
        let response: HTTPClient.Response
        do {
            var headers = HTTPHeaders()
            if body != nil { headers.add(name: "Content-Type", value: "application/json") }
            let request = try HTTPClient.Request(url: url, method: method, headers: headers,
                                                 body: body.map { .bytes(Array(JSONWriter.line($0).utf8)) })
            response = try HTTPClient.shared.execute(request: request, deadline: .now() + .milliseconds(Int64(timeout * 1000))).wait()
        } catch {
            throw AgentError(status: 0, code: "unreachable", field: "socket", message: "the agent at \(socketPath) did not answer: \(Self.describe(error))")
        }
        let bytes = response.body.map { Array($0.readableBytesView) } ?? []
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            throw AgentError(status: Int(response.status.code), code: "bad_answer", message: "the agent answered \(response.status.code) with no JSON")
        }
        if let error = AgentProtocol.error(in: json, status: Int(response.status.code)) { throw error }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw AgentError(status: Int(response.status.code), code: "bad_answer", message: "the agent answered \(response.status.code)")
        }
        return json
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("ENOENT") || text.contains("No such file") { return "no such socket" }
        if text.contains("EACCES") || text.contains("Permission denied") { return "permission denied (is your user in the agent's socket group?)" }
        if text.contains("ECONNREFUSED") || text.contains("Connection refused") { return "connection refused (the agent is not running)" }
        return text
    }
}
