// libFuzzer target `redfish`: what emit makes of a Redfish service's documents (scripts/fuzz.sh
// redfish S). The input is one JSON object from resource path to document, served as a BMC
// would serve them (a missing path is a 404); RedfishService.swift, built against EmitContract,
// surveys it. Any service gives chassis or a failure in words, never a crash or a hang
// (Links.Contains may loop); each chassis once, counters counting energy, power being power,
// and every reading it chose readable from the same documents.
import EmitContract

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedfish(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let service = try? JSONParser.parse(Array(UnsafeRawBufferPointer(start: start, count: count))),
          case .object(let resources) = service else { return 0 }
    let byPath = Dictionary(resources, uniquingKeysWith: { first, _ in first })
    let documents = RedfishDocuments { path throws(RedfishFailure) in
        guard let document = byPath[path] ?? byPath[RedfishDocuments.trimmed(path)] else { throw RedfishFailure(description: "\(path): HTTP status 404") }
        return document
    }
    guard let (chassis, _) = try? documents.survey() else { return 0 }
    guard Set(chassis.map(\.path)).count == chassis.count else { fatalError("a chassis surveyed twice") }
    for one in chassis {
        if let counter = one.counter, !counter.kind.isCounter { fatalError("power chosen as the counter of \(one.id)") }
        if let power = one.power, power.kind != .powerWatts { fatalError("a counter chosen as the power of \(one.id)") }
        for reading in [one.counter, one.power].compactMap({ $0 }) {
            for source in reading.sources {
                guard let document = try? documents.get(source.path), RedfishDocuments.number(in: document, at: source.member) != nil
                    || reading.sources.count > 1 || source.member == ["Reading"] else {
                    fatalError("\(reading.label) chosen without a number at \(source.path)")
                }
            }
        }
    }
    return 0
}
