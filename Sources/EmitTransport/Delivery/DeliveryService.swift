import ServiceLifecycle
import Synchronization

/// A flusher as one service of a daemon (the agent's delivery, a relay's, a flush). On graceful
/// shutdown it sends nothing new and returns once the batches on the wire are answered and
/// marked, so a stop sends nothing twice for want of an answer; cancelled, it stops at once
/// (what was on the wire stays pending and goes again).
public final class DeliveryService: Service {
    public let flusher: Flusher
    /// What the flush came to, or why it ended, once `run` returned.
    private let ended = Mutex<Result<FlushOutcome, any Error>?>(nil)
    private let stoppedForGood: @Sendable (String) -> Void

    /// `stoppedForGood` is told why, when the flush ends on its own before it was asked to:
    /// refused credentials, a collector refusing for good (a daemon that goes on says so).
    public init(_ flusher: Flusher, stoppedForGood: @escaping @Sendable (_ reason: String) -> Void = { _ in }) {
        self.flusher = flusher
        self.stoppedForGood = stoppedForGood
    }

    public var outcome: Result<FlushOutcome, any Error>? { ended.withLock { $0 } }

    public func run() async throws {
        let result: Result<FlushOutcome, any Error>
        do {
            result = .success(try await withGracefulShutdownHandler {
                try await flusher.run()
            } onGracefulShutdown: { [flusher] in
                flusher.finishInFlight()
            })
        } catch {
            result = .failure(error)
        }
        await flusher.shutdown()
        ended.withLock { $0 = result }
        switch result {
        case .failure(let error) where !(error is CancellationError):
            stoppedForGood(StorageFailure.describe(error, at: flusher.outbox.path))
        case .success(let outcome) where outcome.gaveUp != nil:
            stoppedForGood("\(outcome.gaveUp ?? ""); \(outcome.pending) events pending")
        default:
            break
        }
        if case .failure(let error) = result { throw error }
    }
}
