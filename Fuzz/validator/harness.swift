// libFuzzer target `validator`: the contract validator over any text (scripts/fuzz.sh validator S).
// Built against EmitContract itself. Every input gets findings or none, never a crash; the
// answer does not depend on how it is asked (bytes or string, with or without the event id),
// and an event found valid has the id its identity hashes to.
import EmitContract

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzValidator(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: start.assumingMemoryBound(to: UInt8.self), count: count)
    let validator = Validator.standard
    let findings = validator.validate(jsonText: bytes)
    let (again, eventID) = validator.validateKeepingID(jsonText: bytes)
    guard findings.map(\.code) == again.map(\.code) else { fatalError("two validations of one text disagree") }
    if findings.isEmpty {
        guard let eventID, let event = try? JSONParser.parse(Array(bytes)), EventIdentity(event: event)?.eventID == eventID,
              event["event_id"]?.stringValue == eventID else {
            fatalError("a valid event without the id its identity hashes to")
        }
    }
    return 0
}
