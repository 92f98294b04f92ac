import Testing
@testable import EmitContract

@Suite struct TimestampTests {
    @Test func contractFormAcceptsZeroToNineFractionDigits() throws {
        for text in ["2026-11-27T09:00:00Z", "2026-11-27T09:00:00.5Z", "2026-11-27T09:00:00.123456789Z", "2024-02-29T23:59:59Z"] {
            #expect(try Timestamp(contract: text).text == text)
        }
    }

    @Test func contractFormRejectsEverythingElse() {
        let bad = ["2026-11-27T09:00:00", "2026-11-27 09:00:00Z", "2026-11-27T09:00:00.Z", "2026-11-27T09:00:00.1234567890Z",
                   "2026-11-27T09:00:00+00:00", "2026-11-27t09:00:00z", "26-11-27T09:00:00Z", "2026-11-27T09:00:00ZZ"]
        for text in bad { #expect(throws: Timestamp.ParseError.self, "\(text)") { try Timestamp(contract: text) } }
    }

    @Test func impossibleInstantsAreRejected() {
        for text in ["2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-27T24:00:00Z",
                     "2026-11-27T23:60:00Z", "2016-12-31T23:59:60Z", "2026-00-10T00:00:00Z"] {
            #expect(throws: Timestamp.ParseError.noSuchInstant(text)) { try Timestamp(contract: text) }
        }
    }

    @Test func offsetsNormalizeToUTCKeepingTheFraction() throws {
        #expect(try Timestamp(rfc3339: "2026-11-27T10:00:00.250+01:00").text == "2026-11-27T09:00:00.250Z")
        #expect(try Timestamp(rfc3339: "2026-01-01T00:30:00-05:30").text == "2026-01-01T06:00:00Z")
        #expect(try Timestamp(rfc3339: "2027-01-01T00:00:00.000000001+14:00").text == "2026-12-31T10:00:00.000000001Z")
        #expect(try Timestamp(rfc3339: "2026-11-27t09:00:00z").text == "2026-11-27T09:00:00Z")
    }

    @Test func orderIsByInstantToTheNanosecond() throws {
        let a = try Timestamp(contract: "2026-11-27T09:00:00.000000001Z")
        let b = try Timestamp(contract: "2026-11-27T09:00:00.00000001Z")
        #expect(a < b)
        #expect(try Timestamp(rfc3339: "2026-11-27T10:00:00+01:00").epochSeconds == Timestamp(contract: "2026-11-27T09:00:00Z").epochSeconds)
        #expect(try Timestamp(contract: "1970-01-01T00:00:00Z").epochSeconds == 0)
        #expect(try Timestamp(contract: "2000-03-01T00:00:00Z").epochSeconds == 951_868_800)
    }

    @Test func formattingRoundTrips() throws {
        let t = Timestamp(epochSeconds: 1_795_770_000, nanoseconds: 123_456_000, fractionDigits: 6)
        #expect(t.text == "2026-11-27T09:00:00.123456Z")
        #expect(try Timestamp(contract: t.text) == t)
    }
}
