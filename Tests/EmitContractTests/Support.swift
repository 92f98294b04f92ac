@testable import EmitContract

/// Valid base events from the builders, and JSON surgery for the rule tests.
enum Sample {
    static func time(_ text: String) -> Timestamp {
        do { return try Timestamp(contract: text) } catch { fatalError("bad test timestamp \(text)") }
    }

    static let window = TimeWindow(from: time("2026-11-27T09:00:00Z"), to: time("2026-11-27T09:15:00Z"))
    static let recorded = time("2026-11-27T09:15:00.5Z")
    static let coefficient = Coefficient(
        profileID: "managed-balanced-v1", modelFamily: "general-text", modelTier: "balanced",
        joulesPerInputToken: 0.066, joulesPerOutputToken: 0.33, scope: .system, confidence: .medium,
        citation: "Chung et al. 2025, arXiv:2505.06371")

    static func gpu() throws -> EnergyEvent {
        try RunMeterEventBuilder(
            runID: "run-1", source: .nvml, device: Device(class: .gpu, id: "GPU-1", name: "Test GPU", index: 0),
            nodeID: "node-1", window: window, energyJoules: 1234.5,
            measurement: Measurement(method: .counterDelta, samples: 10, intervalMilliseconds: 100, coverage: 1)
        ).build(recordedAt: recorded)
    }

    static func token(scope: CoefficientScope = .system) throws -> EnergyEvent {
        var c = coefficient
        c.scope = scope
        return try TokenModelEventBuilder(runID: "run-2", window: window, tokens: TokenCounts(input: 1000, output: 200), coefficient: c)
            .build(recordedAt: recorded)
    }

    static func facility(pue: Bool = false) throws -> EnergyEvent {
        try FacilityWindowEventBuilder(
            facilityID: "campus-1", region: "eu-central", source: .pdu, window: window, energyJoules: 3_600_000,
            pueApplied: pue, device: Device(class: .pduInlet, id: "pdu-1/inlet-1")
        ).build(recordedAt: recorded)
    }

    static func proration() throws -> EnergyEvent {
        try FacilityProrationEventBuilder(facilityEvent: try facility(pue: true), runID: "run-3", computeShare: 0.25, basis: .gpuSeconds)
            .build(recordedAt: recorded)
    }
}

extension JSONValue {
    /// Sets (or with nil removes) the member at a dotted path, creating nothing on the way.
    func setting(_ path: String, _ newValue: JSONValue?) -> JSONValue {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        guard case var .object(members) = self else { return self }
        if parts.count == 2 {
            if let i = members.firstIndex(where: { $0.0 == parts[0] }) {
                members[i].1 = members[i].1.setting(parts[1], newValue)
            }
            return .object(members)
        }
        if let i = members.firstIndex(where: { $0.0 == path }) {
            if let newValue { members[i].1 = newValue } else { members.remove(at: i) }
        } else if let newValue {
            members.append((path, newValue))
        }
        return .object(members)
    }

    /// Recomputes `event_id` so that a test isolates the rule it breaks.
    func rehashed() -> JSONValue {
        guard let identity = EventIdentity(event: self) else { return self }
        return setting("event_id", .string(identity.eventID))
    }
}

func codes(_ event: JSONValue) -> Set<String> {
    Set(Validator.standard.validate(event).map(\.code.rawValue))
}
