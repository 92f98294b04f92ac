import GRDB
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
    private let paused: @Sendable (String?) -> Void

    /// A following flush whose outbox fails (a full disk) waits this long at most between tries.
    static let longestStoragePause = 30.0

    /// `stoppedForGood` is told why, when the flush ends on its own before it was asked to:
    /// refused credentials, a collector refusing for good (a daemon that goes on says so).
    /// `paused` is told why a following flush waits for its outbox (a full disk), and nil when
    /// it tries again.
    public init(_ flusher: Flusher, paused: @escaping @Sendable (_ reason: String?) -> Void = { _ in },
                stoppedForGood: @escaping @Sendable (_ reason: String) -> Void = { _ in }) {
        self.flusher = flusher
        self.paused = paused
        self.stoppedForGood = stoppedForGood
    }

    public var outcome: Result<FlushOutcome, any Error>? { ended.withLock { $0 } }

    public func run() async throws {
        var result: Result<FlushOutcome, any Error>
        var pause = 1.0
        var saidPause: String?
        while true {
            let began = ContinuousClock.now
            do {
                result = .success(try await withGracefulShutdownHandler {
                    try await flusher.run()
                } onGracefulShutdown: { [flusher] in
                    flusher.finishInFlight()
                })
            } catch {
                result = .failure(error)
            }
            // A following flush (a daemon's delivery) outlives a full disk: the events stay
            // pending, and it tries again, said once per cause, until it can mark them.
            guard case .failure(let error) = result, error is DatabaseError, flusher.options.follow, !flusher.isFinishing else { break }
            // A flush that ran a while before failing again starts its waits from 1 s again.
            if ContinuousClock.now - began > .seconds(Self.longestStoragePause) { pause = 1 }
            let reason = StorageFailure.describe(error, at: flusher.outbox.path)
            if reason != saidPause {
                flusher.log("the outbox \(flusher.outbox.path) failed: \(reason); delivery waits and tries again (every \(Int(Self.longestStoragePause)) s at most)")
                saidPause = reason
            }
            paused(reason)
            do { try await flusher.pause(pause) } catch { break }
            pause = min(pause * 2, Self.longestStoragePause)
            paused(nil)
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
