/// The quantum of a decimal reading: 1 for "374", 0.01 for "3000.00", 0.001 for "8.969".
public enum DecimalQuantum {
    /// From the text as the device wrote it (its trailing zeros count: they are digits it shows).
    public static func of(text: some StringProtocol) -> Double {
        var fraction = 0, exponent = 0, seenDot = false
        var rest = Substring(text)
        if let e = rest.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(rest[rest.index(after: e)...]) ?? 0
            rest = rest[..<e]
        }
        for character in rest {
            if character == "." { seenDot = true } else if seenDot, character.isNumber { fraction += 1 }
        }
        return pow10(exponent - fraction)
    }

    /// From a parsed number (JSON): its shortest round-trip form, so a trailing zero the service
    /// wrote is not seen (46.20 reads as 46.2); a meter keeps the finest quantum it has seen.
    public static func of(value: Double) -> Double {
        guard value.isFinite else { return 1 }
        var text = "\(value)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        return of(text: text)
    }

    /// 10^n, exact for |n| <= 22 (one correctly rounded division for negative n). Beyond
    /// what a Double holds, infinity or zero at once: the exponent comes from outside ("1e+9999999999"
    /// in a scrape must not cost ten billion multiplications; the fuzzer found that).
    static func pow10(_ n: Int) -> Double {
        if n > 308 { return .infinity }
        if n < -323 { return 0 }
        var result = 1.0
        for _ in 0..<abs(n) { result *= 10 }
        return n >= 0 ? result : 1 / result
    }
}
