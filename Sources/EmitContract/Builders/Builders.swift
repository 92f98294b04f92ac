/// Typed builders, one per grain and kind of source. Each computes what the contract derives
/// (event id, modeled energy, prorated energy, `pue_applied` where a rule fixes it) and throws
/// `EnergyEvent.Invalid` with every finding rather than hand out an invalid event.

/// A physical meter beside a run (nvml, dcgm, rapl, ipmi, redfish, pdu, ups): raw IT-load joules,
/// so `pue_applied` is always false. `measured` needs the measurement that backs it.
public struct RunMeterEventBuilder: Sendable {
    public var runID: String
    public var source: EnergySource
    public var device: Device
    public var nodeID: String
    public var window: TimeWindow
    public var energyJoules: Double
    public var measurement: Measurement?
    public var provenance: Provenance
    public var labels: [String: String]

    public init(runID: String, source: EnergySource, device: Device, nodeID: String, window: TimeWindow,
                energyJoules: Double, measurement: Measurement?, provenance: Provenance = .measured,
                labels: [String: String] = [:]) {
        self.runID = runID
        self.source = source
        self.device = device
        self.nodeID = nodeID
        self.window = window
        self.energyJoules = energyJoules
        self.measurement = measurement
        self.provenance = provenance
        self.labels = labels
    }

    public func build(recordedAt: Timestamp) throws(EnergyEvent.Invalid) -> EnergyEvent {
        try EventAssembly(
            grain: .run, source: source, provenance: provenance, energyJoules: energyJoules, window: window,
            recordedAt: recordedAt, pueApplied: false, producer: Producer(nodeID: nodeID), device: device,
            labels: labels, computeAssignmentRunID: runID, measurement: measurement
        ).build()
    }
}

/// Modeled energy from token counts and a cited coefficient (tier `modeled`):
/// energy = input × J/input + output × J/output; `pue_applied` true only at facility scope.
public struct TokenModelEventBuilder: Sendable {
    public var runID: String
    public var window: TimeWindow
    public var tokens: TokenCounts
    public var coefficient: Coefficient
    public var nodeID: String?
    public var labels: [String: String]

    public init(runID: String, window: TimeWindow, tokens: TokenCounts, coefficient: Coefficient,
                nodeID: String? = nil, labels: [String: String] = [:]) {
        self.runID = runID
        self.window = window
        self.tokens = tokens
        self.coefficient = coefficient
        self.nodeID = nodeID
        self.labels = labels
    }

    public var energyJoules: Double {
        Double(tokens.input) * coefficient.joulesPerInputToken + Double(tokens.output) * coefficient.joulesPerOutputToken
    }

    public func build(recordedAt: Timestamp) throws(EnergyEvent.Invalid) -> EnergyEvent {
        try EventAssembly(
            grain: .run, source: .tokenModel, provenance: .modeled, energyJoules: energyJoules, window: window,
            recordedAt: recordedAt, pueApplied: coefficient.pueApplied, producer: Producer(nodeID: nodeID),
            labels: labels, computeAssignmentRunID: runID, tokens: tokens, coefficient: coefficient
        ).build()
    }
}

/// An operator's facility window (Campus Pack, `campus:facility_energy`): `pue_applied` as the
/// operator declares it, never defaulted.
public struct FacilityWindowEventBuilder: Sendable {
    public var facilityID: String
    public var region: String?
    public var gridRegion: String?
    public var source: EnergySource
    public var provenance: Provenance
    public var window: TimeWindow
    public var energyJoules: Double
    public var pueApplied: Bool
    public var device: Device?
    public var measurement: Measurement?
    public var nodeID: String?
    public var labels: [String: String]

    public init(facilityID: String, region: String? = nil, gridRegion: String? = nil, source: EnergySource,
                provenance: Provenance = .measured, window: TimeWindow, energyJoules: Double, pueApplied: Bool,
                device: Device? = nil, measurement: Measurement? = nil, nodeID: String? = nil,
                labels: [String: String] = [:]) {
        self.facilityID = facilityID
        self.region = region
        self.gridRegion = gridRegion
        self.source = source
        self.provenance = provenance
        self.window = window
        self.energyJoules = energyJoules
        self.pueApplied = pueApplied
        self.device = device
        self.measurement = measurement
        self.nodeID = nodeID
        self.labels = labels
    }

    public func build(recordedAt: Timestamp) throws(EnergyEvent.Invalid) -> EnergyEvent {
        try EventAssembly(
            grain: .facility, source: source, provenance: provenance, energyJoules: energyJoules, window: window,
            recordedAt: recordedAt, pueApplied: pueApplied, producer: Producer(nodeID: nodeID), device: device,
            labels: labels, facilityID: facilityID, region: region, gridRegion: gridRegion, measurement: measurement
        ).build()
    }
}

/// A run's share of one facility window (tier `estimated`): energy = facility energy × share,
/// the facility window and `pue_applied` copied, pointing back at the facility event.
public struct FacilityProrationEventBuilder: Sendable {
    public var facilityEvent: EnergyEvent
    public var runID: String
    public var computeShare: Double
    public var basis: ProrationBasis
    public var nodeID: String?
    public var labels: [String: String]

    public init(facilityEvent: EnergyEvent, runID: String, computeShare: Double, basis: ProrationBasis = .declared,
                nodeID: String? = nil, labels: [String: String] = [:]) {
        self.facilityEvent = facilityEvent
        self.runID = runID
        self.computeShare = computeShare
        self.basis = basis
        self.nodeID = nodeID
        self.labels = labels
    }

    public func build(recordedAt: Timestamp) throws(EnergyEvent.Invalid) -> EnergyEvent {
        guard facilityEvent.grain == .facility, let facilityID = facilityEvent.facilityID else {
            throw EnergyEvent.Invalid(findings: [Finding(.badProration, "proration.facility_event_id",
                "event \(facilityEvent.eventID) is a \(facilityEvent.grain.rawValue)-grain event; only a facility-grain event can be prorated")])
        }
        let proration = Proration(
            facilityID: facilityID, facilityEventID: facilityEvent.eventID,
            facilityEnergyJoules: facilityEvent.energyJoules, computeShare: computeShare, basis: basis)
        return try EventAssembly(
            grain: .run, source: .facilityProration, provenance: .estimated,
            energyJoules: facilityEvent.energyJoules * computeShare, window: facilityEvent.window,
            recordedAt: recordedAt, pueApplied: facilityEvent.pueApplied, producer: Producer(nodeID: nodeID),
            labels: labels, computeAssignmentRunID: runID, proration: proration
        ).build()
    }
}
