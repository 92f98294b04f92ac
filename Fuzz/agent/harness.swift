// libFuzzer target `agent`: request bodies of the node agent's socket API (scripts/fuzz.sh agent S).
// The first byte says which request (`b` begin, anything else end); the rest is the body. Built
// with AgentProtocol.swift against EmitContract. Any body is a request or a 400 that names the
// field at fault, never a crash; a request written back as JSON reads as the same request.
import EmitContract

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAgent(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let kind = bytes.first, let body = try? JSONParser.parse(Array(bytes.dropFirst())) else { return 0 }
    func refused(_ error: AgentError) {
        guard error.status == 400, error.field != nil, !error.message.isEmpty else { fatalError("a refusal without status 400 and a field: \(error)") }
    }
    if kind == UInt8(ascii: "b") {
        do {
            let request = try AgentProtocol.BeginRequest(json: body)
            guard (try? AgentProtocol.BeginRequest(json: request.json)) == request else { fatalError("a begin request does not read back") }
        } catch { refused(error) }
    } else {
        do {
            let request = try AgentProtocol.EndRequest(json: body)
            guard (try? AgentProtocol.EndRequest(json: request.json)) == request else { fatalError("an end request does not read back") }
        } catch { refused(error) }
    }
    return 0
}
