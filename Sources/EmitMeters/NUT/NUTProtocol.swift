/// NUT's answers to GET VAR / LIST VAR, parsed. The protocol quotes values and escapes `"` and `\`.
///
/// Read as Unicode scalars, not Characters, so that what upsd sent comes back exactly:
/// Characters merge a combining mark with the quote before it and compare by canonical
/// equivalence (`scripts/fuzz.sh nut` checks the round trip).
enum NUTProtocol {
    static func value(ofVarLine line: String, ups: String, variable: String) -> String? {
        let scalars = Array(line.unicodeScalars)
        let prefix = Array("VAR \(ups) \(variable) \"".unicodeScalars)
        guard scalars.count > prefix.count, scalars.starts(with: prefix), scalars.last == "\"" else { return nil }
        var value = String.UnicodeScalarView()
        var escaped = false
        for scalar in scalars[prefix.count..<(scalars.count - 1)] {
            if escaped { value.append(scalar); escaped = false } else if scalar == "\\" { escaped = true } else { value.append(scalar) }
        }
        return String(value)
    }

    /// "ERR VAR-NOT-SUPPORTED" → "VAR-NOT-SUPPORTED".
    static func error(in line: String) -> String? {
        let scalars = line.unicodeScalars
        guard scalars.starts(with: "ERR ".unicodeScalars) else { return nil }
        return String(String.UnicodeScalarView(scalars.dropFirst(4)))
    }
}
