import ServiceLifecycle
import Synchronization

/// A flusher as one service of a daemon (the agent's delivery, a relay's, a following flush).
/// On graceful shutdown it sends nothing new and returns once the batches on the wire are
/// answered and marked, so a stop sends nothing twice for want of an answer; cancelled, it
/// stops at once (what was on the wire stays pending and goes again).
public final class DeliveryService: Service {
    public let flusher: Flusher
    /// What the flush came to, or why it ended, once `run` returned.
    private let ended = Mutex<Result<FlushOutcome, any Error>?>(nil)
    private let whenEnded: @Sendable (Result<FlushOutcome, any Error>) -> Void

    /// `whenEnded` is told how the flush ended (a daemon that keeps metering says so in its log).
    public init(_ flusher: Flusher, whenEnded: @escaping @Sendable (Result<FlushOutcome, any Error>) -> Void = { _ in }) {
        self.flusher = flusher
        self.whenEnded = whenEnded
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
        whenEnded(result)
        if case .failure(let error) = result { throw error }
    }
}
