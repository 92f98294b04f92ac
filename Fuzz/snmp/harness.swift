// libFuzzer target `snmp`: GetResponse datagrams as an SNMP agent (or anything on the network)
// may send them (scripts/fuzz.sh snmp S). Built with SNMPMessage.swift against swift-asn1.
// The first byte is the request id the answer must carry and the second how many variables
// were asked for; the rest is the datagram. Every datagram gives values, nil or a Failure.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSNMP(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard bytes.count >= 2 else { return 0 }
    let requestID = Int32(bytes[0]), asked = Int(bytes[1] % 16)
    // `try?` flattens: nil is a Failure or another request's answer.
    guard let values = try? SNMPMessage.response(Array(bytes[2...]), requestID: requestID, count: asked) else { return 0 }
    guard values.count == asked else { fatalError("\(values.count) values for \(asked) variables") }
    return 0
}
