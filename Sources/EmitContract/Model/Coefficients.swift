/// A modeled-energy coefficient: what one input and one output token cost, over which scope.
public struct Coefficient: Sendable, Equatable {
    public var profileID: String
    public var modelFamily: String
    public var modelTier: String
    public var joulesPerInputToken: Double
    public var joulesPerOutputToken: Double
    public var scope: CoefficientScope
    public var confidence: Confidence
    public var citation: String

    public init(profileID: String, modelFamily: String, modelTier: String, joulesPerInputToken: Double,
                joulesPerOutputToken: Double, scope: CoefficientScope, confidence: Confidence, citation: String) {
        self.profileID = profileID
        self.modelFamily = modelFamily
        self.modelTier = modelTier
        self.joulesPerInputToken = joulesPerInputToken
        self.joulesPerOutputToken = joulesPerOutputToken
        self.scope = scope
        self.confidence = confidence
        self.citation = citation
    }

    /// `pue_applied` for energy modeled with this coefficient: true only at facility scope.
    public var pueApplied: Bool { scope == .facility }

    public var jsonValue: JSONValue {
        .object([
            ("profile_id", .string(profileID)),
            ("model_family", .string(modelFamily)),
            ("model_tier", .string(modelTier)),
            ("joules_per_input_token", .number(joulesPerInputToken)),
            ("joules_per_output_token", .number(joulesPerOutputToken)),
            ("scope", .string(scope.rawValue)),
            ("confidence", .string(confidence.rawValue)),
            ("citation", .string(citation)),
        ])
    }
}

/// The coefficient table: the shipped one is compiled in from `coefficients/coefficients.json`;
/// `--coefficients FILE` loads another with the same shape.
public struct CoefficientTable: Sendable {
    public let version: String
    public let profiles: [Coefficient]

    public static func standard() throws -> CoefficientTable {
        try CoefficientTable(parsing: EmbeddedData.coefficientTableJSON, source: "coefficients/coefficients.json (built in)")
    }

    public func profile(_ id: String) -> Coefficient? { profiles.first { $0.profileID == id } }

    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public let source: String
        public let problems: [String]
        public var description: String { problems.map { "\(source): \($0)" }.joined(separator: "\n") }
    }

    /// Parses and checks a table: every profile must make a valid `coefficient` object
    /// (the same rules the validator applies to events), and ids must be unique.
    public init(parsing text: String, source: String) throws(LoadError) {
        let root: JSONValue
        do { root = try JSONParser.parse(text) } catch {
            throw LoadError(source: source, problems: ["invalid_json: \(error)"])
        }
        var problems: [String] = []
        guard case .object = root else { throw LoadError(source: source, problems: ["the table must be a JSON object"]) }
        for (name, _) in root.objectMembers where !["table_version", "description", "profiles"].contains(name) {
            problems.append("unknown_field: \(name) is not a member of a coefficient table")
        }
        let version = root["table_version"]?.stringValue ?? ""
        if version.isEmpty { problems.append("missing_field: table_version (a non-empty string) is required") }
        guard case let .array(entries)? = root["profiles"] else {
            throw LoadError(source: source, problems: problems + ["missing_field: profiles (an array) is required"])
        }
        var profiles: [Coefficient] = []
        var seen = Set<String>()
        for (index, entry) in entries.enumerated() {
            let findings = Validator.standard.validateCoefficient(entry, path: "profiles[\(index)]")
            if !findings.isEmpty {
                problems += findings.map { "\($0.code.rawValue): \($0.path): \($0.message)" }
                continue
            }
            guard let coefficient = Coefficient(validated: entry) else { continue }
            if !seen.insert(coefficient.profileID).inserted {
                problems.append("bad_coefficient: profiles[\(index)].profile_id: \(coefficient.profileID) appears twice")
            }
            profiles.append(coefficient)
        }
        if entries.isEmpty { problems.append("bad_coefficient: profiles: the table has no profiles") }
        guard problems.isEmpty else { throw LoadError(source: source, problems: problems) }
        self.version = version
        self.profiles = profiles
    }
}

extension Coefficient {
    /// Reads a coefficient object the validator has accepted.
    init?(validated value: JSONValue) {
        guard let profileID = value["profile_id"]?.stringValue,
              let family = value["model_family"]?.stringValue,
              let tier = value["model_tier"]?.stringValue,
              let input = value["joules_per_input_token"]?.numberValue,
              let output = value["joules_per_output_token"]?.numberValue,
              let scope = value["scope"]?.stringValue.flatMap(CoefficientScope.init(rawValue:)),
              let confidence = value["confidence"]?.stringValue.flatMap(Confidence.init(rawValue:)),
              let citation = value["citation"]?.stringValue
        else { return nil }
        self.init(profileID: profileID, modelFamily: family, modelTier: tier, joulesPerInputToken: input,
                  joulesPerOutputToken: output, scope: scope, confidence: confidence, citation: citation)
    }
}

extension JSONValue {
    /// The members of an object, or none.
    public var objectMembers: [(String, JSONValue)] {
        if case let .object(members) = self { return members }
        return []
    }
}
