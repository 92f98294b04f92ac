import EmitContract
import EmitMeters
import Testing
@testable import EmitSessions

@Suite struct DeviceTrackerTests {
    let second: UInt64 = 1_000_000_000

    func counter(_ raw: UInt64, range: UInt64? = 1_000) -> SampleValue { .counter(raw: raw, unitsPerJoule: 1e6, wrapRange: range) }

    @Test func countersAddTheirDeltas() {
        var t = DeviceTracker()
        t.add(counter(100), at: 0)
        t.add(counter(300), at: second)
        t.add(counter(700), at: 2 * second)
        #expect(t.totals.counterUnits == 600)
        #expect(t.totals.joules == 0.0006)
        #expect(t.totals.observedNanoseconds == 2 * second)
        #expect(t.totals.samples == 3)
        #expect(t.method == .counterDelta)
    }

    @Test func aWrapIsUndoneAndCounted() {
        var t = DeviceTracker()
        t.add(counter(900), at: 0)
        t.add(counter(50), at: second)   // 900 -> 1000 (range) -> 0 -> 50
        #expect(t.totals.counterUnits == 150)
        #expect(t.totals.wraps == 1)
        #expect(t.totals.resets == 0)
        #expect(t.totals.observedNanoseconds == second)
    }

    @Test func aDecreaseNoPowerCanExplainIsAResetNotAWrap() {
        // Range 262 kJ: a "wrap" from 1000 µJ to 5 µJ in one second would mean 262 kW.
        var t = DeviceTracker()
        t.add(.counter(raw: 1_000, unitsPerJoule: 1e6, wrapRange: 262_143_328_850), at: 0)
        t.add(.counter(raw: 5, unitsPerJoule: 1e6, wrapRange: 262_143_328_850), at: second)
        #expect(t.totals.wraps == 0)
        #expect(t.totals.resets == 1)
        #expect(t.totals.counterUnits == 5)
        #expect(t.totals.observedNanoseconds == 0)
    }

    @Test func aResetCountsFromZeroAndLeavesAGap() {
        var t = DeviceTracker()
        t.add(.counter(raw: 5_000, unitsPerJoule: 1e3, wrapRange: nil), at: 0)
        t.add(.counter(raw: 6_000, unitsPerJoule: 1e3, wrapRange: nil), at: second)
        t.add(.counter(raw: 400, unitsPerJoule: 1e3, wrapRange: nil), at: 2 * second)   // driver reload
        t.add(.counter(raw: 900, unitsPerJoule: 1e3, wrapRange: nil), at: 3 * second)
        #expect(t.totals.counterUnits == 1_000 + 400 + 500)
        #expect(t.totals.joules == 1.9)
        #expect(t.totals.resets == 1)
        #expect(t.totals.observedNanoseconds == 2 * second, "the second before the reset was not observed")
    }

    @Test func aFailedReadIsAGapNotZero() {
        var t = DeviceTracker()
        t.add(counter(100, range: nil), at: 0)
        t.add(.unavailable(reason: "GPU is lost"), at: second)
        t.add(counter(500, range: nil), at: 2 * second)
        t.add(counter(600, range: nil), at: 3 * second)
        #expect(t.totals.counterUnits == 100, "only the pair after the gap is counted")
        #expect(t.totals.observedNanoseconds == second)
        #expect(t.totals.failures == 1)
        #expect(t.totals.lastFailure == "GPU is lost")
    }

    @Test func powerIsIntegratedByTrapezoids() {
        var t = DeviceTracker()
        t.add(.power(watts: 100), at: 0)
        t.add(.power(watts: 200), at: 2 * second)
        t.add(.power(watts: 200), at: 3 * second)
        #expect(t.totals.joules == 300 + 200)
        #expect(t.method == .powerIntegration)
    }

    @Test func windowsAreSnapshotDifferences() {
        var t = DeviceTracker()
        t.add(counter(0, range: nil), at: 0)
        t.add(counter(100_000, range: nil), at: second)
        let mark = t.totals
        t.add(counter(300_000, range: nil), at: 2 * second)
        #expect(t.totals.joules(since: mark) == 0.2)
    }
}
