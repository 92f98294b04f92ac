/// A sample of the Prometheus text exposition format (version 0.0.4).
public struct PrometheusSample: Sendable, Equatable {
    public let name: String
    public let labels: [String: String]
    public let value: Double
    /// The step of the value as written: 0.001 for "8.969", 1e-6 for "8.969000", 1 for "409".
    public let quantum: Double

    public init(name: String, labels: [String: String], value: Double, quantum: Double = 1) {
        self.name = name
        self.labels = labels
        self.value = value
        self.quantum = quantum
    }
}

/// Parses the Prometheus text exposition format: `name{label="value",...} value [timestamp]`,
/// `#` comment lines (HELP/TYPE), label values with `\"`, `\\` and `\n` escapes.
public enum PrometheusText {
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Samples of the metric named `metric` (all metrics when nil). Lines of other metrics are
    /// skipped without being parsed in full.
    public static func parse(_ text: String, metric: String? = nil) throws -> [PrometheusSample] {
        try parse(text, metrics: metric.map { [$0] })
    }

    /// Samples of any of `metrics` (all metrics when nil), in the document's order.
    public static func parse(_ text: String, metrics: [String]?) throws -> [PrometheusSample] {
        var samples: [PrometheusSample] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if let metrics, !metrics.contains(where: { metric in
                line.hasPrefix(metric) && line.dropFirst(metric.count).first.map({ $0 == "{" || $0 == " " }) == true
            }) { continue }
            samples.append(try parseLine(Substring(line), number: index + 1))
        }
        return samples
    }

    static func parseLine(_ line: Substring, number: Int) throws -> PrometheusSample {
        var i = line.startIndex
        while i < line.endIndex, line[i] != "{", line[i] != " " { i = line.index(after: i) }
        let name = String(line[line.startIndex..<i])
        guard !name.isEmpty else { throw ParseError(line: number, reason: "missing metric name") }
        var labels: [String: String] = [:]
        if i < line.endIndex, line[i] == "{" {
            i = line.index(after: i)
            while true {
                while i < line.endIndex, line[i] == " " || line[i] == "," { i = line.index(after: i) }
                guard i < line.endIndex else { throw ParseError(line: number, reason: "unterminated label set") }
                if line[i] == "}" { i = line.index(after: i); break }
                let keyStart = i
                while i < line.endIndex, line[i] != "=" { i = line.index(after: i) }
                guard i < line.endIndex else { throw ParseError(line: number, reason: "label without '='") }
                let key = String(line[keyStart..<i]).trimmingCharacters(in: .whitespaces)
                i = line.index(after: i)
                guard i < line.endIndex, line[i] == "\"" else { throw ParseError(line: number, reason: "label value must be quoted") }
                i = line.index(after: i)
                var value = ""
                var closed = false
                while i < line.endIndex {
                    let c = line[i]
                    if c == "\\" {
                        i = line.index(after: i)
                        guard i < line.endIndex else { break }
                        switch line[i] {
                        case "n": value.append("\n")
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        default: value.append("\\"); value.append(line[i])
                        }
                    } else if c == "\"" {
                        closed = true
                        i = line.index(after: i)
                        break
                    } else {
                        value.append(c)
                    }
                    i = line.index(after: i)
                }
                guard closed else { throw ParseError(line: number, reason: "unterminated label value") }
                labels[key] = value
            }
        }
        let rest = line[i...].split(separator: " ", omittingEmptySubsequences: true)
        guard let first = rest.first else { throw ParseError(line: number, reason: "missing sample value") }
        guard let value = parseValue(first) else { throw ParseError(line: number, reason: "bad sample value \"\(first)\"") }
        return PrometheusSample(name: name, labels: labels, value: value, quantum: DecimalQuantum.of(text: first))
    }

    static func parseValue(_ text: Substring) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default: return Double(text)
        }
    }
}

import Foundation
