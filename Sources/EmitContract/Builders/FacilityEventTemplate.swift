/// Facility-grain event lines for the many windows of one import, fast. Everything but the
/// device id, the window, the energy and the tier is the same for every window, so it is checked
/// once: `init` builds a probe event for each tier through `FacilityWindowEventBuilder` (the
/// validator, the identity) and keeps its bytes. Per window only the varying members are
/// written, after the same checks the validator makes on them; anything the template cannot
/// vouch for goes through the full builder, which reports the validator's findings. A test
/// keeps the bytes identical to the builder's for any input.
public struct FacilityEventTemplate: Sendable {
    public let builder: FacilityWindowEventBuilder
    public let recordedAt: Timestamp
    /// `{"kind":…,"schema_version":1,"event_id":"`
    private let head: [UInt8]
    /// `","grain":"facility","facility_id":…,"energy_joules":`
    private let afterID: [UInt8]
    /// `,"energy_provenance":"TIER","energy_source":"S","valid_from":"` per allowed tier.
    private let tierSegments: [Provenance: [UInt8]]
    /// `","recorded_at":…,"producer":{…}` and the device object's opening with its class.
    private let afterTo: [UInt8]
    private let deviceHead: [UInt8]

    /// Whether the bytes written here matched the builder's on the probe; when not (the builder
    /// changed shape), every line goes through the builder.
    public private(set) var verified: Bool

    /// The members every window shares; `deviceClass` is the class of the device that lines
    /// with a device id get. Throws the probe's findings when the shared members are invalid.
    public init(facilityID: String, region: String?, gridRegion: String?, source: EnergySource, pueApplied: Bool,
                deviceClass: DeviceClass, nodeID: String? = nil, recordedAt: Timestamp) throws(EnergyEvent.Invalid) {
        let probeWindow = TimeWindow(from: recordedAt, to: Timestamp(epochSeconds: recordedAt.epochSeconds + 60, nanoseconds: recordedAt.nanoseconds, fractionDigits: 9))
        let builder = FacilityWindowEventBuilder(
            facilityID: facilityID, region: region, gridRegion: gridRegion, source: source, window: probeWindow,
            energyJoules: 1.5, pueApplied: pueApplied, device: Device(class: deviceClass, id: "probe \"meter\" \u{1}"), nodeID: nodeID)
        self.builder = builder
        self.recordedAt = recordedAt
        var segments: [Provenance: [UInt8]] = [:]
        for tier in Provenance.allCases where builder.source.allowedTiers.contains(tier) {
            var probe = builder
            probe.provenance = tier
            _ = try probe.build(recordedAt: recordedAt)
            var s: [UInt8] = []
            Self.append(",\"energy_provenance\":", to: &s)
            JSONWriter.writeString(tier.rawValue, into: &s)
            Self.append(",\"energy_source\":", to: &s)
            JSONWriter.writeString(builder.source.rawValue, into: &s)
            Self.append(",\"valid_from\":\"", to: &s)
            segments[tier] = s
        }
        tierSegments = segments

        var h: [UInt8] = []
        Self.append("{\"kind\":", to: &h)
        JSONWriter.writeString(Contract.kind, into: &h)
        Self.append(",\"channel\":", to: &h)
        JSONWriter.writeString(Contract.channel, into: &h)
        Self.append(",\"schema_version\":", to: &h)
        JSONWriter.writeNumber(Double(Contract.schemaVersion), into: &h)
        Self.append(",\"event_id\":\"", to: &h)
        head = h

        var a: [UInt8] = []
        Self.append("\",\"grain\":", to: &a)
        JSONWriter.writeString(Grain.facility.rawValue, into: &a)
        Self.append(",\"facility_id\":", to: &a)
        JSONWriter.writeString(builder.facilityID, into: &a)
        if let region = builder.region {
            Self.append(",\"region\":", to: &a)
            JSONWriter.writeString(region, into: &a)
        }
        if let grid = builder.gridRegion {
            Self.append(",\"grid_region\":", to: &a)
            JSONWriter.writeString(grid, into: &a)
        }
        Self.append(",\"energy_joules\":", to: &a)
        afterID = a

        var t: [UInt8] = []
        Self.append("\",\"recorded_at\":", to: &t)
        JSONWriter.writeString(recordedAt.text, into: &t)
        Self.append(",\"pue_applied\":", to: &t)
        Self.append(builder.pueApplied ? "true" : "false", to: &t)
        Self.append(",\"producer\":{\"name\":", to: &t)
        let producer = Producer(nodeID: builder.nodeID)
        JSONWriter.writeString(producer.name, into: &t)
        Self.append(",\"version\":", to: &t)
        JSONWriter.writeString(producer.version, into: &t)
        if let node = producer.nodeID {
            Self.append(",\"node_id\":", to: &t)
            JSONWriter.writeString(node, into: &t)
        }
        Self.append("}", to: &t)
        afterTo = t

        var d: [UInt8] = []
        Self.append(",\"device\":{\"class\":", to: &d)
        JSONWriter.writeString((builder.device?.deviceClass ?? .utilityMeter).rawValue, into: &d)
        Self.append(",\"id\":", to: &d)
        deviceHead = d


        verified = true
        var checked = true
        for tier in tierSegments.keys {
            var probe = builder
            probe.provenance = tier
            for device in [probe.device, nil] {
                probe.device = device
                let expected = try probe.build(recordedAt: recordedAt)
                var line: [UInt8] = []
                let id = try appendLine(deviceID: device?.id, window: probeWindow, energyJoules: 1.5, provenance: tier, to: &line)
                if line != Array(expected.jsonLine.utf8) || id != expected.eventID { checked = false }
            }
        }
        verified = checked
    }

    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends one event line (no newline) to `out` and returns its event id. The device (when
    /// `deviceID` is given) has the template builder's device class.
    public func appendLine(deviceID: String?, window: TimeWindow, energyJoules: Double, provenance: Provenance,
                           to out: inout [UInt8]) throws(EnergyEvent.Invalid) -> String {
        guard verified, energyJoules.isFinite, energyJoules >= 0, window.from < window.to, deviceID?.isEmpty != true,
              let tierSegment = tierSegments[provenance] else {
            // The builder reports exactly what the validator finds.
            var full = builder
            full.provenance = provenance
            full.window = window
            full.energyJoules = energyJoules
            full.device = deviceID.map { Device(class: builder.device?.deviceClass ?? .utilityMeter, id: $0) }
            let event = try full.build(recordedAt: recordedAt)
            out.append(contentsOf: event.jsonLine.utf8)
            return event.eventID
        }
        let id = EventIdentity(grain: Grain.facility.rawValue, energySource: builder.source.rawValue, facilityID: builder.facilityID,
                               nodeID: builder.nodeID, deviceID: deviceID, validFrom: window.from.text, validTo: window.to.text).eventID
        out.append(contentsOf: head)
        out.append(contentsOf: id.utf8)
        out.append(contentsOf: afterID)
        JSONWriter.writeNumber(energyJoules, into: &out)
        out.append(contentsOf: tierSegment)
        out.append(contentsOf: window.from.text.utf8)
        Self.append("\",\"valid_to\":\"", to: &out)
        out.append(contentsOf: window.to.text.utf8)
        out.append(contentsOf: afterTo)
        if let deviceID {
            out.append(contentsOf: deviceHead)
            JSONWriter.writeString(deviceID, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
        return id
    }
}
