// libFuzzer target `json`: the strict event JSON parser and the writer (scripts/fuzz.sh json S).
// Compiled with Sources/EmitContract/JSON/*.swift into one module. Whatever parses must write
// back to text that parses to the same value; anything else must be a JSONParseError, never a
// crash, a hang or a leak. A number at the start of the input converts exactly as the standard
// library's correctly rounded conversion does (the OTLP transcoders read numbers this way too).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    bytes.withUnsafeBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        var scanner = JSONScanner(base, count: buffer.count)
        guard let number = try? scanner.number() else { return }
        let text = String(decoding: UnsafeBufferPointer(start: base, count: scanner.p - base), as: UTF8.self)
        guard let reference = Double(text), reference.bitPattern == number.bitPattern else {
            fatalError("\(text) read as \(number), not \(Double(text).map(String.init(describing:)) ?? "nothing")")
        }
    }
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    var out: [UInt8] = []
    JSONWriter.write(value, sortKeys: false, into: &out)
    guard let again = try? JSONParser.parse(out), again == value else { fatalError("the written text does not parse to the same value") }
    return 0
}
