import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitOTLP

/// The protobuf bytes emit writes by hand are swift-protobuf's bytes for the same message.
@Suite struct OTLPEncodingTests {
    /// Every conformance fixture and example event, and shapes they lack: null, arrays of
    /// objects, a string long enough to widen every enclosing length, several nodes.
    func events() throws -> [String] {
        var events: [String] = []
        for folder in ["fixtures/conformance/valid"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: Repository.path(folder)).sorted() where name.hasSuffix(".json") {
                events.append(JSONWriter.line(try JSONParser.parse(try Repository.text("\(folder)/\(name)"))))
            }
        }
        for example in ["examples/run-node-a17.jsonl", "examples/facility-hall-2.jsonl"] {
            events += try Repository.text(example).split(separator: "\n").map(String.init)
        }
        let long = String(repeating: "é-", count: 20_000)
        events.append(#"{"valid_to": "2026-11-27T09:15:00.5Z", "recorded_at": "2026-11-27T09:15:01Z", "producer": {"node_id": "node-b", "version": "9.9"}, "n": null, "t": true, "f": false, "z": 0, "list": [1, "two", {"three": [null, 3.25e-7]}], "long": "\#(long)"}"#)
        events.append(#"{"valid_to":"2026-11-27T09:15:00Z","recorded_at":"2026-11-27T09:15:00Z","grain":"r\u00e9n\n\"\\\/\ud83d\ude00","big":123456789012345678,"small":-0.0,"e":1E+2}"#)
        events.append(#"{"valid_to": "1970-01-01T00:00:00Z", "recorded_at": "1970-01-01T00:00:00.000000001Z", "empty": {}, "none": []}"#)
        // Numbers on either side of the exact path (15 digits, powers of ten to 22) and the
        // extremes; a captured member whose name has an escape; instants OTLP cannot say.
        events.append(#"{"valid_to": "2026-11-27T09:15:00Z", "recorded_at": "2026-11-27T09:15:01Z", "n": [0.1, 0.3, 1e22, 1e23, 123456789012345, 1234567890123456, 123456789012345.6, 5e-324, 1.7976931348623157e308, 0.000123, -0, -0.0, 100, 1E-7, 2.5e-22, 9007199254740993, 0.1e1, 10e-1]}"#)
        events.append(#"{"\u0076alid_to": "2026-11-27T09:15:00Z", "recorded_at": "2026-11-27T09:15:01Z", "ev\u0065nt_id": "id-\u00e9", "producer": {"node_\u0069d": "n\u00f6de"}}"#)
        events.append(#"{"valid_to": "9999-12-31T23:59:59.999999999Z", "recorded_at": "1969-12-31T23:59:59Z", "grain": "run"}"#)
        return events
    }

    @Test func theWireWriterMatchesSwiftProtobufByteForByte() throws {
        let all = try events()
        for count in [1, 2, all.count] {
            let batch = Array(all.prefix(count))
            let reference = try OTLPLogs.encodedRequest(batch, encoding: .protobuf)
            let written = try OTLPLogs.wireRequest(batch)
            #expect(written == reference, "\(count) events: \(written.count) bytes written, \(reference.count) by swift-protobuf")
        }
        // And swift-protobuf reads them back as what it would have built.
        let decoded = try Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest(serializedBytes: try OTLPLogs.wireRequest(all))
        #expect(decoded.resourceLogs.flatMap { $0.scopeLogs.flatMap(\.logRecords) }.count == all.count)
        // One resource per producer: node-a17, node-b, facility rows (no node), the records
        // without a producer and the node written with escapes.
        #expect(decoded.resourceLogs.count == 5)
        // Times OTLP cannot carry (after 2554, before 1970) are 0, "unknown"; the body keeps the text.
        let farOff = try #require(decoded.resourceLogs.flatMap { $0.scopeLogs.flatMap(\.logRecords) }.first {
            $0.body.kvlistValue.values.first { $0.key == "valid_to" }?.value.stringValue.hasPrefix("9999") == true
        })
        #expect(farOff.timeUnixNano == 0 && farOff.observedTimeUnixNano == 0)
    }

    /// OTLP's JSON, written from the events' text (their strings and numbers as written), reads
    /// back with swift-protobuf's JSON decoder as the message swift-protobuf builds, and is JSON
    /// the strict parser reads.
    @Test func theJSONEncodingReadsBackAsTheMessageSwiftProtobufBuilds() throws {
        let all = try events()
        for batch in [[], Array(all.prefix(1)), Array(all.prefix(2)), all] {
            let written = try OTLPLogs.wireRequest(batch, encoding: .json)
            _ = try JSONParser.parse(written)
            let reference = try Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest(serializedBytes: try OTLPLogs.encodedRequest(batch, encoding: .protobuf))
            let decoded = try Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest(jsonUTF8Bytes: written)
            #expect(decoded == reference, "\(batch.count) events: \(String(decoding: written.prefix(400), as: UTF8.self))")
        }
        // A lone producer with a long node id, and producers interleaved.
        let long = String(repeating: "rack-7/", count: 80)
        func event(_ node: String, _ second: Int) -> String {
            #"{"valid_to": "2026-11-27T09:15:0\#(second)Z", "recorded_at": "2026-11-27T09:15:09Z", "producer": {"node_id": "\#(node)"}}"#
        }
        for batch in [[event(long, 0), event(long, 1)], [event("a", 0), event("b", 1), event("a", 2)]] {
            let decoded = try Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest(jsonUTF8Bytes: try OTLPLogs.wireRequest(batch, encoding: .json))
            #expect(try decoded == Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest(serializedBytes: try OTLPLogs.encodedRequest(batch, encoding: .protobuf)))
        }
    }

    /// Nesting as deep as the strict parser reads is transcoded, a level deeper refused, in
    /// both encodings (a scalar inside the deepest container counted no level of its own).
    @Test func nestingIsReadAsDeepAsTheStrictParserReadsIt() throws {
        func event(_ containers: Int) -> String {
            // The event object itself is the first container.
            let inner = String(repeating: "[", count: containers - 1) + "1" + String(repeating: "]", count: containers - 1)
            return #"{"valid_to": "2026-11-27T09:15:00Z", "recorded_at": "2026-11-27T09:15:01Z", "deep": \#(inner)}"#
        }
        let deepest = event(JSONParser.maximumDepth)
        _ = try JSONParser.parse(deepest)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(event(JSONParser.maximumDepth + 1)) }
        for encoding in OTLPEncoding.allCases {
            #expect(try !OTLPLogs.wireRequest([deepest], encoding: encoding).isEmpty, "\(encoding)")
            #expect(throws: OTLPLogs.EncodingError.self, "\(encoding)") { try OTLPLogs.wireRequest([event(JSONParser.maximumDepth + 1)], encoding: encoding) }
        }
        #expect(try OTLPLogs.wireRequest([deepest]) == OTLPLogs.encodedRequest([deepest], encoding: .protobuf))
    }

    /// Records of several producers interleaved are gathered per producer in order of first
    /// appearance; a node id too long for the room kept before a lone producer's records still
    /// gets its headers.
    @Test func producersInterleavedOrLongAreWrittenAsSwiftProtobufWould() throws {
        func event(_ node: String, _ second: Int) -> String {
            #"{"valid_to": "2026-11-27T09:15:0\#(second)Z", "recorded_at": "2026-11-27T09:15:09Z", "event_id": "e\#(second)", "producer": {"node_id": "\#(node)", "version": "1.0"}}"#
        }
        let long = String(repeating: "rack-7/", count: 80)
        for batch in [[event("a", 0), event("b", 1), event("a", 2), event("c", 3), event("b", 4)], [event(long, 0), event(long, 1)],
                      [event(long, 0), event("a", 1), event(long, 2)]] {
            #expect(try OTLPLogs.wireRequest(batch) == OTLPLogs.encodedRequest(batch, encoding: .protobuf))
        }
    }

    /// Every room short of a record is refused without a write past it (the memory is exactly
    /// that large); with room to spare the bytes are the same.
    @Test func aRecordThatDoesNotFitIsRefusedAndOneThatFitsIsTheSame() throws {
        var transcoder = EventTranscoder()
        for text in try events() where text.utf8.count < 4000 {
          for encoding in OTLPEncoding.allCases {
            let record = try transcoder.record(text, json: encoding == .json)
            var utf8 = Array(text.utf8)
            for room in 0...(record.count + 8) {
                let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: room, alignment: 1)
                defer { memory.deallocate() }
                let written = try utf8.withUnsafeMutableBufferPointer {
                    encoding == .protobuf ? try transcoder.record(UnsafeBufferPointer($0), into: memory) { _, _ in }
                        : try transcoder.jsonRecord(UnsafeBufferPointer($0), into: memory) { _, _ in }
                }
                if room < record.count {
                    #expect(written == nil, "\(room) bytes")
                } else if let written {
                    #expect(Array(memory.prefix(written)) == record)
                } else {
                    // A length kept two bytes wide that needs one holds a byte until its message ends.
                    #expect(room < record.count + 8, "refused with \(room - record.count) bytes to spare")
                }
            }
          }
        }
    }

    @Test func anEventWithoutItsTimesOrNotJSONIsRefusedNamingIt() {
        for text in [#"{"recorded_at": "2026-11-27T09:15:01Z"}"#, "not json", #"{"valid_to": "x"#, #"{"a": [1, }"#, #"{"a": "\ud800"}"#, "[1]", #"{"a":1} x"#] {
            for encoding in OTLPEncoding.allCases {
                #expect(throws: OTLPLogs.EncodingError.self, "\(text) in \(encoding)") { try OTLPLogs.wireRequest([text], encoding: encoding) }
            }
        }
    }
}
