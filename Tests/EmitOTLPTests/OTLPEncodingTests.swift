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
        // One resource per producer: node-a17, node-b, facility rows (no node) and the record without a producer.
        #expect(decoded.resourceLogs.count == 4)
    }

    @Test func anEventWithoutItsTimesOrNotJSONIsRefusedNamingIt() {
        for text in [#"{"recorded_at": "2026-11-27T09:15:01Z"}"#, "not json", #"{"valid_to": "x"#, #"{"a": [1, }"#, #"{"a": "\ud800"}"#, "[1]", #"{"a":1} x"#] {
            #expect(throws: OTLPLogs.EncodingError.self, "\(text)") { try OTLPLogs.wireRequest([text]) }
        }
    }
}
