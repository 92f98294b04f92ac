import EmitMeters
import Foundation

/// Reads network meters side by side without letting one hold up the rest. A round starts a read
/// on its own thread for every meter that has none running and waits until they answer or the
/// round's deadline (the next tick) passes. A read still running then (a BMC that stopped
/// answering waits out its timeout) is not abandoned: the meter is skipped until it answers,
/// and the answer joins a later round stamped with the time it arrived. The other meters keep
/// their interval; what the slow one misses is a gap in its coverage, never invented energy.
final class ConcurrentReads: @unchecked Sendable {
    struct Reading {
        let meter: Int
        let values: [SampleValue]
        /// Monotonic time the values stand for: the round's for an answer within its round,
        /// else the moment the answer arrived.
        let time: UInt64
    }

    /// A read's answer: the round that started it (its number) and when it arrived.
    private struct Answer {
        let meter: Int
        let values: [SampleValue]
        let round: Int
        let arrived: UInt64
    }

    private let meters: [EnergyMeter]
    /// The meters read here (indices into `meters`): those that read over the network.
    private let indices: [Int]
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var running: [Bool]
    private var answers: [Answer] = []
    // Only touched by the thread running the rounds.
    private var startedThisRound: [Int] = []
    private var round = 0

    init(meters: [EnergyMeter], indices: [Int]) {
        self.meters = meters
        self.indices = indices
        running = Array(repeating: false, count: meters.count)
    }

    /// Starts the reads of the next round, for every meter that has none running.
    func begin() {
        round += 1
        let round = round
        condition.lock()
        startedThisRound = indices.filter { !running[$0] }
        for index in startedThisRound { running[index] = true }
        condition.unlock()
        for index in startedThisRound {
            // A thread per read, not a bounded pool: the reads wait on the network, not the CPU.
            Thread { [self] in
                let values = meters[index].sample()
                let arrived = MonotonicClock.nanoseconds()
                condition.lock()
                running[index] = false
                answers.append(Answer(meter: index, values: values, round: round, arrived: arrived))
                condition.broadcast()
                condition.unlock()
            }.start()
        }
    }

    /// Waits until the round's reads answered or `deadline` passed (with none, for all of them)
    /// and returns the readings to feed, in time order; the round's own answers stamped `time`.
    func end(stampedAt time: UInt64, deadline: UInt64?) -> [Reading] {
        condition.lock()
        defer { condition.unlock() }
        while startedThisRound.contains(where: { running[$0] }) {
            guard let deadline else { condition.wait(); continue }
            let now = MonotonicClock.nanoseconds()
            guard now < deadline, condition.wait(until: Date(timeIntervalSinceNow: Double(deadline - now) / 1e9)) else { break }
        }
        return take(round: round, upTo: time)
    }

    /// Waits for every read still running and returns what has not been fed yet.
    func finish() -> [Reading] {
        condition.lock()
        defer { condition.unlock() }
        while running.contains(true) { condition.wait() }
        return take(round: nil, upTo: .max)
    }

    /// Answers of round `current` (stamped with its time) and late answers that arrived by
    /// `time`; a late answer that arrived after it waits for the next round, so every device's
    /// samples stay in time order and inside the window they are fed to.
    private func take(round current: Int?, upTo time: UInt64) -> [Reading] {
        var ready: [Reading] = []
        var later: [Answer] = []
        for answer in answers {
            if answer.round == current {
                ready.append(Reading(meter: answer.meter, values: answer.values, time: time))
            } else if answer.arrived <= time {
                ready.append(Reading(meter: answer.meter, values: answer.values, time: answer.arrived))
            } else {
                later.append(answer)
            }
        }
        answers = later
        return ready.sorted { $0.time < $1.time }
    }
}
