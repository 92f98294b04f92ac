import Foundation

/// Provider-brand tokens (data file `invariants/brand-denylist.txt`, compiled in).
/// Matching is case-insensitive on whole tokens: a token is a maximal run of letters and digits,
/// so `gpt4` is one token that does not match `gpt`, while `gpt-4` contains the token `gpt`.
public struct BrandDenylist: Sendable {
    public let tokens: Set<String>
    private let tokenLengths: ClosedRange<Int>

    public static let standard = BrandDenylist(parsing: EmbeddedData.brandDenylistText)

    public init(tokens: Set<String>) {
        self.tokens = Set(tokens.map { $0.lowercased() })
        let lengths = self.tokens.map(\.count)
        tokenLengths = (lengths.min() ?? 1)...(lengths.max() ?? 0)
    }

    /// One token per line; `#` starts a comment line; blank lines are ignored.
    public init(parsing text: String) {
        var tokens = Set<String>()
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            tokens.insert(trimmed.lowercased())
        }
        self.init(tokens: tokens)
    }

    /// The denylisted tokens in `text`, in order of appearance, with their 1-based column.
    public func matches(in text: String) -> [(token: String, column: Int)] {
        var found: [(String, Int)] = []
        var current = ""
        var start = 0
        var column = 0
        func flush() {
            if !current.isEmpty, tokens.contains(current) { found.append((current, start)) }
            current = ""
        }
        for scalar in text.unicodeScalars {
            column += 1
            if BrandDenylist.isTokenScalar(scalar) {
                if current.isEmpty { start = column }
                if scalar.isASCII {
                    current.unicodeScalars.append(scalar.value >= 65 && scalar.value <= 90 ? Unicode.Scalar(UInt8(scalar.value + 32)) : scalar)
                } else {
                    current += String(scalar).lowercased()
                }
            } else {
                flush()
            }
        }
        flush()
        return found
    }

    /// The first denylisted token of `text`. ASCII text (nearly all of it) is tokenized on bytes
    /// without allocating; anything else takes the Unicode-aware path.
    public func firstMatch(in text: String) -> String? {
        let fast: String?? = text.utf8.withContiguousStorageIfAvailable { bytes -> String?? in
            guard !bytes.contains(where: { $0 >= 0x80 }) else { return .none }
            var start = 0
            var i = 0
            while i <= bytes.count {
                let isToken = i < bytes.count && BrandDenylist.isASCIIAlphanumeric(bytes[i])
                if !isToken {
                    let length = i - start
                    if length >= shortest && length <= longest {
                        let token = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self).lowercased()
                        if tokens.contains(token) { return .some(token) }
                    }
                    start = i + 1
                }
                i += 1
            }
            return .some(nil)
        } ?? nil
        if let fast { return fast }
        return matches(in: text).first?.token
    }

    private var shortest: Int { tokenLengths.lowerBound }
    private var longest: Int { tokenLengths.upperBound }

    static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    static func isTokenScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0..<0x80: return false
        default:
            let p = scalar.properties
            return p.isAlphabetic || p.numericType != nil
        }
    }
}
