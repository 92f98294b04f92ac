import Dispatch
import Foundation

/// Validates a batch of JSON Lines on every core and returns the findings in line order.
/// Lines are independent, so this is the cheapest factor the validator has left.
public enum ParallelValidation {
    public static func validate(_ batch: [(Int, UnsafeBufferPointer<UInt8>)], with validator: Validator) -> [(Int, [Finding])] {
        validateKeepingIDs(batch, with: validator).map { ($0.0, $0.1) }
    }

    /// As `validate`, also returning each event's `event_id` (nil when it has none).
    public static func validateKeepingIDs(_ batch: [(Int, UnsafeBufferPointer<UInt8>)], with validator: Validator) -> [(Int, [Finding], String?)] {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, batch.count / 64))
        guard workers > 1 else {
            return batch.map { line in
                let (findings, id) = validator.validateKeepingID(jsonText: line.1)
                return (line.0, findings, id)
            }
        }
        let results = ResultSlots(count: batch.count)
        let lines = ReadOnlyLines(batch)
        let stride = (batch.count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let range = (worker * stride)..<min(lines.count, (worker + 1) * stride)
            for i in range { results.store(i, validator.validateKeepingID(jsonText: lines[i])) }
        }
        return batch.indices.map { i in
            let (findings, id) = results.value(i)
            return (batch[i].0, findings, id)
        }
    }
}

/// One slot per line, each written by exactly one worker before `concurrentPerform` returns.
private final class ResultSlots: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<([Finding], String?)>
    private let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: ([], nil), count: count)
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    func store(_ index: Int, _ result: ([Finding], String?)) { slots[index] = result }
    func value(_ index: Int) -> ([Finding], String?) { slots[index] }
}

/// The batch's line buffers, only read while the workers run (the caller keeps them alive).
private struct ReadOnlyLines: @unchecked Sendable {
    private let batch: [(Int, UnsafeBufferPointer<UInt8>)]
    init(_ batch: [(Int, UnsafeBufferPointer<UInt8>)]) { self.batch = batch }
    var count: Int { batch.count }
    subscript(_ i: Int) -> UnsafeBufferPointer<UInt8> { batch[i].1 }
}
