// libFuzzer target `prometheus`: the Prometheus text parser that reads dcgm-exporter scrapes.
// Any text parses or throws a ParseError naming its line; never a crash. Filtering by metric
// keeps only samples that the unfiltered parse also returns.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPrometheus(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    guard let all = try? PrometheusText.parse(text) else { return 0 }
    for name in Set(all.map(\.name)).prefix(3) {
        guard let some = try? PrometheusText.parse(text, metric: name), some.allSatisfy({ $0.name == name }),
              some.count <= all.count else { fatalError("filtering by \(name) returned other samples") }
    }
    return 0
}
