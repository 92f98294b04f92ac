/// The closed vocabularies of the v1 contract (CONTRACT.md). Raw values are the wire strings.

public enum Contract {
    public static let kind = "emit:energy_meter_recorded"
    public static let channel = "emit"
    public static let schemaVersion = 1
    /// Relative tolerance for the derived-energy rules: |actual - expected| <= 1e-9 × max(1, expected).
    public static let energyTolerance = 1e-9
    public static let maximumLabels = 32
    public static let maximumLabelValueLength = 256
    public static let maximumIdentifierLength = 256

    /// Why `id` cannot be a `compute_assignment_run_id` (empty, too long, control characters),
    /// or nil: the validator's rule, for whoever wants to check before metering.
    public static func runIDProblem(_ id: String) -> String? {
        let length = id.unicodeScalars.count
        if length == 0 { return "must not be empty" }
        if length > maximumIdentifierLength { return "has \(length) characters; at most \(maximumIdentifierLength) are allowed" }
        if id.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) { return "must not contain control characters" }
        return nil
    }
}

public enum Grain: String, Sendable, CaseIterable, Codable {
    case run, facility
}

public enum Provenance: String, Sendable, CaseIterable, Codable {
    case measured, modeled, estimated
}

public enum EnergySource: String, Sendable, CaseIterable, Codable {
    case nvml, dcgm, rapl, ipmi, redfish, pdu, ups
    case smartMeter = "smart_meter"
    case tokenModel = "token_model"
    case facilityProration = "facility_proration"

    public var allowedTiers: Set<Provenance> {
        switch self {
        case .tokenModel: return [.modeled]
        case .facilityProration: return [.estimated]
        default: return [.measured, .estimated]
        }
    }

    public var allowedGrains: Set<Grain> {
        switch self {
        case .nvml, .dcgm, .rapl, .tokenModel, .facilityProration: return [.run]
        case .ipmi, .redfish, .pdu, .ups: return [.run, .facility]
        case .smartMeter: return [.facility]
        }
    }

    public func allows(_ tier: Provenance) -> Bool {
        switch self {
        case .tokenModel: return tier == .modeled
        case .facilityProration: return tier == .estimated
        default: return tier != .modeled
        }
    }

    public func allows(_ grain: Grain) -> Bool {
        switch self {
        case .nvml, .dcgm, .rapl, .tokenModel, .facilityProration: return grain == .run
        case .ipmi, .redfish, .pdu, .ups: return true
        case .smartMeter: return grain == .facility
        }
    }

    /// A physical meter: at run grain it needs a device, a node id and `pue_applied: false`.
    public var isPhysical: Bool { self != .tokenModel && self != .facilityProration }
}

public enum DeviceClass: String, Sendable, CaseIterable, Codable {
    case gpu
    case cpuPackage = "cpu_package"
    case dram
    case cpuCore = "cpu_core"
    case uncore, psys, node, chassis, outlet, ups
    case pduInlet = "pdu_inlet"
    case pduOutlet = "pdu_outlet"
    case utilityMeter = "utility_meter"

    public static let runGrain: Set<DeviceClass> = [.gpu, .cpuPackage, .dram, .cpuCore, .uncore, .psys, .node, .chassis, .outlet, .ups]
    public static let facilityGrain: Set<DeviceClass> = [.pduInlet, .pduOutlet, .ups, .utilityMeter, .chassis, .node]

    public static func allowed(at grain: Grain) -> Set<DeviceClass> {
        grain == .run ? runGrain : facilityGrain
    }

    public func isAllowed(at grain: Grain) -> Bool {
        switch self {
        case .ups, .chassis, .node: return true
        case .pduInlet, .pduOutlet, .utilityMeter: return grain == .facility
        default: return grain == .run
        }
    }
}

public enum MeasurementMethod: String, Sendable, CaseIterable, Codable {
    case counterDelta = "counter_delta"
    case powerIntegration = "power_integration"
}

public enum CoefficientScope: String, Sendable, CaseIterable, Codable {
    case accelerator, system, facility
}

public enum Confidence: String, Sendable, CaseIterable, Codable {
    case low, medium, high
}

public enum ProrationBasis: String, Sendable, CaseIterable, Codable {
    case declared
    case gpuSeconds = "gpu_seconds"
    case cpuSeconds = "cpu_seconds"
    case nodeSeconds = "node_seconds"
    case itEnergy = "it_energy"
}

/// The stable validation error codes. Scripts match on these strings; never rename one.
public enum ErrorCode: String, Sendable, CaseIterable, Codable, Comparable {
    case invalidJSON = "invalid_json"
    case missingField = "missing_field"
    case missingRunID = "missing_run_id"
    case unknownField = "unknown_field"
    case wrongType = "wrong_type"
    case badKind = "bad_kind"
    case badChannel = "bad_channel"
    case badSchemaVersion = "bad_schema_version"
    case badGrain = "bad_grain"
    case badSource = "bad_source"
    case badProvenance = "bad_provenance"
    case tierSourceMismatch = "tier_source_mismatch"
    case grainSourceMismatch = "grain_source_mismatch"
    case badEnergy = "bad_energy"
    case badTimestamp = "bad_timestamp"
    case badWindow = "bad_window"
    case facilityFields = "facility_fields"
    case badDevice = "bad_device"
    case badMeasurement = "bad_measurement"
    case badTokens = "bad_tokens"
    case badCoefficient = "bad_coefficient"
    case energyMismatch = "energy_mismatch"
    case badProration = "bad_proration"
    case pueMismatch = "pue_mismatch"
    case brandName = "brand_name"
    case badLabel = "bad_label"
    case forbiddenLabel = "forbidden_label"
    case eventIDMismatch = "event_id_mismatch"

    public static func < (lhs: ErrorCode, rhs: ErrorCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Label-key tokens that name a concept the receiving cloud owns (observation-only rule).
public enum ObservationOnly {
    public static let forbiddenLabelTokens: Set<String> = [
        "carbon", "co2", "co2e", "emission", "emissions", "cost", "costs", "price", "pricing",
        "billing", "bill", "invoice", "margin", "cogs", "attribution", "tariff", "revenue",
    ]

    /// The first forbidden token of a label key split on `_`, `.` and `-`, if any.
    public static func forbiddenToken(inLabelKey key: String) -> String? {
        for token in key.lowercased().split(whereSeparator: { $0 == "_" || $0 == "." || $0 == "-" })
        where forbiddenLabelTokens.contains(String(token)) {
            return String(token)
        }
        return nil
    }
}
