// libFuzzer target `ingest`: the body of POST /v1/events as the receiver reads it, before it is
// stored (scripts/fuzz.sh ingest S). Built with IngestProtocol.swift against EmitContract. Any
// body is refused as not JSON Lines or splits into lines each of which is stored or rejected
// with its codes: no line lost, none counted twice, every stored range inside the body.
import EmitContract

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIngest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let body = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let (valid, rejected) = try? IngestBody.check(body, with: .standard) else { return 0 }
    let lines = body.split(separator: 0x0A, omittingEmptySubsequences: false)
        .map { $0.last == 0x0D ? $0.dropLast() : $0 }
        .filter { line in !line.allSatisfy { $0 == 0x20 || $0 == 0x09 } }
    guard valid.count + rejected.count == lines.count else {
        fatalError("\(lines.count) lines, \(valid.count) stored and \(rejected.count) rejected")
    }
    guard valid.allSatisfy({ $0.range.lowerBound >= 0 && $0.range.upperBound <= body.count && !$0.range.isEmpty }) else {
        fatalError("a stored range outside the body")
    }
    guard rejected.map(\.index) == rejected.map(\.index).sorted(), Set(rejected.map(\.index)).count == rejected.count,
          rejected.allSatisfy({ !$0.codes.isEmpty }) else { fatalError("rejections out of order, repeated or without a code") }
    return 0
}
