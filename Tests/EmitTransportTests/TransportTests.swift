import EmitContract
import EmitTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import Testing
@testable import EmitTransport

/// Events made by the builders: `count` distinct measured GPU events of one run.
func makeEvents(_ count: Int, run: String) throws -> [EnergyEvent] {
    let from = try Timestamp(contract: "2026-11-27T09:00:00Z")
    return try (0..<count).map { i in
        let to = Timestamp(epochSeconds: from.epochSeconds + Int64(i) + 1, nanoseconds: 0, fractionDigits: 0)
        return try RunMeterEventBuilder(
            runID: run, source: .nvml, device: Device(class: .gpu, id: "GPU-\(i % 8)", index: i % 8), nodeID: "node-t",
            window: TimeWindow(from: from, to: to), energyJoules: Double(i) + 0.5,
            measurement: Measurement(method: .counterDelta, samples: 2, intervalMilliseconds: 1000, coverage: 1)
        ).build(recordedAt: to)
    }
}

func writeEvents(_ events: [EnergyEvent], to path: String) throws {
    try events.map { $0.jsonLine + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
}

@Suite struct EventDatabaseTests {
    @Test func storesEachEventOnceDurably() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = try EventDatabase(path: dir.file("state/outbox.sqlite"))
        let events = try makeEvents(50, run: "r")
        #expect(try db.add(events) == 50)
        #expect(try db.add(events) == 0)
        #expect(try db.count() == 50)
        #expect(try db.synchronousLevel() == 2, "synchronous=FULL survives GRDB's WAL set-up")
        #expect(try db.counts().pending == 50)
        let batch = try db.pending(limit: 10)
        let first = try #require(batch.first?.seq), last = try #require(batch.last?.seq)
        try db.markDelivered(seqs: first...last, rejected: batch.suffix(2).map { ($0.seq, ["bad_energy"]) })
        let counts = try db.counts()
        #expect(counts.pending == 40 && counts.delivered == 8 && counts.rejected == 2)
        #expect(try db.pending(limit: 100).first?.eventID == events[10].eventID, "insertion order")
    }

    /// What cannot be opened or read is said in a sentence naming the file, the cause and what
    /// to do, never as GRDB's "SQLite error 26 ... while executing PRAGMA".
    @Test func aFileThatIsNoOutboxAFolderThatIsAFileAndADamagedOutboxAreSaidInWords() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let garbage = dir.file("garbage.sqlite")
        try String(repeating: "not a database\n", count: 100).write(toFile: garbage, atomically: true, encoding: .utf8)
        let notADatabase = #expect(throws: EventDatabase.OpenError.self) { try EventDatabase(path: garbage) }
        #expect(notADatabase?.description == "cannot open \(garbage): it is not an SQLite database (move it aside, or name another file)")

        let underAFile = #expect(throws: EventDatabase.OpenError.self) { try EventDatabase(path: garbage + "/home/outbox.sqlite") }
        #expect(underAFile?.description == "cannot open \(garbage)/home/outbox.sqlite: \(garbage) is a file, not a folder")

        // An outbox whose table pages were overwritten (a failing disk) opens, then fails to read.
        let path = dir.file("damaged.sqlite")
        do {
            let db = try EventDatabase(path: path)
            #expect(try db.add(try makeEvents(200, run: "damaged")) == 200)
        }
        let file = try #require(FileHandle(forUpdatingAtPath: path))
        let pages = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0) / 16384
        for page in 1..<max(2, pages) {
            try file.seek(toOffset: UInt64(page * 16384))
            file.write(Data([7, 0, 0, 0, 0, 0, 0, 0]))  // 7 is no b-tree page type
        }
        try file.close()
        var said = ""
        do {
            let db = try EventDatabase(path: path)
            _ = try db.pending(limit: 1000)
        } catch {
            said = StorageFailure.describe(error, at: path)
        }
        #expect(said.contains("the database is damaged (SQLite: database disk image is malformed); move it aside (sqlite3's .recover"), "\(said)")
    }

    @Test func idsSharingTheirIndexKeyAreToldApartByTheFullID() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let db = try EventDatabase(path: dir.file("keys.sqlite"))
        let prefix = "0123456789abcdef"
        let a = prefix + String(repeating: "a", count: 48), b = prefix + String(repeating: "b", count: 48)
        #expect(EventDatabase.idKey(a.utf8) == EventDatabase.idKey(b.utf8))
        #expect(EventDatabase.idKey("not-hex".utf8) == EventDatabase.idKey("not-hex".utf8))
        #expect(EventDatabase.idKey("not-hex".utf8) != EventDatabase.idKey("not-hey".utf8))
        #expect(try db.add(lines: [(a, "{\"n\":1}"), (b, "{\"n\":2}"), (a, "{\"n\":3}")]) == 2, "a repeat inside one batch is stored once")
        #expect(try db.add(lines: [(b, "{\"n\":4}"), ("short", "{}"), ("short", "{}")]) == 1)
        #expect(try db.page(after: 0, limit: 10).map(\.body) == ["{\"n\":1}", "{\"n\":2}", "{}"])
    }

    @Test func aVersionOneStoreIsUpgradedKeepingStatesAndOrder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("v1.sqlite")
        let events = try makeEvents(5, run: "old")
        do {
            let queue = try DatabaseQueue(path: path)
            try EventDatabase.migrate(queue, upTo: "v1")
            try queue.write { db in
                for (i, event) in events.enumerated() {
                    let state = [0, 1, 2, 0, 1][i]
                    try db.execute(sql: "INSERT INTO events(event_id, body, state, codes, added_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                                   arguments: [event.eventID, event.jsonLine, state, state == 2 ? "bad_energy" : nil, 1000.0 + Double(i), state == 0 ? nil : 2000.0])
                }
            }
        }
        let db = try EventDatabase(path: path)
        let counts = try db.counts()
        #expect(counts.pending == 2 && counts.delivered == 2 && counts.rejected == 1)
        #expect(counts.oldestPendingAddedAt == Date(timeIntervalSince1970: 1000))
        #expect(try db.pending(limit: 10).map(\.eventID) == [events[0].eventID, events[3].eventID])
        #expect(try db.pending(limit: 10).map(\.seq) == [1, 4], "sequence numbers survive the upgrade")
        var rejected: [String] = []
        try db.forEach(state: .rejected) { rejected.append($0.eventID) }
        #expect(rejected == [events[2].eventID])
        var delivered: [String] = []
        try db.forEach(state: .delivered) { delivered.append($0.eventID) }
        #expect(delivered == [events[1].eventID, events[4].eventID])
        #expect(try db.pool.read { try String.fetchOne($0, sql: "SELECT codes FROM rejected") } == "bad_energy")
        #expect(try db.add(events) == 0, "the upgraded index still finds every stored id")
        #expect(try db.add(try makeEvents(6, run: "old")) == 1)
        #expect(try db.pending(limit: 10).last?.seq == 6)
    }

    @Test func theIngestProcessorAcceptsRejectsAndDeduplicates() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try EventDatabase(path: dir.file("recv.sqlite"))
        let relay = try EventDatabase(path: dir.file("relay.sqlite"))
        let processor = IngestProcessor(store: store, forwardOutbox: relay)
        let events = try makeEvents(3, run: "r")
        var body = events.map(\.jsonLine).joined(separator: "\n") + "\n\n{\"kind\": 1}\nnot json\n"
        var result = try await processor.ingest(Array(body.utf8))
        #expect(result.accepted == 3 && result.duplicates == 0)
        #expect(result.rejected.map(\.index) == [3, 4])
        #expect(result.rejected.first?.codes.contains("wrong_type") == true)
        #expect(result.rejected.last?.codes == ["invalid_json"])
        body = events[0].jsonLine
        result = try await processor.ingest(Array(body.utf8))
        #expect(result.accepted == 0 && result.duplicates == 1)
        #expect(try store.count() == 3)
        #expect(try relay.counts().pending == 3)
        await #expect(throws: IngestProcessor.NotJSONLines.self) { try await processor.ingest([0xFF, 0xFE, 0x0A]) }
        await #expect(throws: IngestProcessor.NotJSONLines.self) { try await processor.ingest(Array("\n \n".utf8)) }
    }

    @Test func concurrentRequestsCommittedTogetherCountEachEventOnce() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try EventDatabase(path: dir.file("group.sqlite"))
        let relay = try EventDatabase(path: dir.file("relay.sqlite"))
        let processor = IngestProcessor(store: store, forwardOutbox: relay)
        let events = try makeEvents(60, run: "g")
        // 24 requests at once, each a different overlapping slice of the same 60 events.
        let results = try await withThrowingTaskGroup(of: IngestResult.self) { group in
            for i in 0..<24 {
                let slice = events[(i % 6) * 10..<min(60, (i % 6) * 10 + 20)]
                let body = Array((slice.map(\.jsonLine).joined(separator: "\n") + "\n").utf8)
                group.addTask { try await processor.ingest(body) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let offered = (0..<24).reduce(0) { $0 + min(60, ($1 % 6) * 10 + 20) - ($1 % 6) * 10 }
        #expect(results.reduce(0) { $0 + $1.accepted } == 60)
        #expect(results.reduce(0) { $0 + $1.duplicates } == offered - 60)
        #expect(try store.count() == 60)
        #expect(try relay.counts().pending == 60)
    }

    @Test func openersRacingOnANewOrOldFileApplyEachVersionOnce() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let old = dir.file("old.sqlite")
        try EventDatabase.migrate(try DatabaseQueue(path: old), upTo: "v1")
        for path in [dir.file("new.sqlite"), old] {
            // Separate pools are separate SQLite connections, as separate processes would have.
            let opened = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<8 {
                    group.addTask { try EventDatabase(path: path).add(try makeEvents(3, run: "opener-\(i)")) }
                }
                return try await group.reduce(0, +)
            }
            #expect(opened == 24)
            #expect(try EventDatabase(path: path).counts().pending == 24)
        }
    }

    @Test func endpointsAreCheckedBeforeAnythingIsSent() throws {
        #expect(try FlushOptions.endpoint(from: "http://127.0.0.1:8786", allowInsecureHTTP: false).absoluteString == "http://127.0.0.1:8786/v1/events")
        #expect(try FlushOptions.endpoint(from: "https://ingest.example/custom/path", allowInsecureHTTP: false).path == "/custom/path")
        #expect(throws: FlushError.self) { try FlushOptions.endpoint(from: "http://192.0.2.10:8786", allowInsecureHTTP: false) }
        #expect(try FlushOptions.endpoint(from: "http://192.0.2.10:8786", allowInsecureHTTP: true).host == "192.0.2.10")
        #expect(throws: FlushError.self) { try FlushOptions.endpoint(from: "ftp://x", allowInsecureHTTP: true) }
    }
}

/// Real processes, real sockets on 127.0.0.1, real SQLite files.
@Suite(.serialized) struct DeliveryTests {
    let dir: TemporaryDirectory
    let token: String

    init() throws {
        dir = try TemporaryDirectory("delivery")
        token = try dir.write("token", "tok-\(UUID().uuidString)\n")
    }

    func startReceiver(_ name: String = "recv", port chosen: Int? = nil, extra: [String] = [], environment: [String: String] = [:]) throws -> (BackgroundProcess, Int) {
        let port = try chosen ?? StaticHTTPServer.freePort()
        let receiver = try BackgroundProcess(Programs.emit, ["receive", "--listen", "127.0.0.1:\(port)", "--db", dir.file("\(name).sqlite"), "--token-file", token] + extra,
                                             environment: environment, log: dir.file("\(name).log"))
        #expect(receiver.waitForPort(port), "\(receiver.output)")
        return (receiver, port)
    }

    func emit(_ args: [String], home: String = "home") throws -> ProcessResult {
        try Programs.run(Programs.emit, args, environment: ["EMIT_HOME": dir.file(home)])
    }

    func storedIDs(port: Int) -> [String] {
        let reply = HTTP.request("http://127.0.0.1:\(port)/v1/events", headers: ["Authorization": "Bearer \((try? String(contentsOfFile: token, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")"])
        return reply.text.split(separator: "\n").compactMap { (try? JSONParser.parse(String($0)))?["event_id"]?.stringValue }
    }

    func status(home: String = "home") throws -> JSONValue {
        try JSONParser.parse(try emit(["outbox", "status", "--json"], home: home).stdout.trimmingCharacters(in: .newlines))
    }

    @Test func killNineMidFlushThenRestartDeliversEveryEventExactlyOnce() throws {
        defer { dir.remove() }
        let events = try makeEvents(6000, run: "kill9")
        try writeEvents(events, to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, port) = try startReceiver()
        defer { receiver.kill9() }
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token, "--batch", "10"],
                                          environment: ["EMIT_HOME": dir.file("home")], log: dir.file("flush.log"))
        Thread.sleep(forTimeInterval: 0.8)
        flush.kill9()
        let midway = try status()
        #expect((midway["pending"]?.integerValue ?? 0) > 0, "killed before the end: \(midway)")
        let again = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token, "--batch", "500"])
        #expect(again.status == 0, "\(again.stderr)")
        let ids = storedIDs(port: port)
        #expect(ids.count == 6000)
        #expect(Set(ids) == Set(events.map(\.eventID)))
        #expect(try status()["pending"] == .number(0))
    }

    /// A receiver whose disk is full answers 503 with the cause and a Retry-After, says so once
    /// on its own stderr, and stores again as soon as there is room: the sender loses nothing.
    @Test(.enabled(if: getuid() == 0, "mounts a small tmpfs"))
    func aReceiverWithAFullDiskAnswers503InWordsAndRecovers() throws {
        defer { dir.remove() }
        let disk = dir.file("disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        #expect(try Programs.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]).status == 0)
        defer { _ = try? Programs.run("/bin/umount", ["-l", disk]) }
        let events = try makeEvents(30, run: "full-disk")
        try writeEvents(events, to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, port) = try startReceiver("disk/recv")
        defer { receiver.kill9() }
        _ = try Programs.run("/bin/sh", ["-c", "head -c 5000000 /dev/zero > '\(disk)/filler'"])
        let refused = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token, "--give-up-after", "1s"])
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("HTTP 503: the receiver cannot store events: the disk is full"), "\(refused.stderr)")
        // Its Retry-After (30 s) outlasts the flush's second: one try and one wait, where
        // backoff alone would have tried again every few tenths of a second.
        #expect(refused.stderr.split(separator: "\n").filter { $0.contains("delivery failed") }.count == 1, "\(refused.stderr)")
        #expect(try status()["pending"] == .number(30))
        try FileManager.default.removeItem(atPath: "\(disk)/filler")
        let delivered = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token])
        #expect(delivered.status == 0, "\(delivered.stderr)")
        #expect(Set(storedIDs(port: port)) == Set(events.map(\.eventID)))
        let said = receiver.output.split(separator: "\n")
        #expect(said.filter { $0.contains("cannot store events in \(disk)/recv.sqlite: the disk is full") && $0.contains("answering 503") }.count == 1,
                "said once however many requests it refused: \(receiver.output)")
        #expect(said.contains { $0.contains("storing events again") }, "\(receiver.output)")
    }

    /// A following flush whose own outbox fills its disk (it cannot mark what was delivered)
    /// says so once, waits, and goes on when there is room: nothing lost, nothing held twice.
    @Test(.enabled(if: getuid() == 0, "mounts a small tmpfs"))
    func aFollowingFlushWhoseOutboxDiskFillsWaitsAndGoesOn() throws {
        defer { dir.remove() }
        let disk = dir.file("disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        #expect(try Programs.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk]).status == 0)
        defer { _ = try? Programs.run("/bin/umount", ["-l", disk]) }
        let events = try makeEvents(30, run: "sender-disk")
        try writeEvents(events, to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")], home: "disk").status == 0)
        // The receiver is not up yet: the flush waits on the network with its outbox open.
        let port = try StaticHTTPServer.freePort()
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--follow", "--to", "http://127.0.0.1:\(port)", "--token-file", token],
                                          environment: ["EMIT_HOME": disk], log: dir.file("flush.log"))
        defer { flush.kill9() }
        #expect(flush.waitForOutput("connection refused"), "\(flush.output)")
        _ = try Programs.run("/bin/sh", ["-c", "head -c 5000000 /dev/zero > '\(disk)/filler'"])
        let (receiver, _) = try startReceiver(port: port)
        defer { receiver.kill9() }
        #expect(flush.waitForOutput("delivery waits and tries again"), "\(flush.output)")
        #expect(flush.output.contains("the outbox \(disk)/outbox.sqlite failed: the disk is full"), "\(flush.output)")
        #expect(flush.process.isRunning, "a full disk does not end a following flush")
        try FileManager.default.removeItem(atPath: "\(disk)/filler")
        var pending: JSONValue?
        for _ in 0..<100 {
            pending = try? status(home: "disk")["pending"]
            if pending == .number(0) { break }
            usleep(100_000)
        }
        #expect(pending == .number(0), "\(flush.output)")
        #expect(storedIDs(port: port).sorted() == events.map(\.eventID).sorted(), "each event held once")
        #expect(flush.output.components(separatedBy: "delivery waits and tries again").count == 2, "said once: \(flush.output)")
        #expect(flush.stop(with: SIGTERM) && flush.process.terminationStatus == 0, "\(flush.output)")
    }

    /// SIGTERM stops a flush once the batches on the wire are answered: they are marked, the
    /// rest stay pending, and the next flush sends each of those once and nothing again.
    @Test func aTerminatedFlushFinishesTheBatchesOnTheWireAndSendsNothingTwice() throws {
        defer { dir.remove() }
        let events = try makeEvents(30, run: "term")
        try writeEvents(events, to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, upstreamPort) = try startReceiver()
        defer { receiver.kill9() }
        // Four batches of five go at once (the flush keeps four on the wire); each waits 2 s.
        let (proxy, proxyPort) = try #require(try BackgroundProcess.faultProxy(upstream: upstreamPort, faults: "slow,slow,slow,slow", log: dir.file("proxy.log")))
        defer { proxy.kill9() }
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(proxyPort)", "--token-file", token, "--batch", "5"],
                                          environment: ["EMIT_HOME": dir.file("home")], log: dir.file("flush.log"))
        defer { flush.kill9() }
        #expect(proxy.waitForOutput("POST", count: 4), "\(proxy.output)")
        #expect(flush.stop(with: SIGTERM), "the flush did not stop: \(flush.output)")
        #expect(flush.process.terminationReason == .exit, "ended by the signal itself: \(flush.output)")
        #expect(flush.process.terminationStatus == 3, "\(flush.output)")
        #expect(flush.output.contains("20 delivered"), "\(flush.output)")
        #expect(flush.output.contains("10 pending (stopped by a signal"), "\(flush.output)")
        #expect(storedIDs(port: upstreamPort).count == 20)
        #expect(try status()["pending"] == .number(10))
        let rest = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(upstreamPort)", "--token-file", token])
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stderr.contains("10 delivered (0 already held by the receiver)"), "\(rest.stderr)")
        let ids = storedIDs(port: upstreamPort)
        #expect(ids.count == 30 && Set(ids) == Set(events.map(\.eventID)))
    }

    /// A following flush (a relay's, a sidecar's) waiting for new events stops at once on
    /// SIGTERM, with exit 0: a service manager's stop is not a failure.
    @Test func aFollowingFlushStopsCleanlyWhenTerminated() throws {
        defer { dir.remove() }
        try writeEvents(try makeEvents(12, run: "follow"), to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, port) = try startReceiver()
        defer { receiver.kill9() }
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token, "--follow"],
                                          environment: ["EMIT_HOME": dir.file("home")], log: dir.file("flush.log"))
        defer { flush.kill9() }
        let deadline = Date().addingTimeInterval(20)
        while storedIDs(port: port).count < 12, Date() < deadline { usleep(50_000) }
        #expect(flush.process.isRunning, "--follow keeps running: \(flush.output)")
        #expect(flush.stop(with: SIGTERM, seconds: 5), "an idle flush waits for nothing: \(flush.output)")
        #expect(flush.process.terminationReason == .exit && flush.process.terminationStatus == 0, "\(flush.output)")
        #expect(flush.output.contains("12 delivered"), "\(flush.output)")
    }

    /// A receiver that never answers does not hold a stop: past the grace period the batch is
    /// left unanswered and stays pending.
    @Test func aTerminatedFlushDoesNotWaitForeverOnAReceiverThatNeverAnswers() throws {
        defer { dir.remove() }
        try writeEvents(try makeEvents(10, run: "stall"), to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, upstreamPort) = try startReceiver()
        defer { receiver.kill9() }
        let (proxy, proxyPort) = try #require(try BackgroundProcess.faultProxy(upstream: upstreamPort, faults: "stall", log: dir.file("proxy.log")))
        defer { proxy.kill9() }
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(proxyPort)", "--token-file", token],
                                          environment: ["EMIT_HOME": dir.file("home")], log: dir.file("flush.log"))
        defer { flush.kill9() }
        #expect(proxy.waitForOutput("POST"), "\(proxy.output)")
        #expect(flush.stop(with: SIGTERM, seconds: 30), "the stop waited on the receiver: \(flush.output)")
        #expect(flush.process.terminationReason == .exit && flush.process.terminationStatus == 3, "\(flush.output)")
        #expect(flush.output.contains("stopped"), "\(flush.output)")
        #expect(try status()["pending"] == .number(10))
    }

    /// --request-timeout bounds the wait for an answer; --give-up-after ends the retries, the
    /// events pending and the reason in words.
    @Test func aReceiverThatNeverAnswersTimesOutAndTheFlushGivesUpInWords() throws {
        defer { dir.remove() }
        try writeEvents(try makeEvents(10, run: "timeout"), to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, upstreamPort) = try startReceiver()
        defer { receiver.kill9() }
        let (proxy, proxyPort) = try #require(try BackgroundProcess.faultProxy(upstream: upstreamPort, faults: "stall,stall,stall,stall", log: dir.file("proxy.log")))
        defer { proxy.kill9() }
        let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(proxyPort)", "--token-file", token, "--request-timeout", "1s", "--give-up-after", "1s"])
        #expect(flushed.status == 3, "\(flushed.stderr)")
        #expect(flushed.stderr.contains("no answer within the request timeout") && flushed.stderr.contains("gave up after 1 s"), "\(flushed.stderr)")
        #expect(try status()["pending"] == .number(10))
    }

    /// --connect-timeout bounds the wait for a connection: a listener whose queue is full
    /// (it never accepts) drops new connections' SYNs, and the flush says so in words.
    @Test func aListenerThatNeverAcceptsTimesOutTheConnection() throws {
        defer { dir.remove() }
        try writeEvents(try makeEvents(3, run: "connect"), to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let port = try StaticHTTPServer.freePort()
        let python = try #require(Programs.which("python3"))
        let script = """
            import socket, sys, time
            s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(0)
            held = []
            while True:  # until a connection is no longer taken: the queue is full
                try: held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5))
                except OSError: break
            print("full", flush=True); time.sleep(60)
            """
        let listener = try BackgroundProcess(python, ["-c", script, String(port)], log: dir.file("listener.log"))
        defer { listener.kill9() }
        #expect(listener.waitForOutput("full"), "\(listener.output)")
        let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token, "--connect-timeout", "1s", "--give-up-after", "1s"])
        #expect(flushed.status == 3, "\(flushed.stderr)")
        #expect(flushed.stderr.contains("no connection within 1 s"), "\(flushed.stderr)")
        #expect(try status()["pending"] == .number(3))
    }

    @Test func receiverDownThenUpAndFaultsInTheWayStillDeliverOnce() throws {
        defer { dir.remove() }
        let events = try makeEvents(300, run: "faults")
        try writeEvents(events, to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        // The proxy answers 503, drops connections and stalls before it forwards anything.
        let upstreamPort = try StaticHTTPServer.freePort()
        let (proxy, proxyPort) = try #require(try BackgroundProcess.faultProxy(upstream: upstreamPort, faults: "503,drop,502html,slow,drop", log: dir.file("proxy.log")))
        defer { proxy.kill9() }
        // The receiver behind the proxy starts only after the flush has begun failing.
        let flush = try BackgroundProcess(Programs.emit, ["outbox", "flush", "--to", "http://127.0.0.1:\(proxyPort)", "--token-file", token, "--batch", "40", "--give-up-after", "60s"],
                                          environment: ["EMIT_HOME": dir.file("home")], log: dir.file("flush.log"))
        Thread.sleep(forTimeInterval: 1.5)
        let receiver = try BackgroundProcess(Programs.emit, ["receive", "--listen", "127.0.0.1:\(upstreamPort)", "--db", dir.file("recv.sqlite"), "--token-file", token],
                                             log: dir.file("recv.log"))
        defer { receiver.kill9() }
        #expect(receiver.waitForPort(upstreamPort))
        flush.process.waitUntilExit()
        #expect(flush.process.terminationStatus == 0, "\(flush.output)")
        #expect(flush.output.contains("retrying"))
        // A proxy's error page is said on the retry's one line, as the server wrote it.
        #expect(flush.output.contains("(HTTP 502: <html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> </html>); retrying"),
                "\(flush.output)")
        let ids = storedIDs(port: upstreamPort)
        #expect(ids.count == 300 && Set(ids).count == 300)
        #expect(try status()["delivered"] == .number(300))
    }

    @Test func aWrongTokenDeliversAndMarksNothing() throws {
        defer { dir.remove() }
        try writeEvents(try makeEvents(20, run: "tok"), to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let (receiver, port) = try startReceiver()
        defer { receiver.kill9() }
        let wrong = try dir.write("wrong", "not-the-token\n")
        let result = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", wrong])
        #expect(result.status == 2)
        #expect(result.stderr.contains("401"))
        #expect(!result.stderr.contains("not-the-token"), "tokens are never printed")
        #expect(try status()["pending"] == .number(20))
        #expect(storedIDs(port: port).isEmpty)
        #expect(!receiver.output.contains("not-the-token"))
    }

    @Test func oversizedMalformedAndUnauthorizedBodiesGetClearStatuses() throws {
        defer { dir.remove() }
        let (receiver, port) = try startReceiver(extra: ["--max-body", "4096"])
        defer { receiver.kill9() }
        let auth = ["Authorization": "Bearer \(try String(contentsOfFile: token, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))"]
        let url = "http://127.0.0.1:\(port)/v1/events"
        let big = Data(try makeEvents(20, run: "big").map { $0.jsonLine + "\n" }.joined().utf8)
        #expect(HTTP.request(url, method: "POST", headers: auth, body: big).status == 413)
        #expect(HTTP.request(url, method: "POST", headers: auth, body: Data([0xFF, 0xFE, 0x00, 0x0A])).status == 400)
        #expect(HTTP.request(url, method: "POST", headers: auth, body: Data("\n\n".utf8)).status == 400)
        #expect(HTTP.request(url, method: "POST", body: Data("{}\n".utf8)).status == 401)
        #expect(HTTP.request(url, method: "POST", headers: ["Authorization": "Bearer nope"], body: Data("{}\n".utf8)).status == 401)
        #expect(HTTP.request(url, headers: [:]).status == 401)
        let healthy = HTTP.request("http://127.0.0.1:\(port)/healthz")
        #expect(healthy.status == 200)
        // A 413 for a batch makes flush halve it until it fits.
        try writeEvents(try makeEvents(12, run: "halve"), to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(port)", "--token-file", token, "--batch", "12"])
        #expect(flushed.status == 0, "\(flushed.stderr)")
        #expect(flushed.stderr.contains("413"))
        #expect(storedIDs(port: port).count == 12)
    }

    /// A relay whose upstream refuses its token says so and goes on receiving: the events wait
    /// in its outbox (the relay once stopped receiving with its delivery). SIGTERM stops it with 0.
    @Test func aRelayRefusedUpstreamKeepsReceiving() throws {
        defer { dir.remove() }
        let (upstream, upstreamPort) = try startReceiver("upstream")
        defer { upstream.kill9() }
        let wrong = try dir.write("wrong", "not-the-token\n")
        let (relay, relayPort) = try startReceiver("relay", extra: ["--forward-to", "http://127.0.0.1:\(upstreamPort)", "--forward-token-file", wrong,
                                                                    "--outbox", dir.file("relay-outbox.sqlite")])
        defer { relay.kill9() }
        try writeEvents(try makeEvents(10, run: "refused-1"), to: dir.file("first.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("first.jsonl")]).status == 0)
        #expect(try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(relayPort)", "--token-file", token]).status == 0)
        #expect(relay.waitForOutput("(relay): stopped:"), "\(relay.output)")
        #expect(relay.output.contains("401") && relay.output.contains("receiving goes on"), "\(relay.output)")
        try writeEvents(try makeEvents(10, run: "refused-2"), to: dir.file("second.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("second.jsonl")]).status == 0)
        let again = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(relayPort)", "--token-file", token])
        #expect(again.status == 0 && again.stderr.contains("10 delivered"), "\(again.stderr)")
        #expect(try EventDatabase(path: dir.file("relay-outbox.sqlite")).counts().pending == 20)
        #expect(storedIDs(port: upstreamPort).isEmpty)
        #expect(relay.stop(with: SIGTERM, seconds: 10), "\(relay.output)")
        #expect(relay.process.terminationReason == .exit && relay.process.terminationStatus == 0, "\(relay.output)")
    }

    @Test func gzipTLSAndARelayDeliverUpstream() throws {
        defer { dir.remove() }
        guard let openssl = Programs.which("openssl") else {
            if Programs.peersRequired { Issue.record("openssl is required (EMIT_REQUIRE_PEERS=1)") }
            return
        }
        let cert = dir.file("cert.pem"), key = dir.file("key.pem")
        let made = try Programs.run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                                              "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        #expect(made.status == 0, "\(made.stderr)")
        // Upstream over TLS; a relay in front of it over plain loopback HTTP.
        let (upstream, upstreamPort) = try startReceiver("upstream", extra: ["--tls-cert", cert, "--tls-key", key])
        defer { upstream.kill9() }
        let (relay, relayPort) = try startReceiver("relay", extra: ["--forward-to", "https://127.0.0.1:\(upstreamPort)", "--forward-token-file", token,
                                                                    "--ca-file", cert, "--outbox", dir.file("relay-outbox.sqlite")])
        defer { relay.kill9() }
        let events = try makeEvents(100, run: "relay")
        try writeEvents(events, to: dir.file("events.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("events.jsonl")]).status == 0)
        let flushed = try emit(["outbox", "flush", "--to", "http://127.0.0.1:\(relayPort)", "--token-file", token, "--gzip"])
        #expect(flushed.status == 0, "\(flushed.stderr)")
        let deadline = Date().addingTimeInterval(15)
        var upstreamIDs: [String] = []
        while Date() < deadline {
            let reply = HTTP.request("https://127.0.0.1:\(upstreamPort)/v1/events", headers: ["Authorization": "Bearer \(try String(contentsOfFile: token, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))"])
            if reply.status == -1 { break }  // URLSession cannot trust the private CA on Linux: read through flush's own outcome instead
            upstreamIDs = reply.text.split(separator: "\n").map(String.init)
            if upstreamIDs.count == 100 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        // The relay's outbox tells what reached upstream, whatever URLSession can verify.
        let relayDB = try EventDatabase(path: dir.file("relay-outbox.sqlite"))
        var counts = try relayDB.counts()
        while counts.delivered < 100, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            counts = try relayDB.counts()
        }
        #expect(counts.delivered == 100, "\(relay.output)")
        let upstreamStore = try EventDatabase(path: dir.file("upstream.sqlite"))
        #expect(try upstreamStore.count() == 100)
        // Plain HTTP to a host that is not loopback is refused before anything is sent.
        let refused = try emit(["outbox", "flush", "--to", "http://192.0.2.10:8786", "--token-file", token])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("refusing plain HTTP"))
        // TLS failures in words, not the TLS library's dump: a CA not given, a server without TLS.
        try writeEvents(try makeEvents(1, run: "tls-words"), to: dir.file("one.jsonl"))
        #expect(try emit(["outbox", "add", dir.file("one.jsonl")]).status == 0)
        let untrusted = try emit(["outbox", "flush", "--to", "https://127.0.0.1:\(upstreamPort)", "--token-file", token, "--give-up-after", "1s"])
        #expect(untrusted.stderr.contains("TLS failed: the server's certificate is not signed by a trusted CA"), "\(untrusted.stderr)")
        let plain = try emit(["outbox", "flush", "--to", "https://127.0.0.1:\(relayPort)", "--token-file", token, "--give-up-after", "1s"])
        #expect(plain.stderr.contains("TLS failed: the server did not answer in TLS"), "\(plain.stderr)")
        #expect(!(untrusted.stderr + plain.stderr).contains("OPENSSL_internal"))
    }

    @Test func concurrentWritersLoseNothingAndAFullDiskIsLoud() throws {
        defer { dir.remove() }
        try writeEvents(try makeEvents(3000, run: "writer-a"), to: dir.file("a.jsonl"))
        try writeEvents(try makeEvents(3000, run: "writer-b"), to: dir.file("b.jsonl"))
        let a = try BackgroundProcess(Programs.emit, ["outbox", "add", dir.file("a.jsonl")], environment: ["EMIT_HOME": dir.file("home")], log: dir.file("a.log"))
        let b = try BackgroundProcess(Programs.emit, ["outbox", "add", dir.file("b.jsonl")], environment: ["EMIT_HOME": dir.file("home")], log: dir.file("b.log"))
        a.process.waitUntilExit()
        b.process.waitUntilExit()
        #expect(a.process.terminationStatus == 0 && b.process.terminationStatus == 0, "\(a.output)\(b.output)")
        #expect(try status()["pending"] == .number(6000))

        // All or nothing: one invalid event among valid ones enqueues nothing.
        let valid = try makeEvents(5, run: "mixed").map(\.jsonLine)
        try (valid + [try Repository.text("fixtures/conformance/invalid/bad-energy-negative.jsonl").trimmingCharacters(in: .newlines)])
            .joined(separator: "\n").write(toFile: dir.file("mixed.jsonl"), atomically: true, encoding: .utf8)
        let mixed = try emit(["outbox", "add", dir.file("mixed.jsonl")])
        #expect(mixed.status == 1)
        #expect(mixed.stdout.contains("mixed.jsonl:6: bad_energy"))
        #expect(try status()["pending"] == .number(6000))

        // A full disk: a tiny tmpfs where this test may mount one, else an EMIT_HOME that cannot be created.
        let full = dir.file("full")
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        let mounted = (try? Programs.run("/bin/mount", ["-t", "tmpfs", "-o", "size=48k", "tmpfs", full]))?.status == 0
        defer { if mounted { _ = try? Programs.run("/bin/umount", [full]) } }
        let home = mounted ? full : "/dev/null/emit-home"
        if mounted {
            // Fill the tmpfs so SQLite cannot grow its files.
            _ = try? Programs.run("/bin/sh", ["-c", "head -c 1000000 /dev/zero > '\(full)/filler'"])
        }
        let model = try Programs.run(Programs.emit, ["model", "--run-id", "r-full", "--profile", "managed-small-v1", "--input-tokens", "10",
                                                    "--output-tokens", "5", "--from", "2026-11-27T09:00:00Z", "--to", "2026-11-27T09:01:00Z"],
                                     environment: ["EMIT_HOME": home])
        #expect(model.status != 0)
        #expect(model.stderr.contains("\"energy_source\":\"token_model\""), "the event is printed so nothing vanishes")
        #expect(model.stderr.contains("could not store"))
        // Said as the cause: SQLite's "disk I/O error" on a full file system is a full disk.
        #expect(model.stderr.contains(mounted ? "the disk is full" : "/dev/null is a file, not a folder"), "\(model.stderr)")
        #expect(!model.stderr.contains("while executing"))
    }
}
