import EmitContract
import Foundation
import NIOCore
import SwiftProtobuf

/// How an OTLP/HTTP body is written (OTLP 1.x: binary protobuf, or protobuf's JSON mapping
/// with enums as integers).
public enum OTLPEncoding: String, Sendable, CaseIterable {
    case protobuf, json

    public var contentType: String { self == .protobuf ? "application/x-protobuf" : "application/json" }

    func encode<M: SwiftProtobuf.Message>(_ message: M) throws -> [UInt8] {
        switch self {
        case .protobuf:
            return try message.serializedBytes()
        case .json:
            var options = JSONEncodingOptions()
            options.alwaysPrintEnumsAsInts = true
            return try message.jsonUTF8Bytes(options: options)
        }
    }

    /// The encoding a response's Content-Type names (collectors answer in the request's).
    static func of(contentType: String?) -> OTLPEncoding {
        (contentType ?? "").lowercased().hasPrefix("application/json") ? .json : .protobuf
    }
}

/// emit's events as OTLP log records: one record per event, the event itself as the body (a
/// key/value map with the same member names and values), the facts a pipeline routes and
/// deduplicates by as attributes, one resource per producing node.
public enum OTLPLogs {
    public static let path = "/v1/logs"
    public static let eventName = "emit.energy_meter_recorded"

    public struct EncodingError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The request through swift-protobuf's messages: the JSON encoding, and the reference the
    /// protobuf bytes of `wireRequest` are tested against.
    static func encodedRequest(_ events: [String], encoding: OTLPEncoding) throws(EncodingError) -> [UInt8] {
        var resources: [Opentelemetry_Proto_Logs_V1_ResourceLogs] = []
        var resourceOf: [ResourceKey: Int] = [:]
        for (index, text) in events.enumerated() {
            let event: JSONValue
            do { event = try JSONParser.parse(text) } catch {
                throw EncodingError(description: "event \(index) of the batch is not JSON: \(error)")
            }
            let record = try logRecord(event, index: index)
            let key = ResourceKey(node: event["producer"]?["node_id"]?.stringValue, version: event["producer"]?["version"]?.stringValue)
            if let at = resourceOf[key] {
                resources[at].scopeLogs[0].logRecords.append(record)
            } else {
                resourceOf[key] = resources.count
                var scope = Opentelemetry_Proto_Logs_V1_ScopeLogs()
                scope.scope.name = "emit"
                if let version = key.version { scope.scope.version = version }
                scope.logRecords = [record]
                var resourceLogs = Opentelemetry_Proto_Logs_V1_ResourceLogs()
                resourceLogs.resource = resource(key)
                resourceLogs.scopeLogs = [scope]
                resources.append(resourceLogs)
            }
        }
        var request = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest()
        request.resourceLogs = resources
        do { return try encoding.encode(request) } catch {
            throw EncodingError(description: "cannot encode the OTLP request: \(error)")
        }
    }

    /// What a 2xx answer says was refused: `rejectedLogRecords` and the collector's message, or
    /// nil when it accepted everything (an empty or unreadable body is full success, as OTLP says).
    public static func partialSuccess(_ body: [UInt8], contentType: String?) -> (rejected: Int64, message: String)? {
        guard !body.isEmpty else { return nil }
        let response: Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse
        do {
            switch OTLPEncoding.of(contentType: contentType) {
            case .protobuf: response = try .init(serializedBytes: body)
            case .json:
                var options = JSONDecodingOptions()
                options.ignoreUnknownFields = true
                response = try .init(jsonUTF8Bytes: body, options: options)
            }
        } catch {
            return nil
        }
        guard response.hasPartialSuccess, response.partialSuccess.rejectedLogRecords > 0 || !response.partialSuccess.errorMessage.isEmpty else { return nil }
        return (response.partialSuccess.rejectedLogRecords, response.partialSuccess.errorMessage)
    }

    /// The message of an error answer (a `google.rpc.Status`), else its first bytes as text.
    public static func errorMessage(_ body: [UInt8], contentType: String?) -> String {
        let encoding = OTLPEncoding.of(contentType: contentType)
        if encoding == .protobuf, let status = try? Google_Rpc_Status(serializedBytes: body), !status.message.isEmpty {
            return status.message
        }
        if encoding == .json, let message = (try? JSONParser.parse(body))?["message"]?.stringValue, !message.isEmpty {
            return message
        }
        return String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: [" ", "\n", "\r", "\t"])
    }

    /// The request as `OTLPRequestWriter` writes it (tests).
    static func wireRequest(_ events: [String], encoding: OTLPEncoding = .protobuf) throws(EncodingError) -> [UInt8] {
        var writer = OTLPRequestWriter()
        var body = ByteBuffer()
        try writer.write(events, encoding: encoding, into: &body)
        return Array(body.readableBytesView)
    }

    static let recordAttributes = [("event_id", "emit.event_id"), ("energy_source", "emit.energy_source"),
                                   ("energy_provenance", "emit.energy_provenance"), ("grain", "emit.grain"),
                                   ("compute_assignment_run_id", "emit.compute_assignment_run_id"), ("facility_id", "emit.facility_id")]

    static func resourceAttributes(_ key: ResourceKey) -> [(String, String)] {
        var attributes = [("service.name", "emit")]
        if let version = key.version { attributes.append(("service.version", version)) }
        if let node = key.node { attributes += [("host.name", node), ("host.id", node)] }
        return attributes
    }

    struct ResourceKey: Hashable {
        let node: String?
        let version: String?
    }

    static func resource(_ key: ResourceKey) -> Opentelemetry_Proto_Resource_V1_Resource {
        var resource = Opentelemetry_Proto_Resource_V1_Resource()
        resource.attributes = resourceAttributes(key).map { OTLPValues.attribute($0.0, $0.1) }
        return resource
    }

    static func logRecord(_ event: JSONValue, index: Int) throws(EncodingError) -> Opentelemetry_Proto_Logs_V1_LogRecord {
        func time(_ member: String) throws(EncodingError) -> UInt64 {
            guard let text = event[member]?.stringValue, let instant = try? Timestamp(contract: text) else {
                throw EncodingError(description: "event \(index) of the batch has no \(member) timestamp")
            }
            return EventTranscoder.unixNanoseconds(instant.epochSeconds, instant.nanoseconds)
        }
        var record = Opentelemetry_Proto_Logs_V1_LogRecord()
        record.eventName = eventName
        record.timeUnixNano = try time("valid_to")
        record.observedTimeUnixNano = try time("recorded_at")
        record.body = OTLPValues.anyValue(event)
        var attributes: [Opentelemetry_Proto_Common_V1_KeyValue] = []
        for (member, key) in recordAttributes {
            if let value = event[member]?.stringValue { attributes.append(OTLPValues.attribute(key, value)) }
        }
        record.attributes = attributes
        return record
    }
}

/// JSON values as OTLP `AnyValue`s.
enum OTLPValues {
    static func attribute(_ key: String, _ value: String) -> Opentelemetry_Proto_Common_V1_KeyValue {
        var pair = Opentelemetry_Proto_Common_V1_KeyValue()
        pair.key = key
        pair.value.stringValue = value
        return pair
    }

    /// Numbers are `doubleValue` whatever their digits: one type per member keeps the columns
    /// of a sink stable (an energy of exactly 3600 J is still a double). null is an empty value.
    static func anyValue(_ value: JSONValue) -> Opentelemetry_Proto_Common_V1_AnyValue {
        var any = Opentelemetry_Proto_Common_V1_AnyValue()
        switch value {
        case .null: break
        case .bool(let flag): any.boolValue = flag
        case .number(let number): any.doubleValue = number
        case .string(let text): any.stringValue = text
        case .array(let items):
            var list = Opentelemetry_Proto_Common_V1_ArrayValue()
            list.values = items.map(anyValue)
            any.arrayValue = list
        case .object(let members):
            var map = Opentelemetry_Proto_Common_V1_KeyValueList()
            map.values = members.map { key, member in
                var pair = Opentelemetry_Proto_Common_V1_KeyValue()
                pair.key = key
                pair.value = anyValue(member)
                return pair
            }
            any.kvlistValue = map
        }
        return any
    }
}
