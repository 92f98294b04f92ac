import EmitContract

/// The ingest protocol (`POST /v1/events`): the body is JSON Lines, the answer says per event
/// what became of it. Idempotent by `event_id`: a retry never counts an event twice.
public enum IngestProtocol {
    public static let path = "/v1/events"
    public static let contentType = "application/x-ndjson"
}

public struct IngestResult: Sendable, Equatable {
    public struct Rejected: Sendable, Equatable {
        public let index: Int
        public let eventID: String?
        public let codes: [String]
        public init(index: Int, eventID: String?, codes: [String]) {
            self.index = index
            self.eventID = eventID
            self.codes = codes
        }
    }

    public var accepted: Int
    public var duplicates: Int
    public var rejected: [Rejected]

    public init(accepted: Int, duplicates: Int, rejected: [Rejected]) {
        self.accepted = accepted
        self.duplicates = duplicates
        self.rejected = rejected
    }

    public var json: JSONValue {
        .object([
            ("accepted", .number(Double(accepted))),
            ("duplicates", .number(Double(duplicates))),
            ("rejected", .array(rejected.map { r in
                var members: [(String, JSONValue)] = [("index", .number(Double(r.index)))]
                members.append(("event_id", r.eventID.map(JSONValue.string) ?? .null))
                members.append(("codes", .array(r.codes.map(JSONValue.string))))
                return .object(members)
            })),
        ])
    }

    public struct DecodeError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(json value: JSONValue) throws {
        guard let accepted = value["accepted"]?.integerValue, let duplicates = value["duplicates"]?.integerValue,
              case let .array(list)? = value["rejected"] else {
            throw DecodeError(description: "the receiver's answer lacks accepted, duplicates or rejected")
        }
        var rejected: [Rejected] = []
        for entry in list {
            guard let index = entry["index"]?.integerValue, case let .array(codes)? = entry["codes"] else {
                throw DecodeError(description: "a rejected entry lacks index or codes")
            }
            rejected.append(Rejected(index: Int(index), eventID: entry["event_id"]?.stringValue, codes: codes.compactMap(\.stringValue)))
        }
        self.init(accepted: Int(accepted), duplicates: Int(duplicates), rejected: rejected)
    }
}

/// An ingest body read and checked, apart from HTTP and storage (fuzzed on its own:
/// scripts/fuzz.sh ingest).
public enum IngestBody {
    public struct NotJSONLines: Error, CustomStringConvertible {
        public let description: String
    }

    /// Splits the body into lines and validates them: the valid events by their byte ranges,
    /// and the rejected ones with their codes.
    static func check(_ body: [UInt8], with validator: Validator) throws(NotJSONLines) -> (valid: [(id: String, range: Range<Int>)], rejected: [IngestResult.Rejected]) {
        guard String(validating: body, as: UTF8.self) != nil else {
            throw NotJSONLines(description: "the body is not UTF-8 text")
        }
        return try body.withUnsafeBufferPointer { all throws(NotJSONLines) in
            var lines: [(Int, UnsafeBufferPointer<UInt8>)] = []
            var ranges: [Range<Int>] = []
            var start = 0
            for i in 0...all.count where i == all.count || all[i] == 0x0A {
                var end = i
                if end > start, all[end - 1] == 0x0D { end -= 1 }
                let line = UnsafeBufferPointer(rebasing: all[start..<end])
                if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                    lines.append((lines.count, line))
                    ranges.append(start..<end)
                }
                start = i + 1
            }
            guard !lines.isEmpty else { throw NotJSONLines(description: "the body holds no event") }
            var valid: [(id: String, range: Range<Int>)] = []
            valid.reserveCapacity(lines.count)
            var rejected: [IngestResult.Rejected] = []
            for (range, (index, problems, id)) in zip(ranges, ParallelValidation.validateKeepingIDs(lines, with: validator)) {
                if problems.isEmpty, let id {
                    valid.append((id, range))
                } else {
                    rejected.append(IngestResult.Rejected(index: index, eventID: id, codes: Array(Set(problems.map(\.code.rawValue))).sorted()))
                }
            }
            return (valid, rejected)
        }
    }
}
