/// The version every event's `producer.version` carries.
public enum EmitVersion {
    public static let current = "0.1.0"
}

public struct Producer: Sendable, Equatable {
    public var name: String
    public var version: String
    public var nodeID: String?

    public init(name: String = "emit", version: String = EmitVersion.current, nodeID: String? = nil) {
        self.name = name
        self.version = version
        self.nodeID = nodeID
    }
}

public struct Device: Sendable, Hashable {
    public var deviceClass: DeviceClass
    public var id: String
    public var name: String?
    public var index: Int?

    public init(class deviceClass: DeviceClass, id: String, name: String? = nil, index: Int? = nil) {
        self.deviceClass = deviceClass
        self.id = id
        self.name = name
        self.index = index
    }
}

/// How a measured value was obtained, filled truthfully by the meter that produced it.
public struct Measurement: Sendable, Equatable {
    public var method: MeasurementMethod
    public var samples: Int
    public var intervalMilliseconds: Double
    public var coverage: Double
    public var counterWraps: Int
    public var counterResets: Int
    /// The smallest energy step the evidence can show in this window: a counter's quantum (or the
    /// step a stale counter was seen to jump by), or for integrated power the reading's quantum
    /// times the window. Nil only for events built elsewhere that do not state it.
    public var resolutionJoules: Double?

    public init(method: MeasurementMethod, samples: Int, intervalMilliseconds: Double, coverage: Double,
                counterWraps: Int = 0, counterResets: Int = 0, resolutionJoules: Double? = nil) {
        self.method = method
        self.samples = samples
        self.intervalMilliseconds = intervalMilliseconds
        self.coverage = coverage
        self.counterWraps = counterWraps
        self.counterResets = counterResets
        self.resolutionJoules = resolutionJoules
    }
}

public struct TokenCounts: Sendable, Equatable {
    public var input: Int64
    public var output: Int64
    public init(input: Int64, output: Int64) {
        self.input = input
        self.output = output
    }
}

public struct Proration: Sendable, Equatable {
    public var facilityID: String
    public var facilityEventID: String
    public var facilityEnergyJoules: Double
    public var computeShare: Double
    public var basis: ProrationBasis
}

/// A validity window `[from, to)`.
public struct TimeWindow: Sendable, Equatable {
    public var from: Timestamp
    public var to: Timestamp
    public init(from: Timestamp, to: Timestamp) {
        self.from = from
        self.to = to
    }
    public var seconds: Double { from.seconds(until: to) }
}

/// An event that satisfies the v1 contract. Only builders and `init(validating:)` make one, so
/// holding an `EnergyEvent` means holding a valid fact with a correct `event_id`.
public struct EnergyEvent: Sendable, Equatable {
    /// The event as JSON, members in the contract's reading order.
    public let json: JSONValue
    public let eventID: String
    public let grain: Grain
    public let source: EnergySource
    public let provenance: Provenance
    public let energyJoules: Double
    public let window: TimeWindow
    public let pueApplied: Bool

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let findings: [Finding]
        public var description: String { findings.map(\.description).joined(separator: "; ") }
    }

    /// Accepts a JSON event only when the validator finds nothing wrong with it.
    public init(validating json: JSONValue, validator: Validator = .standard) throws(Invalid) {
        let findings = validator.validate(json)
        guard findings.isEmpty,
              let id = json["event_id"]?.stringValue,
              let grain = json["grain"]?.stringValue.flatMap(Grain.init(rawValue:)),
              let source = json["energy_source"]?.stringValue.flatMap(EnergySource.init(rawValue:)),
              let tier = json["energy_provenance"]?.stringValue.flatMap(Provenance.init(rawValue:)),
              let energy = json["energy_joules"]?.numberValue,
              let from = json["valid_from"]?.stringValue.flatMap({ try? Timestamp(contract: $0) }),
              let to = json["valid_to"]?.stringValue.flatMap({ try? Timestamp(contract: $0) }),
              let pue = json["pue_applied"]?.boolValue
        else { throw Invalid(findings: findings) }
        self.json = json
        self.eventID = id
        self.grain = grain
        self.source = source
        self.provenance = tier
        self.energyJoules = energy
        self.window = TimeWindow(from: from, to: to)
        self.pueApplied = pue
    }

    /// One JSON Lines record (no trailing newline).
    public var jsonLine: String { JSONWriter.line(json) }

    public var computeAssignmentRunID: String? { json["compute_assignment_run_id"]?.stringValue }
    public var facilityID: String? { json["facility_id"]?.stringValue }
    public var deviceID: String? { json["device"]?["id"]?.stringValue }
}
