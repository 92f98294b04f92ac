import EmitContract
import Foundation

/// For tests holding JSON written by hand (`JSONFragmentWriting`) to what Codable writes.
public enum HandWrittenJSON {
    /// The value's JSON as its `writeJSON` writes it.
    public static func data(_ value: some JSONFragmentWriting) throws -> Data {
        var out = JSONFragment()
        try value.writeJSON(into: &out)
        return Data(out.bytes)
    }

    /// Every member's path in the document (`.a.b`, arrays as `[]`): equal sets mean the same
    /// members, whatever their order.
    public static func memberPaths(_ data: Data) throws -> Set<String> {
        func walk(_ value: Any, _ path: String, into paths: inout Set<String>) {
            if let object = value as? [String: Any] {
                for (key, member) in object {
                    paths.insert(path + "." + key)
                    walk(member, path + "." + key, into: &paths)
                }
            } else if let array = value as? [Any] {
                for item in array { walk(item, path + "[]", into: &paths) }
            }
        }
        var paths = Set<String>()
        walk(try JSONSerialization.jsonObject(with: data), "", into: &paths)
        return paths
    }
}
