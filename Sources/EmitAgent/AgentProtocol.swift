import EmitContract

/// The agent's control API: HTTP/1.1 over its Unix socket, JSON both ways.
///
///     POST /v1/runs        {"run_id", "devices"?: [..], "visible_devices"?: "..", "labels"?: {..}} → 201 run
///     POST /v1/runs/end    {"run_id", "deliver"?: bool, "continue"?: bool} → 200 {"run", "valid_from", "valid_to",
///                          "events": [..] | "stored_in_outbox": n, "not_measured": [{"device", "reason"}]}
///     GET  /v1/runs        → {"runs": [..]} (the caller's, or every run for root)
///     GET  /v1/runs/show?run_id=ID → run
///     GET  /v1/health      → {"status", "devices", "open_runs", "rounds", ...}
///
/// A failure is {"error": {"code", "field", "message"}} with a 4xx or 5xx status.
public enum AgentProtocol {
    public static let begin = "/v1/runs"
    public static let end = "/v1/runs/end"
    public static let list = "/v1/runs"
    public static let show = "/v1/runs/show"
    public static let health = "/v1/health"

    public struct BeginRequest: Sendable, Equatable {
        public var runID: String
        public var scope: DeviceScopeRequest
        public var labels: [String: String]

        public init(runID: String, scope: DeviceScopeRequest = .init(), labels: [String: String] = [:]) {
            self.runID = runID
            self.scope = scope
            self.labels = labels
        }

        public var json: JSONValue {
            var members: [(String, JSONValue)] = [("run_id", .string(runID))]
            if let devices = scope.devices { members.append(("devices", .array(devices.map { .string($0) }))) }
            if let visible = scope.visibleDevices { members.append(("visible_devices", .string(visible))) }
            if !labels.isEmpty { members.append(("labels", .object(labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
            return .object(members)
        }

        public init(json: JSONValue) throws(AgentError) {
            let members = try Body.object(json, allowed: ["run_id", "devices", "visible_devices", "labels"])
            runID = try Body.string(members["run_id"], "run_id")
            var devices: [String]?
            if let value = members["devices"] {
                guard case .array(let items) = value else { throw Body.wrongType("devices", "an array of strings", value) }
                devices = try items.enumerated().map { index, item throws(AgentError) in try Body.string(item, "devices[\(index)]") }
            }
            let visible = try members["visible_devices"].map { value throws(AgentError) in try Body.string(value, "visible_devices", allowEmpty: true) }
            scope = DeviceScopeRequest(devices: devices, visibleDevices: visible)
            var labels: [String: String] = [:]
            if let value = members["labels"] {
                guard case .object(let pairs) = value else { throw Body.wrongType("labels", "an object of strings", value) }
                for (key, item) in pairs { labels[key] = try Body.string(item, "labels.\(key)", allowEmpty: true) }
            }
            self.labels = labels
        }
    }

    public struct EndRequest: Sendable, Equatable {
        public var runID: String
        /// Store the events in the agent's outbox instead of returning them.
        public var deliver: Bool
        /// Close a window of the run and go on from it (`emit run --window`).
        public var continuing: Bool

        public init(runID: String, deliver: Bool, continuing: Bool = false) {
            self.runID = runID
            self.deliver = deliver
            self.continuing = continuing
        }

        public var json: JSONValue { .object([("run_id", .string(runID)), ("deliver", .bool(deliver)), ("continue", .bool(continuing))]) }

        public init(json: JSONValue) throws(AgentError) {
            let members = try Body.object(json, allowed: ["run_id", "deliver", "continue"])
            runID = try Body.string(members["run_id"], "run_id")
            deliver = try Body.bool(members["deliver"], "deliver")
            continuing = try Body.bool(members["continue"], "continue")
        }
    }

    public static func json(_ error: AgentError) -> JSONValue {
        .object([("error", .object([("code", .string(error.code)), ("field", error.field.map { .string($0) } ?? .null), ("message", .string(error.message))]))])
    }

    /// The error a response carries, or nil.
    public static func error(in json: JSONValue, status: Int) -> AgentError? {
        guard let body = json["error"] else { return nil }
        return AgentError(status: status, code: body["code"]?.stringValue ?? "error", field: body["field"]?.stringValue,
                          message: body["message"]?.stringValue ?? "the agent answered \(status)")
    }

    /// Member checks that name the field at fault.
    enum Body {
        static func object(_ json: JSONValue, allowed: Set<String>) throws(AgentError) -> [String: JSONValue] {
            guard case .object(let pairs) = json else { throw wrongType("body", "a JSON object", json) }
            var members: [String: JSONValue] = [:]
            for (key, value) in pairs {
                guard allowed.contains(key) else {
                    throw AgentError(status: 400, code: "unknown_field", field: key, message: "unknown member \"\(key)\" (expected \(allowed.sorted().joined(separator: ", ")))")
                }
                members[key] = value
            }
            return members
        }

        static func string(_ value: JSONValue?, _ field: String, allowEmpty: Bool = false) throws(AgentError) -> String {
            guard let value else { throw AgentError(status: 400, code: "missing_field", field: field, message: "\"\(field)\" is required") }
            guard case .string(let text) = value else { throw wrongType(field, "a string", value) }
            guard allowEmpty || !text.isEmpty else { throw AgentError(status: 400, code: "bad_value", field: field, message: "\"\(field)\" is empty") }
            return text
        }

        static func bool(_ value: JSONValue?, _ field: String) throws(AgentError) -> Bool {
            switch value {
            case nil: return false
            case .bool(let flag)?: return flag
            case let other?: throw wrongType(field, "a boolean", other)
            }
        }

        static func wrongType(_ field: String, _ expected: String, _ value: JSONValue) -> AgentError {
            AgentError(status: 400, code: "wrong_type", field: field, message: "\"\(field)\" must be \(expected), not \(value.typeName)")
        }
    }
}

/// A failure of a request, with the HTTP status and the member it is about.
public struct AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let field: String?
    public let message: String

    public init(status: Int, code: String, field: String? = nil, message: String) {
        self.status = status
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String { message }

    static func notFound(_ runID: String) -> AgentError {
        AgentError(status: 404, code: "unknown_run", field: "run_id", message: "no open run \"\(runID)\"")
    }
}

/// The devices a run asks for (DeviceScope resolves them against the node).
public struct DeviceScopeRequest: Sendable, Equatable {
    public var devices: [String]?
    public var visibleDevices: String?

    public init(devices: [String]? = nil, visibleDevices: String? = nil) {
        self.devices = devices
        self.visibleDevices = visibleDevices
    }
}
