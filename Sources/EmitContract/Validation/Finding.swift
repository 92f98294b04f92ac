/// One violation of the contract: a stable code, where (a JSON path such as `producer.name`,
/// `$` for the whole event) and what a person should change.
public struct Finding: Sendable, Equatable, CustomStringConvertible {
    public let code: ErrorCode
    public let path: String
    public let message: String

    public init(_ code: ErrorCode, _ path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    /// `CODE: path: message`, the form `emit validate` prints after `FILE:N: `.
    public var description: String { "\(code.rawValue): \(path): \(message)" }
}
