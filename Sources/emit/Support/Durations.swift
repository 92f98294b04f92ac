/// Durations as CLI.md writes them: `250ms`, `2s`, `5m`, `1h` (decimals allowed: `0.5s`).
enum Durations {
    static func seconds(_ text: String, flag: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard let value = Double(number), value.isFinite else { continue }
            guard value > 0 else { throw CommandFailure.usage("\(flag): \(text) must be greater than zero") }
            return value * scale
        }
        throw CommandFailure.usage("\(flag): \"\(text)\" is not a duration (write 250ms, 2s, 5m or 1h)")
    }

    /// Seconds for a person: 250ms, 1s, 1.5s, 2m, 1h.
    static func text(_ seconds: Double) -> String {
        if seconds < 1 { return String(format: "%gms", (seconds * 1000).rounded()) }
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return String(format: "%gh", seconds / 3600) }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return String(format: "%gm", seconds / 60) }
        return String(format: "%gs", seconds)
    }
}
