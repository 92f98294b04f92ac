import Foundation

/// One DCMI "Get Power Reading" answer, parsed from the text ipmitool or FreeIPMI print.
///
/// Layouts handled (see Tests/EmitMetersTests/Fixtures/ipmi): ipmitool 1.8.18 (timestamp and
/// "Sampling period" on lines of their own), 1.8.19 (the timestamp printed without a newline, so
/// "Sampling period" shares its line), older builds that say "Milliseconds", OpenBMC's
/// "deactivated" all-zero answer, and FreeIPMI's `ipmi-dcmi --get-system-power-statistics`
/// ("Current Power", "Power Measurement : Active | Not Available").
public struct DCMIPowerReading: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case active
        /// The BMC says it is not measuring ("deactivated", "Not Available"): its numbers are not readings.
        case inactive(String)
        /// No state line: trusted only when the reading is above zero.
        case unstated
    }

    public let watts: Double
    public let state: State

    public init(watts: Double, state: State) {
        self.watts = watts
        self.state = state
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case noReading(String)
        public var description: String {
            switch self {
            case .noReading(let text): return "no DCMI power reading in the tool's output: \(text)"
            }
        }
    }

    public static func parse(_ text: String) throws(ParseError) -> DCMIPowerReading {
        var watts: Double?
        var state = State.unstated
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "instantaneous power reading", "current power":
                watts = leadingNumber(value)
            case "power reading state is", "power measurement":
                let lowered = value.lowercased()
                state = (lowered == "activated" || lowered == "active") ? .active : .inactive(value)
            default:
                continue
            }
        }
        guard let watts else {
            let firstLine = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? "(empty)"
            throw .noReading(firstLine)
        }
        return DCMIPowerReading(watts: watts, state: state)
    }

    /// The value to integrate, or why this answer is not a reading. A zero from a BMC that does
    /// not say it is measuring is the "no data" answer of many firmwares, never 0 W.
    public var sample: SampleValue {
        switch state {
        case .inactive(let said):
            return .unavailable(reason: "the BMC's power reading state is \"\(said)\": not measuring")
        case .active, .unstated:
            // DCMI's Get Power Reading answers in whole watts.
            if watts > 0 { return .power(watts: watts, quantumWatts: 1) }
            return .unavailable(reason: "the BMC answered 0 W, which BMCs use for \"no reading\"; not integrated as 0 W")
        }
    }

    static func leadingNumber(_ text: String) -> Double? {
        let digits = text.prefix { $0.isNumber || $0 == "." || $0 == "-" }
        return Double(digits)
    }
}

/// One power row of `ipmitool sdr elist|list|type`, or `ipmitool sensor list`: the name and watts.
public struct SDRPowerRow: Sendable, Equatable {
    public let name: String
    public let watts: Double?
    public let status: String
    /// The step of the reading as ipmitool printed it ("280.000" → 0.001, "168" → 1).
    public var quantumWatts: Double = 1

    /// Rows whose unit is Watts; other sensors (amps, temperatures, percent) are skipped.
    public static func parse(_ text: String) -> [SDRPowerRow] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 3 else { return nil }
            let name = fields[0]
            // sensor list: name | 280.000 | Watts | ok | ...
            if fields.count >= 4, fields[2].lowercased() == "watts" {
                return SDRPowerRow(name: name, watts: fields[1] == "na" ? nil : Double(fields[1]), status: fields[3],
                                   quantumWatts: DecimalQuantum.of(text: fields[1]))
            }
            // sdr elist / type: name | 10h | ok | 7.1 | 280 Watts ; sdr list: name | 168 Watts | ok
            let reading = fields.count >= 5 ? fields[4] : fields[1]
            let status = fields[2]
            let lowered = reading.lowercased()
            guard lowered.hasSuffix(" watts") || lowered == "no reading" || lowered == "disabled" else { return nil }
            let watts = lowered.hasSuffix(" watts") ? DCMIPowerReading.leadingNumber(reading) : nil
            return SDRPowerRow(name: name, watts: watts, status: status,
                               quantumWatts: DecimalQuantum.of(text: reading.prefix { $0.isNumber || $0 == "." || $0 == "-" }))
        }
    }

    public var sample: SampleValue {
        guard let watts else { return .unavailable(reason: "sensor \"\(name)\" has no reading (status \(status))") }
        guard status.lowercased() == "ok" else { return .unavailable(reason: "sensor \"\(name)\" status is \"\(status)\"") }
        return .power(watts: watts, quantumWatts: quantumWatts)
    }
}
