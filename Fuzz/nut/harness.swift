// libFuzzer target `nut`: replies of NUT's upsd (GET VAR / LIST VAR lines, ERR answers). Any
// line parses or is refused; a value quoted the way upsd quotes it comes back unchanged,
// scalar for scalar.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNUT(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    _ = NUTProtocol.value(ofVarLine: text, ups: "ups", variable: "ups.realpower")
    _ = NUTProtocol.error(in: text)
    var line = String.UnicodeScalarView("VAR ups ups.realpower \"".unicodeScalars)
    for scalar in text.unicodeScalars {
        if scalar == "\\" || scalar == "\"" { line.append("\\") }
        line.append(scalar)
    }
    line.append("\"")
    let back = NUTProtocol.value(ofVarLine: String(line), ups: "ups", variable: "ups.realpower")
    guard back.map({ Array($0.unicodeScalars) }) == Array(text.unicodeScalars) else {
        fatalError("a quoted value did not come back unchanged")
    }
    return 0
}
