import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitTransport

/// `emit outbox flush --protocol otlp` against a real OpenTelemetry collector (rotel, from PyPI)
/// and against a sink that decodes every request with the official opentelemetry-proto package.
@Suite(.serialized) struct OTLPDeliveryTests {
    let dir: TemporaryDirectory

    init() throws {
        dir = try TemporaryDirectory("otlp")
    }

    func emit(_ args: [String]) throws -> ProcessResult {
        try Programs.run(Programs.emit, args, environment: ["EMIT_HOME": dir.file("home")])
    }

    func status() throws -> JSONValue {
        try JSONParser.parse(try emit(["outbox", "status", "--json"]).stdout.trimmingCharacters(in: .newlines))
    }

    /// The peers' python with rotel and opentelemetry-proto, or nil (a failure when the peers
    /// are required, a skip otherwise).
    static func python() -> String? {
        peerRunning("otlp") ? Peers.otlpPython : nil
    }

    func startSink(_ name: String, port: Int? = nil, _ extra: [String] = []) throws -> (BackgroundProcess, Int, String)? {
        guard let python = Self.python() else { return nil }
        let port = try port ?? StaticHTTPServer.freePort()
        let out = dir.file("\(name).jsonl")
        let sink = try BackgroundProcess(python, [Repository.path("Tests/EmitTransportTests/Fixtures/otlp_sink.py"), String(port), out] + extra,
                                         log: dir.file("\(name).log"))
        #expect(sink.waitForPort(port), "\(sink.output)")
        return (sink, port, out)
    }

    func lines(_ path: String) throws -> [JSONValue] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    func addEvents(_ events: [EnergyEvent], _ name: String = "events.jsonl") throws {
        try writeEvents(events, to: dir.file(name))
        #expect(try emit(["outbox", "add", dir.file(name)]).status == 0)
    }

    func nanos(_ text: String?) throws -> Double {
        let instant = try Timestamp(contract: text ?? "")
        return Double(instant.epochSeconds) * 1e9 + Double(instant.nanoseconds)
    }

    @Test func aRealCollectorParsesEveryRecordInBothEncodings() throws {
        defer { dir.remove() }
        guard let python = Self.python() else { return }
        let rotelDir = try Programs.run(python, ["-c", "import rotel, os; print(os.path.dirname(rotel.__file__))"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(FileManager.default.isExecutableFile(atPath: rotelDir + "/rotel-agent"), "rotel ships its collector in the wheel")
        let (http, grpc) = (try StaticHTTPServer.freePort(), try StaticHTTPServer.freePort())
        let collector = try BackgroundProcess(rotelDir + "/rotel-agent", [
            "start", "--otlp-http-endpoint", "127.0.0.1:\(http)", "--otlp-grpc-endpoint", "127.0.0.1:\(grpc)",
            "--exporter", "blackhole", "--debug-log", "logs", "--debug-log-verbosity", "detailed",
        ], log: dir.file("rotel.log"))
        defer { collector.kill9() }
        #expect(collector.waitForPort(http), "\(collector.output)")
        let first = try makeEvents(30, run: "otlp-rotel-protobuf")
        try addEvents(first)
        let protobuf = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(http)", "--protocol", "otlp", "--batch", "7"])
        #expect(protobuf.status == 0, "\(protobuf.stderr)")
        let second = try makeEvents(20, run: "otlp-rotel-json")
        try addEvents(second, "more.jsonl")
        let json = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(http)", "--protocol", "otlp", "--otlp-encoding", "json", "--gzip"])
        #expect(json.status == 0, "\(json.stderr)")
        // The collector prints each record it parsed: every event, with its id and run.
        var seen = ""
        for _ in 0..<50 {
            seen = collector.output
            if (first + second).allSatisfy({ seen.contains("emit.event_id: Str(\($0.eventID))") }) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        for event in first + second {
            #expect(seen.contains("emit.event_id: Str(\(event.eventID))"), "record \(event.eventID) not parsed by the collector")
        }
        #expect(seen.contains("EventName: emit.energy_meter_recorded"))
        #expect(seen.contains("emit.compute_assignment_run_id: Str(otlp-rotel-json)"))
        #expect(seen.contains("service.name: Str(emit)") && seen.contains("host.name: Str(node-t)"))
        #expect(try status()["delivered"] == .number(50))
    }

    /// What emit sends, read back with the official package: the body is the event member for
    /// member, numbers stay numbers, times and attributes as the issue's mapping says.
    @Test func theOfficialDecoderReadsBackEveryEventExactly() throws {
        defer { dir.remove() }
        var events = try makeEvents(40, run: "otlp-decode")
        for example in ["examples/run-node-a17.jsonl", "examples/facility-hall-2.jsonl"] {
            for line in try Repository.text(example).split(separator: "\n") {
                events.append(try EnergyEvent(validating: try JSONParser.parse(String(line))))
            }
        }
        try addEvents(events)
        let byID = Dictionary(uniqueKeysWithValues: events.map { ($0.eventID, $0) })
        for (name, flags) in [("protobuf", [String]()), ("json", ["--otlp-encoding", "json", "--gzip"])] {
            guard let (sink, port, out) = try startSink(name) else { return }
            defer { sink.kill9() }
            let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)/", "--protocol", "otlp", "--batch", "16"] + flags)
            #expect(flushed.status == 0, "\(flushed.stderr)")
            let records = try lines(out)
            #expect(records.count == events.count)
            #expect(Set(records.compactMap { $0["attributes"]?["emit.event_id"]?.stringValue }) == Set(byID.keys))
            for record in records {
                let id = record["attributes"]?["emit.event_id"]?.stringValue ?? ""
                guard let event = byID[id] else { Issue.record("an unknown record \(record)"); continue }
                #expect(record["encoding"]?.stringValue == name)
                #expect(record["gzip"]?.boolValue == (name == "json"))
                #expect(record["body"] == event.json, "the body of \(id) is not the event")
                #expect(record["event_name"]?.stringValue == "emit.energy_meter_recorded")
                #expect(record["time_unix_nano"]?.numberValue == (try nanos(event.json["valid_to"]?.stringValue)))
                #expect(record["observed_time_unix_nano"]?.numberValue == (try nanos(event.json["recorded_at"]?.stringValue)))
                let attributes = record["attributes"]
                #expect(attributes?["emit.energy_source"]?.stringValue == event.json["energy_source"]?.stringValue)
                #expect(attributes?["emit.energy_provenance"]?.stringValue == event.json["energy_provenance"]?.stringValue)
                #expect(attributes?["emit.grain"]?.stringValue == event.json["grain"]?.stringValue)
                #expect(attributes?["emit.compute_assignment_run_id"]?.stringValue == event.json["compute_assignment_run_id"]?.stringValue)
                #expect(attributes?["emit.facility_id"]?.stringValue == event.json["facility_id"]?.stringValue)
                #expect(record["resource"]?["service.name"]?.stringValue == "emit")
                #expect(record["resource"]?["service.version"]?.stringValue == event.json["producer"]?["version"]?.stringValue)
                #expect(record["resource"]?["host.name"]?.stringValue == event.json["producer"]?["node_id"]?.stringValue)
                #expect(record["resource"]?["host.id"]?.stringValue == event.json["producer"]?["node_id"]?.stringValue)
            }
            // Everything is delivered after the first pass: mark them pending again for the second.
            if name == "protobuf" {
                try FileManager.default.removeItem(atPath: dir.file("home"))
                try addEvents(events)
            }
        }
    }

    /// An API key in a header, read from a file; without it the collector's 401 marks nothing.
    @Test func headersCarryAnAPIKeyFromAFile() throws {
        defer { dir.remove() }
        try addEvents(try makeEvents(5, run: "otlp-key"))
        guard let (sink, port, out) = try startSink("keyed", ["--require-header", "X-Api-Key=s3cret"]) else { return }
        defer { sink.kill9() }
        let refused = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--protocol", "otlp"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("401"))
        #expect(try status()["pending"] == .number(5))
        let key = try dir.write("api-key", "s3cret\n")
        let accepted = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--protocol", "otlp", "--header", "X-Api-Key=@\(key)"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(!accepted.stderr.contains("s3cret"))
        #expect(try lines(out).count == 5)
        let bad = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--protocol", "otlp", "--header", "no-equals"])
        #expect(bad.status == 2 && bad.stderr.contains("NAME=VALUE"), "\(bad.stderr)")
        let wrong = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--protocol", "carrier-pigeon"])
        #expect(wrong.status == 2 && wrong.stderr.contains("not emit or otlp"), "\(wrong.stderr)")
    }

    /// 503 and 429 with Retry-After, a dropped connection and a 502: retried, honouring the
    /// server's delay; every event arrives, none twice.
    @Test func retryableAnswersAreRetriedWithRetryAfterHonoured() throws {
        defer { dir.remove() }
        let events = try makeEvents(120, run: "otlp-faults")
        try addEvents(events)
        guard let (sink, sinkPort, out) = try startSink("faults") else { return }
        defer { sink.kill9() }
        let (proxy, proxyPort) = try #require(try BackgroundProcess.faultProxy(upstream: sinkPort, faults: "503ra1,429ra1,drop,502", log: dir.file("proxy.log")))
        defer { proxy.kill9() }
        let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(proxyPort)", "--protocol", "otlp", "--batch", "40", "--give-up-after", "60s"])
        #expect(flushed.status == 0, "\(flushed.stderr)")
        #expect(flushed.stderr.contains("HTTP 503); retrying in 1.00 s") && flushed.stderr.contains("HTTP 429); retrying in 1.00 s"), "\(flushed.stderr)")
        let ids = try lines(out).compactMap { $0["attributes"]?["emit.event_id"]?.stringValue }
        #expect(ids.count == 120 && Set(ids) == Set(events.map(\.eventID)))
        #expect(try status()["delivered"] == .number(120))
    }

    /// A partial success names no record: each event goes again alone, and the refused ones are
    /// kept as rejected with the collector's words; the rest are delivered.
    @Test func aPartialSuccessFindsAndKeepsTheRefusedEvents() throws {
        defer { dir.remove() }
        let events = try Repository.text("examples/run-node-a17.jsonl").split(separator: "\n").map { try EnergyEvent(validating: try JSONParser.parse(String($0))) }
        try addEvents(events)
        guard let (sink, port, out) = try startSink("partial", ["--reject-source", "rapl"]) else { return }
        defer { sink.kill9() }
        let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--protocol", "otlp"])
        #expect(flushed.status == 1, "\(flushed.stderr)")
        #expect(flushed.stderr.contains("refused 4 of 6 records"), "\(flushed.stderr)")
        let counts = try status()
        #expect(counts["rejected"] == .number(4) && counts["delivered"] == .number(2) && counts["pending"] == .number(0), "\(counts)")
        let rejected = try emit(["outbox", "export", "--rejected"])
        let rejectedIDs = rejected.stdout.split(separator: "\n").compactMap { (try? JSONParser.parse(String($0)))?["event_id"]?.stringValue }
        #expect(Set(rejectedIDs) == Set(events.filter { $0.json["energy_source"] == .string("rapl") }.map(\.eventID)))
        #expect(rejected.stderr.contains("otlp_rejected: energy_source rapl is not accepted here"), "\(rejected.stderr)")
        let stored = Set(try lines(out).compactMap { $0["attributes"]?["emit.event_id"]?.stringValue })
        #expect(stored == Set(events.filter { $0.json["energy_source"] == .string("nvml") }.map(\.eventID)))
    }

    /// 400 is a rejection of what was sent (never retried); 500 stops the flush with every event
    /// still pending (OTLP forbids retrying it).
    @Test func fourHundredRejectsAndFiveHundredStopsWithEverythingPending() throws {
        defer { dir.remove() }
        try addEvents(try makeEvents(3, run: "otlp-400"))
        guard let (bad, badPort, _) = try startSink("bad", ["--status", "400"]) else { return }
        defer { bad.kill9() }
        let refused = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(badPort)", "--protocol", "otlp"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(try status()["rejected"] == .number(3))
        try addEvents(try makeEvents(3, run: "otlp-500"), "more.jsonl")
        guard let (broken, brokenPort, _) = try startSink("broken", ["--status", "500"]) else { return }
        defer { broken.kill9() }
        let stopped = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(brokenPort)", "--protocol", "otlp", "--otlp-encoding", "json"])
        #expect(stopped.status == 3, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("HTTP 500: refused by the test sink"), "\(stopped.stderr)")
        #expect(try status()["pending"] == .number(3))
    }

    /// Delivering continuously (the agent's, a relay's), the memory kept for a backlog's
    /// requests goes back once there is nothing left to send.
    @Test func aFollowingFlushGivesBackItsRequestMemoryWhenIdle() async throws {
        defer { dir.remove() }
        let events = try makeEvents(300, run: "otlp-idle")
        try addEvents(events)
        guard let (sink, port, out) = try startSink("idle") else { return }
        defer { sink.kill9() }
        var options = FlushOptions(endpoint: try FlushOptions.endpoint(from: "http://127.0.0.1:\(port)", allowInsecureHTTP: true, protocol: .otlp))
        options.deliveryProtocol = .otlp
        options.batchSize = 50
        options.follow = true
        options.pollInterval = 0.05
        let outbox = try EventDatabase(path: dir.file("home") + "/outbox.sqlite")
        let flusher = try Flusher(outbox: outbox, options: options)
        let running = Task { try await flusher.run() }
        var delivered = 0, kept = -1
        for _ in 0..<200 {
            try await Task.sleep(nanoseconds: 50_000_000)
            delivered = try outbox.counts().delivered
            kept = flusher.keptRequestMemory
            if delivered == events.count, kept == 0 { break }
        }
        running.cancel()
        _ = try? await running.value
        await flusher.shutdown()
        #expect(delivered == events.count)
        #expect(try lines(out).count == events.count)
        #expect(kept == 0, "\(kept) request bodies still held while idle")
    }

    /// The collector killed mid-flush and started again: every event arrives and the outbox marks
    /// each once.
    @Test func aCollectorKilledMidFlushLosesNothing() throws {
        defer { dir.remove() }
        let events = try makeEvents(3000, run: "otlp-kill")
        try addEvents(events)
        guard let (first, port, out) = try startSink("killed") else { return }
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--protocol", "otlp", "--batch", "5", "--give-up-after", "60s"],
                                          environment: ["EMIT_HOME": dir.file("home")], log: dir.file("flush.log"))
        Thread.sleep(forTimeInterval: 0.5)
        first.kill9()
        Thread.sleep(forTimeInterval: 0.5)
        guard let (second, _, _) = try startSink("killed", port: port) else { return }
        defer { second.kill9() }
        flush.process.waitUntilExit()
        #expect(flush.process.terminationStatus == 0, "\(flush.output)")
        let ids = try lines(out).compactMap { $0["attributes"]?["emit.event_id"]?.stringValue }
        #expect(Set(ids) == Set(events.map(\.eventID)))
        let counts = try status()
        #expect(counts["delivered"] == .number(3000) && counts["pending"] == .number(0), "\(counts)")
    }
}
