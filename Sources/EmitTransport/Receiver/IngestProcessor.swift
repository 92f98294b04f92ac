import EmitContract

/// Validates and stores one ingest body: the receiver's whole job, apart from HTTP.
public struct IngestProcessor: Sendable {
    public let store: EventDatabase
    /// With a relay, accepted events also enter this outbox to be forwarded upstream.
    public let forwardOutbox: EventDatabase?
    public let validator: Validator
    private let storeWriter: GroupCommitter
    private let forwardWriter: GroupCommitter?

    public init(store: EventDatabase, forwardOutbox: EventDatabase? = nil, validator: Validator = .standard) {
        self.store = store
        self.forwardOutbox = forwardOutbox
        self.validator = validator
        storeWriter = GroupCommitter(database: store, state: .delivered)
        forwardWriter = forwardOutbox.map { GroupCommitter(database: $0, state: .pending) }
    }

    public typealias NotJSONLines = IngestBody.NotJSONLines

    /// The store or the relay's outbox could not take the request's events (nothing of the
    /// request is then in that database; a retry is deduplicated in the other).
    public struct StoreFailed: Error, CustomStringConvertible {
        public let path: String
        public let error: any Error
        public var description: String { "\(path): \(StorageFailure.describe(error, at: path))" }
    }

    /// Checks every event, then stores the valid ones durably before answering. With a relay,
    /// every valid event of the body (new or not) is offered to the forward outbox too, so a
    /// retry after a failure between the two stores still forwards it.
    public func ingest(_ body: [UInt8]) async throws -> IngestResult {
        let (valid, rejected) = try check(body)
        let batch = GroupCommitter.Batch(bytes: body, rows: valid)
        let added: Int
        do { added = try await storeWriter.add(batch) } catch { throw StoreFailed(path: store.path, error: error) }
        if let forwardWriter, let forwardOutbox {
            do { _ = try await forwardWriter.add(batch) } catch { throw StoreFailed(path: forwardOutbox.path, error: error) }
        }
        return IngestResult(accepted: added, duplicates: valid.count - added, rejected: rejected)
    }

    func check(_ body: [UInt8]) throws(NotJSONLines) -> (valid: [(id: String, range: Range<Int>)], rejected: [IngestResult.Rejected]) {
        try IngestBody.check(body, with: validator)
    }
}
