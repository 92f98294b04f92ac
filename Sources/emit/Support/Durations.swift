/// Durations as CLI.md writes them: `250ms`, `2s`, `5m`, `1h` (decimals allowed: `0.5s`).
enum Durations {
    static func seconds(_ text: String, flag: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if let value = Double(number), value.isFinite, value > 0 { return value * scale }
        }
        throw CommandFailure.usage("\(flag): \"\(text)\" is not a duration (write 250ms, 2s, 5m or 1h)")
    }
}
