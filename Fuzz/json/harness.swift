// libFuzzer target `json`: the strict event JSON parser and the writer (scripts/fuzz.sh json S).
// Compiled with Sources/EmitContract/JSON/*.swift into one module. Whatever parses must write
// back to text that parses to the same value; anything else must be a JSONParseError, never a
// crash, a hang or a leak.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let value = try? JSONParser.parse(bytes) else { return 0 }
    var out: [UInt8] = []
    JSONWriter.write(value, sortKeys: false, into: &out)
    guard let again = try? JSONParser.parse(out), again == value else { fatalError("the written text does not parse to the same value") }
    return 0
}
