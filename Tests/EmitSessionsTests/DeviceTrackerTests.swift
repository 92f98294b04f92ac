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
        #expect(t.totals.counterJoules == 0.0006)
        #expect(t.totals.counterObservedNanoseconds == 2 * second)
        #expect(t.totals.samples == 3)
        #expect(t.totals.counterAdvances == 2)
    }

    @Test func aWrapIsUndoneAndCounted() {
        var t = DeviceTracker()
        t.add(counter(900), at: 0)
        t.add(counter(50), at: second)   // 900 -> 1000 (range) -> 0 -> 50
        #expect(t.totals.counterUnits == 150)
        #expect(t.totals.wraps == 1)
        #expect(t.totals.resets == 0)
        #expect(t.totals.counterObservedNanoseconds == second)
    }

    @Test func aDecreaseNoPowerCanExplainIsAResetNotAWrap() {
        // Range 262 kJ: a "wrap" from 1000 µJ to 5 µJ in one second would mean 262 kW.
        var t = DeviceTracker()
        t.add(.counter(raw: 1_000, unitsPerJoule: 1e6, wrapRange: 262_143_328_850), at: 0)
        t.add(.counter(raw: 5, unitsPerJoule: 1e6, wrapRange: 262_143_328_850), at: second)
        #expect(t.totals.wraps == 0)
        #expect(t.totals.resets == 1)
        #expect(t.totals.counterUnits == 5)
        #expect(t.totals.counterObservedNanoseconds == 0)
    }

    @Test func aResetCountsFromZeroAndLeavesAGap() {
        var t = DeviceTracker()
        t.add(.counter(raw: 5_000, unitsPerJoule: 1e3, wrapRange: nil), at: 0)
        t.add(.counter(raw: 6_000, unitsPerJoule: 1e3, wrapRange: nil), at: second)
        t.add(.counter(raw: 400, unitsPerJoule: 1e3, wrapRange: nil), at: 2 * second)   // driver reload
        t.add(.counter(raw: 900, unitsPerJoule: 1e3, wrapRange: nil), at: 3 * second)
        #expect(t.totals.counterUnits == 1_000 + 400 + 500)
        #expect(t.totals.counterJoules == 1.9)
        #expect(t.totals.resets == 1)
        #expect(t.totals.counterObservedNanoseconds == 2 * second, "the second before the reset was not observed")
    }

    @Test func aFailedReadIsAGapNotZero() {
        var t = DeviceTracker()
        t.add(counter(100, range: nil), at: 0)
        t.add(.unavailable(reason: "GPU is lost"), at: second)
        t.add(counter(500, range: nil), at: 2 * second)
        t.add(counter(600, range: nil), at: 3 * second)
        #expect(t.totals.counterUnits == 100, "only the pair after the gap is counted")
        #expect(t.totals.counterObservedNanoseconds == second)
        #expect(t.totals.failures == 1)
        #expect(t.totals.lastFailure == "GPU is lost")
    }

    @Test func powerIsIntegratedByTrapezoids() {
        var t = DeviceTracker()
        t.add(.power(watts: 100, quantumWatts: 1), at: 0)
        t.add(.power(watts: 200, quantumWatts: 1), at: 2 * second)
        t.add(.power(watts: 200, quantumWatts: 1), at: 3 * second)
        #expect(t.totals.powerJoules == 300 + 200)
        #expect(t.totals.powerObservedNanoseconds == 3 * second)
        #expect(evidence(t) == .energy(joules: 500, method: .powerIntegration, samples: 3, observedSeconds: 3,
                                       wraps: 0, resets: 0, resolutionJoules: 3))
    }

    @Test func windowsAreSnapshotDifferences() {
        var t = DeviceTracker()
        t.add(counter(0, range: nil), at: 0)
        t.add(counter(100_000, range: nil), at: second)
        let mark = t.totals
        t.add(counter(300_000, range: nil), at: 2 * second)
        #expect(WindowEvidence.choose(before: mark, now: t.totals, seconds: 1, openedWithCounter: true, openedWithPower: false)
            == .energy(joules: 0.2, method: .counterDelta, samples: 2, observedSeconds: 1, wraps: 0, resets: 0, resolutionJoules: 1e-6))
    }

    // MARK: - Choosing the evidence of a window

    func evidence(_ t: DeviceTracker, seconds: Double? = nil) -> WindowEvidence {
        WindowEvidence.choose(before: DeviceTracker.Totals(), now: t.totals,
                              seconds: seconds ?? Double(t.totals.counterObservedNanoseconds + t.totals.powerObservedNanoseconds) / 1e9,
                              openedWithCounter: false, openedWithPower: false)
    }

    /// An NVML-style millijoule counter with a power reading beside it.
    func gpu(_ millijoules: UInt64, watts: Double?) -> SampleValue {
        .counter(raw: millijoules, unitsPerJoule: 1e3, wrapRange: nil, power: watts.map { PowerReading(watts: $0, quantumWatts: 0.001) })
    }

    @Test func aCounterThatDidNotMoveWhilePowerWasReadIsIntegratedNeverZero() {
        // A dcgm-exporter refreshing every 30 s, read for 2 s: the same counter value at every read.
        var t = DeviceTracker()
        for i in 0...8 { t.add(gpu(128_996_013, watts: 70), at: UInt64(i) * second / 4) }
        guard case let .energy(joules, method, samples, observed, _, _, resolution) = evidence(t, seconds: 2) else {
            Issue.record("no energy: \(evidence(t, seconds: 2))"); return
        }
        #expect(method == .powerIntegration)
        #expect(abs(joules - 140) < 1e-9)
        #expect(samples == 9)
        #expect(observed == 2)
        #expect(abs(resolution - 0.002) < 1e-12, "1 mW × 2 s")
    }

    @Test func aCounterThatDidNotMoveWithoutPowerIsWithheldNotZero() {
        var t = DeviceTracker()
        for i in 0...4 { t.add(.counter(raw: 7_855, unitsPerJoule: 1e-3 / 3.6, wrapRange: nil, quantumJoules: 3.6e6), at: UInt64(i) * second) }
        guard case .withheld(let reason) = evidence(t, seconds: 4) else { Issue.record("\(evidence(t, seconds: 4))"); return }
        #expect(reason == "the counter did not advance in 4 s, and the device gives no power reading to integrate")
    }

    @Test func aWholeKWhCounterIsTooCoarseForMinutesAndPowerIsIntegrated() {
        // 374 W for 15 minutes is 0.0935 kWh; the counter happens to tick once (3.6 MJ).
        var t = DeviceTracker()
        let kWh = 3_600_000_000.0  // mJ per kWh
        t.add(.counter(raw: UInt64(325_675 * kWh), unitsPerJoule: 1e3, wrapRange: nil, quantumJoules: 3.6e6,
                       power: PowerReading(watts: 374, quantumWatts: 1)), at: 0)
        t.add(.counter(raw: UInt64(325_676 * kWh), unitsPerJoule: 1e3, wrapRange: nil, quantumJoules: 3.6e6,
                       power: PowerReading(watts: 374, quantumWatts: 1)), at: 900 * second)
        #expect(evidence(t, seconds: 900) == .energy(joules: 374 * 900, method: .powerIntegration, samples: 2, observedSeconds: 900,
                                                     wraps: 0, resets: 0, resolutionJoules: 900))
        // Without the power reading the same window is not measured, and the summary says why.
        var bare = DeviceTracker()
        bare.add(.counter(raw: UInt64(325_675 * kWh), unitsPerJoule: 1e3, wrapRange: nil, quantumJoules: 3.6e6), at: 0)
        bare.add(.counter(raw: UInt64(325_676 * kWh), unitsPerJoule: 1e3, wrapRange: nil, quantumJoules: 3.6e6), at: 900 * second)
        #expect(evidence(bare, seconds: 900) == .withheld(
            "the counter counted 3600000 J and its quantum is 3600000 J, more than 1% of it, and the device gives no power reading to integrate"))
    }

    @Test func aFineCounterThatMovesIsPreferredOverPower() {
        var t = DeviceTracker()
        for i in 0...10 { t.add(gpu(1_000_000 + UInt64(i) * 250_000, watts: 999), at: UInt64(i) * second) }
        #expect(evidence(t, seconds: 10) == .energy(joules: 2_500, method: .counterDelta, samples: 11, observedSeconds: 10,
                                                    wraps: 0, resets: 0, resolutionJoules: 0.001))
    }

    @Test func oneJumpAfterAHoldIsNoRefreshPeriodUnlessPowerWasSeenMeanwhile() {
        // A RAPL-like counter (no power beside it) that a stalled reader saw hold once: its
        // quantum stands. 100 J over 10 s in one jump of 5 J after the hold.
        var stalled = DeviceTracker()
        stalled.add(.counter(raw: 0, unitsPerJoule: 1e6, wrapRange: nil), at: 0)
        stalled.add(.counter(raw: 0, unitsPerJoule: 1e6, wrapRange: nil), at: second / 2)
        for i in 1...10 { stalled.add(.counter(raw: UInt64(i) * 10_000_000 - 5_000_000, unitsPerJoule: 1e6, wrapRange: nil), at: UInt64(i) * second) }
        guard case .energy(_, .counterDelta, _, _, _, _, let resolution) = evidence(stalled, seconds: 10) else { Issue.record("\(evidence(stalled, seconds: 10))"); return }
        #expect(resolution == 1e-6)
        // The same single hold while the device's own power read 900 W: the counter is stale.
        var stale = DeviceTracker()
        for i in 0...4 { stale.add(gpu(2_000_000_000, watts: 900), at: UInt64(i) * second / 4) }
        stale.add(gpu(2_003_600_000, watts: 900), at: 5 * second / 4)
        guard case .energy(_, .powerIntegration, _, _, _, _, _) = evidence(stale, seconds: 1.25) else { Issue.record("\(evidence(stale, seconds: 1.25))"); return }
    }

    @Test func aStaleCounterShowsEnergyInTheStepsItJumpsBy() {
        // Refreshed every 2 s, read every second: it holds, then jumps by 2 s of 100 W.
        var t = DeviceTracker()
        for i in 0...20 { t.add(gpu(UInt64(i / 2) * 200_000, watts: 100), at: UInt64(i) * second) }
        #expect(t.totals.staleStepJoules == 200)
        // 2 kJ counted in steps of 200 J (10%): power is the evidence.
        guard case .energy(_, let method, _, _, _, _, let resolution) = evidence(t, seconds: 20) else { Issue.record("no energy"); return }
        #expect(method == .powerIntegration)
        #expect(abs(resolution - 0.02) < 1e-12)
        // Over a long run the same steps are under 1% and the counter is the evidence, its
        // resolution the step it was seen to jump by.
        for i in 21...2_000 { t.add(gpu(UInt64(i / 2) * 200_000, watts: 100), at: UInt64(i) * second) }
        guard case .energy(let joules, let longMethod, _, _, _, _, let longResolution) = evidence(t, seconds: 2_000) else { Issue.record("no energy"); return }
        #expect(longMethod == .counterDelta)
        #expect(joules == 200_000)
        #expect(longResolution == 200)
    }
}
