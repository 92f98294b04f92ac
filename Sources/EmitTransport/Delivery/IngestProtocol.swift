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

/// Validates and stores one ingest body: the receiver's whole job, apart from HTTP.
public struct IngestProcessor: Sendable {
    public let store: EventDatabase
    /// With a relay, accepted events also enter this outbox to be forwarded upstream.
    public let forwardOutbox: EventDatabase?
    public let validator: Validator

    public init(store: EventDatabase, forwardOutbox: EventDatabase? = nil, validator: Validator = .standard) {
        self.store = store
        self.forwardOutbox = forwardOutbox
        self.validator = validator
    }

    public struct NotJSONLines: Error, CustomStringConvertible {
        public let description: String
    }

    public func ingest(_ body: [UInt8]) throws -> IngestResult {
        guard String(validating: body, as: UTF8.self) != nil else {
            throw NotJSONLines(description: "the body is not UTF-8 text")
        }
        return try body.withUnsafeBufferPointer { all -> IngestResult in
            var lines: [(Int, UnsafeBufferPointer<UInt8>)] = []
            var start = 0
            for i in 0...all.count where i == all.count || all[i] == 0x0A {
                var end = i
                if end > start, all[end - 1] == 0x0D { end -= 1 }
                let line = UnsafeBufferPointer(rebasing: all[start..<end])
                if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { lines.append((lines.count, line)) }
                start = i + 1
            }
            guard !lines.isEmpty else { throw NotJSONLines(description: "the body holds no event") }
            let results = ParallelValidation.validateKeepingIDs(lines, with: validator)
            var valid: [(String, UnsafeBufferPointer<UInt8>)] = []
            valid.reserveCapacity(lines.count)
            var rejected: [IngestResult.Rejected] = []
            for ((index, line), (_, problems, id)) in zip(lines, results) {
                if problems.isEmpty, let id {
                    valid.append((id, line))
                } else {
                    rejected.append(IngestResult.Rejected(index: index, eventID: id, codes: Array(Set(problems.map(\.code.rawValue))).sorted()))
                }
            }
            let added = try store.addInOneTransaction(state: .delivered) { inserter in
                for (id, line) in valid { try inserter.insert(id: id, body: line) }
            }.added
            if let forwardOutbox {
                try forwardOutbox.addInOneTransaction { inserter in
                    for (id, line) in valid { try inserter.insert(id: id, body: line) }
                }
            }
            return IngestResult(accepted: added, duplicates: valid.count - added, rejected: rejected)
        }
    }
}
