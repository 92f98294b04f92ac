import EmitContract
import EmitSessions
import EmitTestSupport
import Foundation
import Testing
@testable import EmitAgent

/// The journal's records written by hand are what Codable writes: JSONDecoder reads them back
/// as the same values, with the same members.
@Suite struct JournalJSONTests {
    func fragment(_ value: some JSONFragmentWriting) throws -> Data { try HandWrittenJSON.data(value) }
    func keys(_ data: Data) throws -> Set<String> { try HandWrittenJSON.memberPaths(data) }

    @Test func recordsAreWrittenAsCodableWritesThem() throws {
        let sampler = ContinuousSampler(meters: [HandMeter.gpus(2), HandMeter.packages(1)], interval: 3600, sharedRoundAge: 0)
        let run = AgentRun(runID: "job/\"7\"\n", uid: 1000, scope: ["nvml:GPU-0", "rapl:package-0"], labels: ["queue": "batch", "é": "ü"],
                           begin: sampler.mark(), sharedBy: ["nvml:GPU-0": 2], notes: ["MIG-1 metered as GPU-0"])
        let records = [RunsJournal.Record(begin: run), RunsJournal.Record(end: "job/1"),
                       RunsJournal.Record(shared: .init(runID: "job/2", device: "nvml:GPU-1", runs: 3))]
        let encoder = JSONEncoder()
        for record in records {
            #expect(try JSONDecoder().decode(RunsJournal.Record.self, from: try fragment(record)) == record)
            #expect(try keys(try fragment(record)) == keys(try encoder.encode(record)), "the same members as Codable")
        }
    }
}

/// The sampler's checkpoint in two files written in turn: a write cut short leaves the other.
@Suite struct CheckpointFileTests {
    @Test func aTornWriteFallsBackToTheOtherFileAndGarbageIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = CheckpointFile(base: dir.file("cp"), folder: dir.path)
        #expect(try file.load() == nil)
        for n in 1...3 { try file.store(Array("{\"n\":\(n)}".utf8), sync: n == 3) }
        #expect(try CheckpointFile(base: dir.file("cp"), folder: dir.path).load() == Data("{\"n\":3}".utf8))
        // The newest write cut short: the other file, one write older, is read.
        let newest = try #require(file.paths.first { (try? String(contentsOfFile: $0, encoding: .utf8))?.contains("{\"n\":3}") == true })
        let text = try String(contentsOfFile: newest, encoding: .utf8)
        try String(text.dropLast(3)).write(toFile: newest, atomically: false, encoding: .utf8)
        let reopened = CheckpointFile(base: dir.file("cp"), folder: dir.path)
        #expect(try reopened.load() == Data("{\"n\":2}".utf8))
        // The next write goes over the torn one, and is then the newest.
        try reopened.store(Array("{\"n\":4}".utf8), sync: true)
        #expect(try CheckpointFile(base: dir.file("cp"), folder: dir.path).load() == Data("{\"n\":4}".utf8))
        // Files that hold no checkpoint at all are someone's: refused, left alone.
        for path in file.paths { try "not ours\n".write(toFile: path, atomically: false, encoding: .utf8) }
        #expect(throws: AgentError.self) { try CheckpointFile(base: dir.file("cp"), folder: dir.path).load() }
        #expect(try String(contentsOfFile: file.paths[0], encoding: .utf8) == "not ours\n")
    }
}
