#if canImport(Glibc)
import Glibc
#endif
import EmitContract

enum Clock {
    /// Wall-clock now as a contract timestamp (microseconds).
    static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(epochSeconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec / 1000 * 1000), fractionDigits: 6)
    }
}
