import Foundation

/// The node a meter runs on: `EMIT_NODE_ID`, else `/etc/machine-id`, else the host name.
public enum NodeIdentity {
    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let id = environment["EMIT_NODE_ID"]?.trimmingCharacters(in: .whitespacesAndNewlines), !id.isEmpty { return id }
        if let data = FileManager.default.contents(atPath: "/etc/machine-id") {
            let id = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !id.isEmpty { return id }
        }
        return ProcessInfo.processInfo.hostName
    }
}
