import Dispatch
import Foundation

/// Validates a batch of JSON Lines on every core and returns the findings in line order.
/// Lines are independent, so this is the cheapest factor the validator has left.
public enum ParallelValidation {
    public static func validate(_ batch: [(Int, UnsafeBufferPointer<UInt8>)], with validator: Validator) -> [(Int, [Finding])] {
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, batch.count / 64))
        guard workers > 1 else { return batch.map { ($0.0, validator.validate(jsonText: $0.1)) } }
        let results = ResultSlots(count: batch.count)
        let lines = ReadOnlyLines(batch)
        let stride = (batch.count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let range = (worker * stride)..<min(lines.count, (worker + 1) * stride)
            for i in range { results.store(i, validator.validate(jsonText: lines[i])) }
        }
        return batch.indices.map { (batch[$0].0, results.value($0)) }
    }
}

/// One slot per line, each written by exactly one worker before `concurrentPerform` returns.
private final class ResultSlots: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<[Finding]>
    private let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: [], count: count)
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    func store(_ index: Int, _ findings: [Finding]) { slots[index] = findings }
    func value(_ index: Int) -> [Finding] { slots[index] }
}

/// The batch's line buffers, only read while the workers run (the caller keeps them alive).
private struct ReadOnlyLines: @unchecked Sendable {
    private let batch: [(Int, UnsafeBufferPointer<UInt8>)]
    init(_ batch: [(Int, UnsafeBufferPointer<UInt8>)]) { self.batch = batch }
    var count: Int { batch.count }
    subscript(_ i: Int) -> UnsafeBufferPointer<UInt8> { batch[i].1 }
}
