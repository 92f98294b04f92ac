import Testing
import Foundation
@testable import EmitContract

/// RFC 8785 (JCS) vectors: the numbers of its Appendix B and the sorting and string examples of §3.2.
@Suite struct CanonicalJSONTests {
    // Inputs are parsed at run time: several are not exactly representable as literals.
    @Test(arguments: [
        ("0", "0"), ("-0", "0"), ("1", "1"), ("-1.5", "-1.5"),
        ("5e-324", "5e-324"), ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("9007199254740992", "9007199254740992"), ("9007199254740994", "9007199254740994"),
        ("295147905179352830000", "295147905179352830000"), ("1e21", "1e+21"), ("1e20", "100000000000000000000"),
        ("0.000001", "0.000001"), ("1e-7", "1e-7"), ("333333333.3333333", "333333333.3333333"),
        ("-5e-324", "-5e-324"), ("0.1", "0.1"), ("123.456e-10", "1.23456e-8"), ("4.5", "4.5"),
        ("1.0000000000000002", "1.0000000000000002"), ("-1e-7", "-1e-7"), ("1.5e300", "1.5e+300"),
    ])
    func numbersUseTheECMAScriptForm(input: String, expected: String) throws {
        let value = try #require(Double(input))
        #expect(JSONWriter.formatNumber(value) == expected)
    }

    @Test func membersSortByUTF16CodeUnits() throws {
        // RFC 8785 §3.2.3: the emoji (a surrogate pair, D83D) sorts before U+FB33.
        let input = #"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#
        let canonical = String(decoding: JSONWriter.canonical(try JSONParser.parse(input)), as: UTF8.self)
        let keys = try JSONParser.parse(canonical).objectMembers.map(\.0)
        #expect(keys == ["\r", "1", "\u{80}", "\u{F6}", "\u{20AC}", "\u{1F600}", "\u{FB33}"])
    }

    @Test func stringsEscapeOnlyWhatJCSEscapes() throws {
        let input = #"{"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literal":"\u007f\u2028\u0000\b"}"#
        let canonical = String(decoding: JSONWriter.canonical(try JSONParser.parse(input)), as: UTF8.self)
        #expect(canonical == "{\"literal\":\"\u{7F}\u{2028}\\u0000\\b\",\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}")
    }

    @Test func nestedValuesAreCanonicalToo() throws {
        let canonical = JSONWriter.canonical(try JSONParser.parse(#"{ "b" : [ 1.0 , {"y":true,"x":null} ], "a" : "" }"#))
        #expect(String(decoding: canonical, as: UTF8.self) == #"{"a":"","b":[1,{"x":null,"y":true}]}"#)
    }

    @Test func eventIDMatchesAnIndependentImplementation() {
        // Expected value computed with Python's json.dumps(sort_keys=True, separators=(",", ":"),
        // ensure_ascii=False) and hashlib.sha256 over the same identity.
        let identity = EventIdentity(
            grain: "run", energySource: "nvml", computeAssignmentRunID: "r\u{FC}-\u{1F600}-\"\\-\t",
            nodeID: "n1", deviceID: "GPU-1", validFrom: "2026-11-27T09:00:00Z", validTo: "2026-11-27T09:00:01.5Z")
        #expect(String(decoding: identity.canonicalBytes, as: UTF8.self)
            == "{\"compute_assignment_run_id\":\"r\u{FC}-\u{1F600}-\\\"\\\\-\\t\",\"device_id\":\"GPU-1\",\"energy_source\":\"nvml\",\"grain\":\"run\",\"kind\":\"emit:energy_meter_recorded\",\"node_id\":\"n1\",\"valid_from\":\"2026-11-27T09:00:00Z\",\"valid_to\":\"2026-11-27T09:00:01.5Z\"}")
        #expect(identity.eventID == "8ac4ddc4da28c64c3ffe30dec35fd926946b4c647cc76756f3e77f731941c0cc")
    }

    @Test func absentIdentityMembersAreOmittedNotNull() {
        let identity = EventIdentity(grain: "facility", energySource: "pdu", facilityID: "f", validFrom: "a", validTo: "b")
        let text = String(decoding: identity.canonicalBytes, as: UTF8.self)
        #expect(!text.contains("null"))
        #expect(!text.contains("node_id"))
        #expect(text.contains("\"facility_id\":\"f\""))
    }
}

/// The byte-level number and timestamp writers against straightforward string implementations
/// (the ones they replaced), over many random values.
@Suite struct FormattingDifferentialTests {
    static func referenceNumber(_ value: Double) -> String {
        if value == 0 { return "0" }
        if value.magnitude < 9_007_199_254_740_992, value == value.rounded(.towardZero) { return String(Int64(value)) }
        var text = value.magnitude.description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        var digits = Array(parts[0] + (parts.count > 1 ? parts[1] : ""))
        var n = parts[0].count + exponent
        while digits.first == "0" { digits.removeFirst(); n -= 1 }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        var result = value < 0 ? "-" : ""
        if k <= n && n <= 21 { result += String(digits) + String(repeating: "0", count: n - k) }
        else if 0 < n && n <= 21 { result += String(digits[0..<n]) + "." + String(digits[n...]) }
        else if -6 < n && n <= 0 { result += "0." + String(repeating: "0", count: -n) + String(digits) }
        else {
            let e = n - 1
            result += String(digits[0]) + (k > 1 ? "." + String(digits[1...]) : "") + "e" + (e < 0 ? "-" : "+") + String(abs(e))
        }
        return result
    }

    @Test func numbersMatchTheReferenceLayout() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let candidates: [Double] = [
                Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng)),
                Double.random(in: -1e6...1e6, using: &rng),
                Double(Int.random(in: -1_000_000...1_000_000, using: &rng)) / 1000,
                Double.random(in: 0...1, using: &rng) * pow(10, Double(Int.random(in: -30...30, using: &rng))),
            ]
            for value in candidates where value.isFinite {
                #expect(JSONWriter.formatNumber(value) == Self.referenceNumber(value), "\(value)")
            }
        }
    }

    @Test func timestampsRoundTripAtEveryPrecision() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let seconds = Int64.random(in: -62_135_596_800...253_402_300_799, using: &rng)  // years 0001...9999
            let digits = Int.random(in: 0...9, using: &rng)
            let unit = Int32(pow(10, Double(9 - digits)))
            let nanos = Int32.random(in: 0..<1_000_000_000, using: &rng) / unit * unit
            let t = Timestamp(epochSeconds: seconds, nanoseconds: nanos, fractionDigits: digits)
            let back = try Timestamp(contract: t.text)
            #expect(back.epochSeconds == seconds && back.nanoseconds == nanos && back.text == t.text, "\(t.text)")
            #expect(t.text.utf8.count == (digits == 0 ? 20 : 21 + digits))
        }
        #expect(Timestamp(epochSeconds: 0, nanoseconds: 5_000, fractionDigits: 6).text == "1970-01-01T00:00:00.000005Z")
        #expect(Timestamp(epochSeconds: -1, nanoseconds: 0, fractionDigits: 0).text == "1969-12-31T23:59:59Z")
    }
}
