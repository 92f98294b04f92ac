import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitCampus

@Suite struct CSVRecordTests {
    @Test func quotedFieldsAndEscapes() throws {
        #expect(try TabularImport.parseRecord("a,\"b,c\",\"say \"\"hi\"\"\",,d\r").get() == ["a", "b,c", "say \"hi\"", "", "d"])
        #expect(try TabularImport.parseRecord("\"multi\nline\",x").get() == ["multi\nline", "x"])
        #expect(throws: TabularImport.RecordError.self) { try TabularImport.parseRecord("ab\"c,d").get() }
        #expect(throws: TabularImport.RecordError.self) { try TabularImport.parseRecord("\"ab\"c,d").get() }
    }
}

@Suite struct FacilityImportCLITests {
    let base = ["facility", "import", "--facility-id", "campus-north/hall-2", "--region", "eu-central", "--source", "pdu", "--pue-applied", "false"]

    func events(_ path: String) throws -> [EnergyEvent] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try EnergyEvent(validating: try JSONParser.parse(String($0))) }
    }

    @Test func realWorldCSVIsNormalizedExactly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let csv = try dir.write("export.csv", "\u{FEFF}meter_id,valid_from,\"valid_to\",energy_kwh,provenance\r\n"
            + "pdu-1,2026-11-27T10:00:00.125+01:00,2026-11-27T09:15:00Z,1.5,measured\r\n"
            + "\"pdu-1\",2026-11-27T09:15:00Z,2026-11-27T09:30:00Z,\"2.25\",\r\n"
            + "pdu-2,2026-11-27T09:00:00Z,2026-11-27T09:15:00Z,3,estimated\r\n"
            + "pdu-1,2026-11-27T09:45:00Z,2026-11-27T10:00:00Z,1,\r\n\r\n\r\n")
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, base + ["--out", out, csv])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let emitted = try events(out)
        #expect(emitted.map(\.energyJoules) == [5_400_000, 8_100_000, 10_800_000, 3_600_000])
        #expect(emitted[0].window.from.text == "2026-11-27T09:00:00.125Z", "offset normalized to UTC, fraction kept")
        #expect(emitted.map(\.provenance) == [.measured, .measured, .estimated, .measured])
        #expect(emitted[0].deviceID == "pdu-1" && emitted[0].json["device"]?["class"] == .string("pdu_inlet"))
        let allFacility = emitted.allSatisfy { $0.grain == .facility && !$0.pueApplied && $0.facilityID == "campus-north/hall-2" }
        #expect(allFacility)
        #expect(result.stderr.contains("warning: meter pdu-1: no window from 2026-11-27T09:30:00Z to 2026-11-27T09:45:00Z"))
    }

    @Test func everyBadRowIsListedAndNothingIsEmitted() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let csv = try dir.write("bad.csv", """
            valid_from,valid_to,energy_wh,meter_id,provenance
            2026-11-27T09:00:00Z,2026-11-27T09:15:00Z,-1,a,
            2026-11-27T09:10:00Z,2026-11-27T09:20:00Z,5,a,
            2026-11-27T09:05:00Z,2026-11-27T09:12:00Z,5,a,
            2026-11-27T09:30:00Z,2026-11-27T09:20:00Z,5,b,
            yesterday,2026-11-27T09:20:00Z,5,b,
            2026-11-27T09:20:00Z,2026-11-27T09:25:00Z,5,b,guessed
            2026-11-27T09:20:00Z,2026-11-27T09:25:00Z,NaN,c,
            1,2
            2026-11-27T09:25:00Z,2026-11-27T09:30:00Z,5,b,

            """)
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, base + ["--out", out, csv])
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
        let lines = Set(result.stdout.split(separator: "\n").map { String($0.split(separator: ":").prefix(3).joined(separator: ":")) })
        let expected: Set<String> = Set(["2: bad_energy", "5: bad_window", "6: bad_timestamp", "7: bad_provenance", "8: bad_energy", "9: bad_row", "3: window_overlap"].map { "\(csv):\($0)" })
        #expect(lines == expected)
    }

    @Test func headersAreChecked() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for header in ["valid_from,valid_to,energy_wh,energy_kwh", "valid_from,energy_wh", "valid_from,valid_to,energy_wh,color", "valid_from,valid_from,valid_to,energy_j"] {
            let csv = try dir.write("h.csv", header + "\n")
            let result = try Programs.run(Programs.emit, base + ["--out", dir.file("o.jsonl"), csv])
            #expect(result.status == 1, "\(header)")
            #expect(result.stdout.contains(": bad_header: "), "\(header): \(result.stdout)")
        }
        // Adjacent windows of one meter do not overlap.
        let adjacent = try dir.write("adj.csv", "valid_from,valid_to,energy_j\n2026-11-27T09:00:00Z,2026-11-27T09:15:00Z,1\n2026-11-27T09:15:00Z,2026-11-27T09:30:00Z,2\n")
        #expect(try Programs.run(Programs.emit, base + ["--out", dir.file("adj.jsonl"), adjacent]).status == 0)
    }

    @Test func jsonLinesRowsUseTheSameMembers() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = try dir.write("rows.jsonl", """
            {"valid_from": "2026-11-27T09:00:00Z", "valid_to": "2026-11-27T10:00:00Z", "energy_mwh": 0.5, "meter_id": "feeder-1"}
            {"valid_from": "2026-11-27T10:00:00Z", "valid_to": "2026-11-27T11:00:00Z", "energy_j": 42, "meter_id": "feeder-1", "provenance": "estimated"}
            """)
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, base + ["--out", out, file])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(try events(out).map(\.energyJoules) == [1_800_000_000, 42])
        let bad = try dir.write("bad.jsonl", "{\"valid_from\": \"2026-11-27T09:00:00Z\", \"valid_to\": \"2026-11-27T10:00:00Z\", \"energy_wh\": 1, \"cost\": 3}\n")
        let rejected = try Programs.run(Programs.emit, base + ["--out", dir.file("x.jsonl"), bad])
        #expect(rejected.status == 1)
        #expect(rejected.stdout.contains("bad.jsonl:1: bad_row: unknown member(s) cost"))
    }

    @Test func greenButtonCountsConsumptionOnly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gb = ["facility", "import", "--facility-id", "home-1", "--grid-region", "US-CAL-CISO", "--source", "smart_meter", "--pue-applied", "false"]
        let hourly = dir.file("hourly.jsonl")
        #expect(try Programs.run(Programs.emit, gb + ["--out", hourly, Repository.path("Tests/EmitCampusTests/Fixtures/espi-electric-hourly-Wh.xml")]).status == 0)
        let readings = try events(hourly)
        #expect(readings.count == 48)
        let hourlyJoules: Double = readings.map(\.energyJoules).reduce(0, +)
        #expect(abs(hourlyJoules - 32643 * 3600) < 1e-6)
        #expect(readings.filter { $0.provenance == .estimated }.count == 1)
        let allUtility = readings.allSatisfy { $0.source == .smartMeter && $0.json["device"]?["class"] == .string("utility_meter") }
        #expect(allUtility)
        let net = dir.file("net.jsonl")
        #expect(try Programs.run(Programs.emit, gb + ["--out", net, Repository.path("Tests/EmitCampusTests/Fixtures/espi-electric-15min-netmetering-mWh.xml")]).status == 0)
        let delivered = try events(net)
        #expect(delivered.count == 8, "received (reverse flow) readings are not consumption")
        let deliveredJoules: Double = delivered.map(\.energyJoules).reduce(0, +)
        #expect(abs(deliveredJoules - 536.426 * 3600) < 1e-6)
        let wrongSource = try Programs.run(Programs.emit, base + ["--out", dir.file("w.jsonl"), Repository.path("Tests/EmitCampusTests/Fixtures/espi-electric-hourly-Wh.xml")])
        #expect(wrongSource.status == 2)
        // A reading without its value is named and nothing is written; it never counts as 0 Wh.
        let feed = try String(contentsOfFile: Repository.path("Tests/EmitCampusTests/Fixtures/espi-electric-hourly-Wh.xml"), encoding: .utf8)
        let firstValue = try #require(feed.range(of: #"<value>[0-9]+</value>"#, options: .regularExpression))
        let broken = try dir.write("broken.xml", feed.replacingCharacters(in: firstValue, with: ""))
        let rejected = try Programs.run(Programs.emit, gb + ["--out", dir.file("b.jsonl"), broken])
        #expect(rejected.status == 1)
        #expect(rejected.stdout.contains("broken.xml: IntervalReading 1: bad_row: value: missing or not a number"), "\(rejected.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("b.jsonl")))
    }

    /// A feed that is not UTF-8 is refused with its line (FoundationXML traps on some such bytes:
    /// found by fuzzing, Fuzz/import/regressions/), and nothing is written.
    @Test func aGreenButtonFeedThatIsNotUTF8IsRefusedWithItsLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var feed = Array(try Repository.text("Tests/EmitCampusTests/Fixtures/espi-electric-hourly-Wh.xml").utf8)
        let lines = feed.split(separator: 0x0A, omittingEmptySubsequences: false)
        let line = 21
        let at = lines[0..<(line - 1)].reduce(0) { $0 + $1.count + 1 }
        feed.insert(contentsOf: [0xDD, 0xDD, 0xDD], at: at)
        let path = dir.file("latin.xml")
        try Data(feed).write(to: URL(fileURLWithPath: path))
        let gb = ["facility", "import", "--facility-id", "home-1", "--grid-region", "US-CAL-CISO", "--source", "smart_meter", "--pue-applied", "false"]
        let rejected = try Programs.run(Programs.emit, gb + ["--out", dir.file("l.jsonl"), path])
        #expect(rejected.status == 1)
        #expect(rejected.stdout.contains("latin.xml:\(line): bad_row: not UTF-8 text"), "\(rejected.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("l.jsonl")))
    }

    /// Real utility feeds repeat entries (a MeterReading listed twice) and readings; a person's
    /// edit (quality 7) is not sensor data. Variants of the project's own hourly feed.
    @Test func greenButtonReadsRepeatsOnceAndEditedReadingsAsEstimated() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let gb = ["facility", "import", "--facility-id", "home-1", "--grid-region", "US-CAL-CISO", "--source", "smart_meter", "--pue-applied", "false"]
        let feed = try Repository.text("Tests/EmitCampusTests/Fixtures/espi-electric-hourly-Wh.xml")
        func entry(containing marker: String) throws -> String {
            let at = try #require(feed.range(of: marker))
            let start = try #require(feed.range(of: "<entry>", options: .backwards, range: feed.startIndex..<at.lowerBound))
            let end = try #require(feed.range(of: "</entry>", range: at.upperBound..<feed.endIndex))
            return String(feed[start.lowerBound..<end.upperBound])
        }
        // The MeterReading entry and the first IntervalBlock entry listed a second time.
        let repeats = try entry(containing: "<MeterReading") + "\n" + entry(containing: "<IntervalBlock")
        let repeated = try dir.write("repeated.xml", feed.replacingOccurrences(of: "</feed>", with: repeats + "\n</feed>"))
        let out = dir.file("repeated.jsonl")
        let result = try Programs.run(Programs.emit, gb + ["--out", out, repeated])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let readings = try events(out)
        #expect(readings.count == 48)
        let joules: Double = readings.map(\.energyJoules).reduce(0, +)
        #expect(abs(joules - 32643 * 3600) < 1e-6)
        // The same reading twice in one block is one reading; a different value for the same
        // window is a conflict, and the feed is refused whole.
        let first = "<timePeriod>\n            <duration>3600</duration>\n            <start>1767254400</start>\n          </timePeriod>\n          <value>374</value>\n        </IntervalReading>"
        #expect(feed.contains(first))
        let twice = try dir.write("twice.xml", feed.replacingOccurrences(of: first, with: first + "\n        <IntervalReading>" + first))
        #expect(try Programs.run(Programs.emit, gb + ["--out", dir.file("twice.jsonl"), twice]).status == 0)
        #expect(try events(dir.file("twice.jsonl")).count == 48)
        let conflicting = first.replacingOccurrences(of: "<value>374</value>", with: "<value>375</value>")
        let conflict = try dir.write("conflict.xml", feed.replacingOccurrences(of: first, with: first + "\n        <IntervalReading>" + conflicting))
        let refused = try Programs.run(Programs.emit, gb + ["--out", dir.file("conflict.jsonl"), conflict])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("window_overlap"), "\(refused.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("conflict.jsonl")))
        // A manually edited reading (ReadingQuality 7) joins the estimated one (quality 8).
        let edited = try dir.write("edited.xml", feed.replacingOccurrences(
            of: "<value>374</value>\n        </IntervalReading>",
            with: "<value>374</value>\n          <ReadingQuality>\n            <quality>7</quality>\n          </ReadingQuality>\n        </IntervalReading>"))
        #expect(try Programs.run(Programs.emit, gb + ["--out", dir.file("edited.jsonl"), edited]).status == 0)
        let tiers = try events(dir.file("edited.jsonl")).map(\.provenance)
        #expect(tiers.filter { $0 == .estimated }.count == 2)
    }

    @Test func prorationTakesTheShareOfOneFacilityEvent() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let facilityFile = Repository.path("fixtures/conformance/valid/facility-pdu-pue-applied.json")
        let facility = try EnergyEvent(validating: try JSONParser.parse(try Repository.text("fixtures/conformance/valid/facility-pdu-pue-applied.json")))
        let result = try Programs.run(Programs.emit, ["facility", "prorate", "--facility-event", facilityFile, "--run-id", "asg-1/run-2", "--share", "0.125", "--basis", "gpu_seconds", "--out", "-"])
        #expect(result.status == 0, "\(result.stderr)")
        let event = try EnergyEvent(validating: try JSONParser.parse(result.stdout.trimmingCharacters(in: .newlines)))
        #expect(event.source == .facilityProration && event.provenance == .estimated)
        #expect(event.energyJoules == facility.energyJoules * 0.125)
        #expect(event.window == facility.window)
        #expect(event.pueApplied == facility.pueApplied)
        #expect(event.json["proration"]?["facility_event_id"] == .string(facility.eventID))
        #expect(try Programs.run(Programs.emit, ["facility", "prorate", "--facility-event", facilityFile, "--run-id", "r", "--share", "1.5", "--out", "-"]).status == 2)
        let run = try Programs.run(Programs.emit, ["facility", "prorate", "--facility-event", Repository.path("fixtures/conformance/valid/gpu-nvml.json"), "--run-id", "r", "--share", "0.5", "--out", "-"])
        #expect(run.status == 1)
        let two = try dir.write("two.jsonl", (try Repository.text("examples/facility-hall-2.jsonl")))
        #expect(try Programs.run(Programs.emit, ["facility", "prorate", "--facility-event", two, "--run-id", "r", "--share", "0.5", "--out", "-"]).status == 2)
    }
}
