/// Observation-only, in code: emit reads counters and never changes hardware state. These rules
/// flag source lines that would set an NVML/DCGM value, write a powercap attribute, or send an
/// IPMI/Redfish command that changes a power limit or power state.
///
/// Each pattern spells its keyword with a one-letter character class (`nvmlDevice[S]et`) so this
/// file does not match its own rules.
public struct ObservationRule: Sendable {
    public let id: String
    public let explanation: String
    let pattern: String

    init(_ id: String, _ explanation: String, _ pattern: String) {
        self.id = id
        self.explanation = explanation
        self.pattern = pattern
    }
}

public enum ObservationRules {
    static let lineRules: [ObservationRule] = [
        ObservationRule("nvml_setter", "calls an NVML setter; emit only reads GPU counters", #"nvmlDevice[S]et[A-Za-z0-9_]*"#),
        ObservationRule("nvml_setter", "calls an NVML unit setter; emit only reads GPU counters", #"nvmlUnit[S]et[A-Za-z0-9_]*"#),
        ObservationRule("dcgm_setter", "calls a DCGM configuration or policy setter; emit only reads fields", #"dcgm[C]onfigSet|dcgm[P]olicySet"#),
        ObservationRule("ipmi_power_control", "sends an IPMI chassis power command", #"chassis["'\s,]+power["'\s,]+(on|off|cycle|reset|soft|diag)\b"#),
        ObservationRule("ipmi_power_limit", "sets or (de)activates a DCMI power limit", #"set[_]limit|dcmi["'\s,]+power["'\s,]+(de)?activat[e]"#),
        ObservationRule("redfish_reset", "invokes a Redfish reset action", #"Reset[T]ype|(ComputerSystem|Chassis|Manager|PowerSupply)\.Rese[t]\b"#),
        ObservationRule("redfish_patch", "sends a Redfish PATCH (changes a resource, e.g. a power limit)", #"\.PATC[H]\b|"PATC[H]""#),
    ]

    /// A file that touches powercap must never open anything for writing.
    static let powercapMention = #"power[c]ap|intel-rap[l]|energy_u[j]|constraint_[0-9]"#
    static let writeAPI = ObservationRule(
        "powercap_write", "opens for writing in a file that reads powercap; RAPL zones are read-only to emit",
        #"O_[W]RONLY|O_[R]DWR|forWriting(AtPath|To)|forUpdating(AtPath|To)|\.write\(to[F:]|write\(toFil[e]|fopen\([^)]*"[wa+]"#)

    /// Source files the scanner reads.
    public static let sourceExtensions: Set<String> = ["swift", "c", "h", "py", "sh"]

    public static func scan(text: String, file: String) throws -> [CheckFinding] {
        var findings: [CheckFinding] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let compiled = try lineRules.map { ($0, try Regex($0.pattern)) }
        let writeRegex = try Regex(writeAPI.pattern)
        let touchesPowercap = text.contains(try Regex(powercapMention))
        for (index, line) in lines.enumerated() {
            for (rule, regex) in compiled where line.contains(regex) {
                findings.append(CheckFinding(file: file, line: index + 1, code: "observation_only", message: "\(rule.id): \(rule.explanation)"))
            }
            if touchesPowercap, line.contains(writeRegex) {
                findings.append(CheckFinding(file: file, line: index + 1, code: "observation_only", message: "\(writeAPI.id): \(writeAPI.explanation)"))
            }
        }
        return findings
    }
}
