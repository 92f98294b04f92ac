import Testing
@testable import EmitContract

@Suite struct JSONParserTests {
    func rejects(_ text: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let value = try JSONParser.parse(text)
            Issue.record("accepted \(text) as \(value)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.reason.contains(fragment), "\(error.reason)", sourceLocation: sourceLocation)
        }
    }

    @Test func repeatedMemberNameIsInvalid() {
        rejects(#"{"a":1,"b":2,"a":3}"#, "repeated")
        rejects(#"{"o":{"x":1,"x":1}}"#, "repeated")
    }

    @Test func nonJSONNumbersAndLiteralsAreInvalid() {
        rejects(#"{"a":NaN}"#, "unexpected character")
        rejects(#"{"a":Infinity}"#, "unexpected character")
        rejects(#"{"a":-Infinity}"#, "needs digits")
        rejects(#"{"a":01}"#, "leading zeros")
        rejects(#"{"a":1.}"#, "fraction")
        rejects(#"{"a":1e}"#, "exponent")
        rejects(#"{"a":1e400}"#, "outside the range")
        rejects(#"{"a":tru}"#, "invalid literal")
    }

    @Test func trailingGarbageAndTruncationAreInvalid() {
        rejects(#"{"a":1} x"#, "after the JSON value")
        rejects(#"{"a":1}{"a":1}"#, "after the JSON value")
        rejects(#"{"a":1"#, "end of input")
        rejects(#"{"a":"x}"#, "unterminated")
        rejects(#"{"a":1,}"#, "member name")
        rejects("", "end of input")
    }

    @Test func stringsAreStrict() {
        rejects("{\"a\":\"tab\there\"}", "control character")
        rejects(#"{"a":"\ud800"}"#, "lone high surrogate")
        rejects(#"{"a":"\udc00"}"#, "lone low surrogate")
        rejects(#"{"a":"\x"}"#, "invalid escape")
        rejects(#"{"a":"\u12"}"#, "four hex digits")
        var bytes = Array(#"{"a":"x"}"#.utf8)
        bytes[6] = 0xFF
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
    }

    @Test func escapesDecodeToTheirScalars() throws {
        let value = try JSONParser.parse(#"{"s":"\"\\\/\b\f\n\r\t\u00fc\ud83d\ude00"}"#)
        #expect(value["s"]?.stringValue == "\"\\/\u{08}\u{0C}\n\r\t\u{FC}\u{1F600}")
    }

    @Test func depthIsBounded() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        rejects(deep, "nesting deeper")
    }

    @Test func integersFollowJSONSchema() throws {
        #expect(try JSONParser.parse("2").integerValue == 2)
        #expect(try JSONParser.parse("2.0").integerValue == 2)
        #expect(try JSONParser.parse("1.5").integerValue == nil)
        #expect(try JSONParser.parse("true").integerValue == nil)
        #expect(try JSONParser.parse("-0").integerValue == 0)
    }

    /// Numbers convert as the standard library's correctly rounded conversion does, on both
    /// sides of the exact path (15 significant digits, powers of ten to 22) and far from it.
    @Test func numbersAreCorrectlyRounded() throws {
        let texts = ["0", "-0", "-0.0", "0.1", "0.3", "32331.913", "123456789012345", "1234567890123456", "99999999999999999999",
                     "0.000001234567890123", "1e22", "1e23", "1.5e-22", "1.5e-23", "123456789012345e10", "9007199254740993",
                     "2.2250738585072011e-308", "4.9e-324", "1e-400", "1.7976931348623157e308", "0.1e1", "100e-2", "-12.5E+3",
                     "0.00000000000000000000000000001", "1" + String(repeating: "0", count: 30) + "e-30"]
        for text in texts {
            let parsed = try #require(try JSONParser.parse(text).numberValue, "\(text)")
            let reference = try #require(Double(text))
            #expect(parsed.bitPattern == reference.bitPattern, "\(text): \(parsed) against \(reference)")
        }
    }

    @Test func objectsKeepDocumentOrder() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(value.objectMembers.map(\.0) == ["z", "a", "m"])
    }
}
