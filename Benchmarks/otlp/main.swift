import EmitOTLP
import Foundation
import NIOCore

// The OTLP encoding alone, beside the emit protocol's request body from the same events: CPU
// per event of writing each request of a batch, the delivery's own cost without the network,
// the outbox or the collector. usage: emit-otlp-bench EVENTS.jsonl [ROUNDS=5] [BATCH=5000]
let arguments = CommandLine.arguments
guard arguments.count >= 2, let text = try? String(contentsOfFile: arguments[1], encoding: .utf8) else {
    FileHandle.standardError.write(Data("usage: emit-otlp-bench EVENTS.jsonl [ROUNDS=5] [BATCH=5000]\n".utf8))
    exit(2)
}
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5
let batchSize = arguments.count > 3 ? Int(arguments[3]) ?? 5000 : 5000
let events = text.split(separator: "\n").map(String.init)
let batches = stride(from: 0, to: events.count, by: batchSize).map { Array(events[$0..<min($0 + batchSize, events.count)]) }

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func measure(_ name: String, _ body: () throws -> Int) rethrows {
    var best = Double.infinity
    var bytes = 0
    for _ in 0..<rounds {
        let start = cpuSeconds()
        bytes = try body()
        best = min(best, cpuSeconds() - start)
    }
    print(String(format: "%-28@ %7.3f us/event  %6.0f bytes/event  (best of %d rounds, %d events)",
                 name as NSString, best * 1e6 / Double(events.count), Double(bytes) / Double(events.count), rounds, events.count))
}

var body = ByteBuffer()
measure("emit protocol (JSON Lines)") {
    var total = 0
    for batch in batches {
        body.clear()
        for event in batch {
            body.writeString(event)
            body.writeInteger(UInt8(ascii: "\n"))
        }
        total += body.readableBytes
    }
    return total
}
var writer = OTLPRequestWriter()
for encoding in [OTLPEncoding.protobuf, .json] where encoding == .protobuf || ProcessInfo.processInfo.environment["JSON"] != nil {
    try measure("OTLP \(encoding.rawValue)") {
        var total = 0
        for batch in batches {
            try writer.write(batch, encoding: encoding, into: &body)
            total += body.readableBytes
        }
        return total
    }
}
