import EmitMeters
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// CPU time of one sample of every meter emit opens here (EMIT_POWERCAP_ROOT, EMIT_NVML_LIBRARY).
// usage: emit-sample-bench ITERATIONS
let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 20_000
let (meters, _) = MeterSelection(sources: [.rapl, .nvml]).open()
let devices = meters.reduce(0) { $0 + $1.devices.count }
guard devices > 0 else {
    print("no device to sample")
    exit(1)
}
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
var sink = 0
let start = cpuSeconds()
for _ in 0..<iterations {
    for meter in meters { sink &+= meter.sample().count }
}
let perSample = (cpuSeconds() - start) / Double(iterations)
print(String(format: "emit sample: %d devices, %.2f us CPU per sample (%d)", devices, perSample * 1e6, sink % 2))
