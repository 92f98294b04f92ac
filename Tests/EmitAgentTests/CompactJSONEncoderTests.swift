import EmitTestSupport
import Foundation
import Testing
@testable import EmitAgent

/// The journal's encoder writes what Foundation's JSONDecoder reads back as the same value.
@Suite struct CompactJSONEncoderTests {
    struct Sample: Codable, Equatable {
        enum Kind: String, Codable { case a, b }
        struct Inner: Codable, Equatable { var values: [Double]; var flag: Bool? }
        var big: UInt64
        var small: Int64
        var count: Int
        var fraction: Double
        var text: String
        var missing: String?
        var present: Int?
        var kind: Kind
        var map: [String: Inner]
        var nested: [[Int32]]
        var empty: [String]
    }

    @Test func whatItWritesJSONDecoderReadsBackExactly() throws {
        let sample = Sample(big: .max, small: .min, count: 1_795_770_900_412_000_123, fraction: 0.1 + 0.2, text: "é\n\"\\\u{1}\u{1F600}",
                            missing: nil, present: 0, kind: .b,
                            map: ["x": .init(values: [1e300, -2.5e-308, 0, 123456789.125], flag: true), "y": .init(values: [], flag: nil)],
                            nested: [[1, -2], []], empty: [])
        let bytes = try CompactJSONEncoder().encode(sample)
        #expect(try JSONDecoder().decode(Sample.self, from: Data(bytes)) == sample)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"big\":18446744073709551615") && text.contains("\"count\":1795770900412000123"), "integers exact: \(text)")
        #expect(!text.contains("missing"), "an absent optional is left out, as JSONEncoder does")
    }

    @Test func aNumberJSONCannotHoldIsRefused() {
        struct Bad: Encodable { var value = Double.nan }
        #expect(throws: CompactJSONEncoder.Unencodable.self) { try CompactJSONEncoder().encode(Bad()) }
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
