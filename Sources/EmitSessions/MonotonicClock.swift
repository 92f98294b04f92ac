import EmitContract
#if canImport(Glibc)
import Glibc
#endif

/// Sampling time comes from CLOCK_MONOTONIC (immune to wall-clock steps); wall-clock time is
/// taken once, at the first sample, and only used to write `valid_from`/`valid_to`.
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Sleeps until the monotonic time `deadline` (absolute), resuming after signals.
    public static func sleep(until deadline: UInt64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }
}

/// Wall-clock time as a contract timestamp, truncated to microseconds.
public enum WallClock {
    public static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func timestamp(nanoseconds: Int64) -> Timestamp {
        let micros = nanoseconds / 1000
        return Timestamp(epochSeconds: micros / 1_000_000, nanoseconds: Int32(micros % 1_000_000) * 1000, fractionDigits: 6)
    }

    public static func now() -> Timestamp { timestamp(nanoseconds: nowNanoseconds()) }
}
