/// One finding of the invariant suite, printed as `FILE:LINE: CODE: message`.
public struct CheckFinding: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let code: String
    public let message: String

    public init(file: String, line: Int, code: String, message: String) {
        self.file = file
        self.line = line
        self.code = code
        self.message = message
    }

    public var description: String { "\(file):\(line): \(code): \(message)" }
}
