/// Assembles the JSON of an event from typed parts, computes its `event_id` and runs the
/// validator, so every builder can only hand out valid events.
struct EventAssembly {
    var grain: Grain
    var source: EnergySource
    var provenance: Provenance
    var energyJoules: Double
    var window: TimeWindow
    var recordedAt: Timestamp
    var pueApplied: Bool
    var producer: Producer
    var device: Device?
    var labels: [String: String] = [:]
    var computeAssignmentRunID: String?
    var facilityID: String?
    var region: String?
    var gridRegion: String?
    var measurement: Measurement?
    var tokens: TokenCounts?
    var coefficient: Coefficient?
    var proration: Proration?

    func build() throws(EnergyEvent.Invalid) -> EnergyEvent {
        let identity = EventIdentity(
            grain: grain.rawValue, energySource: source.rawValue, computeAssignmentRunID: computeAssignmentRunID,
            facilityID: facilityID, nodeID: producer.nodeID, deviceID: device?.id,
            validFrom: window.from.text, validTo: window.to.text)
        var m: [(String, JSONValue)] = [
            ("kind", .string(Contract.kind)),
            ("channel", .string(Contract.channel)),
            ("schema_version", .number(Double(Contract.schemaVersion))),
            ("event_id", .string(identity.eventID)),
            ("grain", .string(grain.rawValue)),
        ]
        if let computeAssignmentRunID { m.append(("compute_assignment_run_id", .string(computeAssignmentRunID))) }
        if let facilityID { m.append(("facility_id", .string(facilityID))) }
        if let region { m.append(("region", .string(region))) }
        if let gridRegion { m.append(("grid_region", .string(gridRegion))) }
        m.append(("energy_joules", .number(energyJoules)))
        m.append(("energy_provenance", .string(provenance.rawValue)))
        m.append(("energy_source", .string(source.rawValue)))
        m.append(("valid_from", .string(window.from.text)))
        m.append(("valid_to", .string(window.to.text)))
        m.append(("recorded_at", .string(recordedAt.text)))
        m.append(("pue_applied", .bool(pueApplied)))
        var p: [(String, JSONValue)] = [("name", .string(producer.name)), ("version", .string(producer.version))]
        if let node = producer.nodeID { p.append(("node_id", .string(node))) }
        m.append(("producer", .object(p)))
        if let device {
            var d: [(String, JSONValue)] = [("class", .string(device.deviceClass.rawValue)), ("id", .string(device.id))]
            if let name = device.name { d.append(("name", .string(name))) }
            if let index = device.index { d.append(("index", .number(Double(index)))) }
            m.append(("device", .object(d)))
        }
        if let measurement {
            var fields: [(String, JSONValue)] = [
                ("method", .string(measurement.method.rawValue)),
                ("samples", .number(Double(measurement.samples))),
                ("interval_ms", .number(measurement.intervalMilliseconds)),
                ("coverage", .number(measurement.coverage)),
                ("counter_wraps", .number(Double(measurement.counterWraps))),
                ("counter_resets", .number(Double(measurement.counterResets))),
            ]
            if let resolution = measurement.resolutionJoules { fields.append(("resolution_joules", .number(resolution))) }
            m.append(("measurement", .object(fields)))
        }
        if let tokens {
            m.append(("tokens", .object([("input", .number(Double(tokens.input))), ("output", .number(Double(tokens.output)))])))
        }
        if let coefficient { m.append(("coefficient", coefficient.jsonValue)) }
        if let proration {
            m.append(("proration", .object([
                ("facility_id", .string(proration.facilityID)),
                ("facility_event_id", .string(proration.facilityEventID)),
                ("facility_energy_joules", .number(proration.facilityEnergyJoules)),
                ("compute_share", .number(proration.computeShare)),
                ("basis", .string(proration.basis.rawValue)),
            ])))
        }
        if !labels.isEmpty {
            m.append(("labels", .object(labels.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) })))
        }
        return try EnergyEvent(validating: .object(m))
    }
}
