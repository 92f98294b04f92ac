/// The v1 contract validator. It reports every violation of an event (not only the first),
/// each with its stable code, the JSON path and an actionable message.
public struct Validator: Sendable {
    public let brands: BrandDenylist

    public static let standard = Validator(brands: .standard)

    public init(brands: BrandDenylist) { self.brands = brands }

    /// Parses one JSON text (a JSONL line or a file's event) strictly, then validates it.
    public func validate(jsonText bytes: UnsafeBufferPointer<UInt8>) -> [Finding] {
        do {
            return validate(try JSONParser.parse(bytes))
        } catch {
            return [Finding(.invalidJSON, "$", error.description)]
        }
    }

    /// Validates one JSON text and returns its `event_id` when the event is valid, so a caller
    /// that stores valid events needs no second parse.
    public func validateKeepingID(jsonText bytes: UnsafeBufferPointer<UInt8>) -> (findings: [Finding], eventID: String?) {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            return ([Finding(.invalidJSON, "$", error.description)], nil)
        }
        let findings = validate(value)
        return (findings, value["event_id"]?.stringValue)
    }

    /// The findings of one record of an event file, with its line number or array position.
    public func findings(of record: EventRecord) -> (position: Int, findings: [Finding]) {
        switch record {
        case let .line(number, text): return (number, validate(jsonText: text))
        case let .element(position, value): return (position, validate(value))
        case let .unreadable(position, message): return (position, [Finding(.invalidJSON, "$", message)])
        }
    }

    public func validate(jsonText text: String) -> [Finding] {
        Array(text.utf8).withUnsafeBufferPointer { validate(jsonText: $0) }
    }

    public func validate(_ event: JSONValue) -> [Finding] {
        guard case let .object(members) = event else {
            return [Finding(.invalidJSON, "$", "an event must be a JSON object, not \(event.typeName == "array" ? "an array" : "a " + event.typeName)")]
        }
        var check = EventCheck(brands: brands)
        check.run(members)
        return check.findings
    }

    /// The rules of a `coefficient` object, shared with the coefficient table loader.
    public func validateCoefficient(_ value: JSONValue, path: String) -> [Finding] {
        var check = EventCheck(brands: brands)
        _ = check.coefficient(value, path: path)
        return check.findings
    }
}

/// The member names of each contract object, as enums named exactly like the wire members, so
/// that an event costs one hash lookup per member and every later access is an array index.
private protocol Field: CaseIterable, Hashable, RawRepresentable where RawValue == Int, AllCases == [Self] {
    static var byName: [String: Self] { get }
    static var names: [String] { get }
}

private extension Field {
    var name: String { Self.names[rawValue] }
    static func table() -> [String: Self] { Dictionary(uniqueKeysWithValues: allCases.map { ("\($0)", $0) }) }
    static func nameList() -> [String] { allCases.map { "\($0)" } }
}

private enum TopField: Int, Field {
    case kind, channel, schema_version, event_id, grain, energy_joules, energy_provenance, energy_source
    case valid_from, valid_to, recorded_at, pue_applied, producer, device, labels, compute_assignment_run_id
    case facility_id, region, grid_region, measurement, tokens, coefficient, proration
    static let byName = table()
    static let names = nameList()
    static let required: [TopField] = [.kind, .channel, .schema_version, .event_id, .grain, .energy_joules,
        .energy_provenance, .energy_source, .valid_from, .valid_to, .recorded_at, .pue_applied, .producer]
}

private enum ProducerField: Int, Field {
    case name, version, node_id
    static let byName = table()
    static let names = nameList()
}

private enum DeviceField: Int, Field {
    case `class`, id, name, index
    static let byName = table()
    static let names = nameList()
}

private enum MeasurementField: Int, Field {
    case method, samples, interval_ms, coverage, counter_wraps, counter_resets, resolution_joules
    static let byName = table()
    static let names = nameList()
}

private enum TokensField: Int, Field {
    case input, output
    static let byName = table()
    static let names = nameList()
}

private enum CoefficientField: Int, Field {
    case profile_id, model_family, model_tier, joules_per_input_token, joules_per_output_token, scope, confidence, citation
    static let byName = table()
    static let names = nameList()
}

private enum ProrationField: Int, Field {
    case facility_id, facility_event_id, facility_energy_joules, compute_share, basis
    static let byName = table()
    static let names = nameList()
}

/// An object's members by field.
private struct Slots<F: Field> {
    var values: [JSONValue?] = Array(repeating: nil, count: F.allCases.count)
    subscript(_ field: F) -> JSONValue? {
        get { values[field.rawValue] }
        set { values[field.rawValue] = newValue }
    }
}

/// The state of one event's validation: the members found, then the rules over them.
private struct EventCheck {
    let brands: BrandDenylist
    var findings: [Finding] = []

    init(brands: BrandDenylist) { self.brands = brands }

    mutating func add(_ code: ErrorCode, _ path: String, _ message: String) {
        findings.append(Finding(code, path, message))
    }

    // MARK: typed access

    mutating func string(_ value: JSONValue?, _ path: String) -> String? {
        guard let value else { return nil }
        if case let .string(s) = value { return s }
        add(.wrongType, path, "must be a string, not \(article(value.typeName))")
        return nil
    }

    mutating func number(_ value: JSONValue?, _ path: String) -> Double? {
        guard let value else { return nil }
        if case let .number(n) = value { return n }
        add(.wrongType, path, "must be a number, not \(article(value.typeName))")
        return nil
    }

    mutating func integer(_ value: JSONValue?, _ path: String) -> Int64? {
        guard let value else { return nil }
        if let i = value.integerValue { return i }
        add(.wrongType, path, "must be an integer, not \(value.typeName == "number" ? "a number with a fraction" : article(value.typeName))")
        return nil
    }

    mutating func bool(_ value: JSONValue?, _ path: String) -> Bool? {
        guard let value else { return nil }
        if case let .bool(b) = value { return b }
        add(.wrongType, path, "must be true or false, not \(article(value.typeName))")
        return nil
    }

    mutating func object(_ value: JSONValue?, _ path: String) -> [(String, JSONValue)]? {
        guard let value else { return nil }
        if case let .object(m) = value { return m }
        add(.wrongType, path, "must be an object, not \(article(value.typeName))")
        return nil
    }

    func article(_ typeName: String) -> String {
        typeName == "array" || typeName == "object" || typeName == "integer" ? "an \(typeName)" : "a \(typeName)"
    }

    /// Splits an object's members into the named slots, reporting unknown and missing ones.
    mutating func members<F: Field>(_ members: [(String, JSONValue)], path: String, required: [F]) -> Slots<F> {
        var slots = Slots<F>()
        for (name, value) in members {
            if let field = F.byName[name] {
                slots[field] = value
            } else {
                add(.unknownField, join(path, name), "\"\(name)\" is not a member of \(path.isEmpty ? "an event" : path) in contract v1")
            }
        }
        for field in required where slots[field] == nil {
            add(.missingField, join(path, field.name), "required member \"\(field.name)\" is missing")
        }
        return slots
    }

    func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    mutating func checkBrand(_ text: String, _ path: String) {
        if let token = brands.firstMatch(in: text) {
            add(.brandName, path, "contains the provider brand \"\(token)\"; use an opaque, brand-free name")
        }
    }

    // MARK: the event

    mutating func run(_ eventMembers: [(String, JSONValue)]) {
        let m = members(eventMembers, path: "", required: TopField.required)

        let kind = string(m[.kind], "kind")
        if let kind, kind != Contract.kind { add(.badKind, "kind", "must be \"\(Contract.kind)\", not \"\(kind)\"") }
        if let channel = string(m[.channel], "channel"), channel != Contract.channel {
            add(.badChannel, "channel", "must be \"\(Contract.channel)\", not \"\(channel)\"")
        }
        if let version = integer(m[.schema_version], "schema_version"), version != Int64(Contract.schemaVersion) {
            add(.badSchemaVersion, "schema_version", "must be \(Contract.schemaVersion), not \(version)")
        }
        var grain: Grain?
        if let g = string(m[.grain], "grain") {
            grain = Grain(rawValue: g)
            if grain == nil { add(.badGrain, "grain", "must be \"run\" or \"facility\", not \"\(g)\"") }
        }
        let energy = number(m[.energy_joules], "energy_joules")
        if let energy {
            if !energy.isFinite { add(.badEnergy, "energy_joules", "must be a finite number") }
            else if energy < 0 { add(.badEnergy, "energy_joules", "must be >= 0 joules, got \(JSONWriter.formatNumber(energy))") }
        }
        var tier: Provenance?
        if let t = string(m[.energy_provenance], "energy_provenance") {
            tier = Provenance(rawValue: t)
            if tier == nil { add(.badProvenance, "energy_provenance", "must be one of measured, modeled, estimated; not \"\(t)\"") }
        }
        var source: EnergySource?
        if let s = string(m[.energy_source], "energy_source") {
            source = EnergySource(rawValue: s)
            if source == nil {
                add(.badSource, "energy_source", "\"\(s)\" is not in the source vocabulary (\(EnergySource.allCases.map(\.rawValue).joined(separator: " ")))")
            }
        }
        if let source, let tier, !source.allows(tier) {
            add(.tierSourceMismatch, "energy_provenance", "source \(source.rawValue) cannot be \(tier.rawValue); allowed: \(source.allowedTiers.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        if let source, let grain, !source.allows(grain) {
            add(.grainSourceMismatch, "energy_source", "source \(source.rawValue) is not allowed at \(grain.rawValue) grain; allowed: \(source.allowedGrains.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        let from = timestamp(m[.valid_from], "valid_from")
        let to = timestamp(m[.valid_to], "valid_to")
        _ = timestamp(m[.recorded_at], "recorded_at")
        if let from, let to, !(from < to) {
            add(.badWindow, "valid_to", "must be later than valid_from (\(from.text) .. \(to.text))")
        }
        let pue = bool(m[.pue_applied], "pue_applied")

        if let producer = object(m[.producer], "producer") {
            let p: Slots<ProducerField> = members(producer, path: "producer", required: [.name, .version])
            if let name = string(p[.name], "producer.name") {
                if name.isEmpty { add(.wrongType, "producer.name", "must be a non-empty string") }
                checkBrand(name, "producer.name")
            }
            _ = string(p[.version], "producer.version")
            _ = string(p[.node_id], "producer.node_id")
            if let grain, let source, grain == .run, source.isPhysical, p[.node_id] == nil {
                add(.missingField, "producer.node_id", "required for \(source.rawValue) events at run grain: the node the meter ran on")
            }
        }

        device(m[.device], grain: grain, source: source)
        labels(m[.labels])

        switch grain {
        case .run?:
            runGrain(m, source: source, tier: tier, energy: energy, pue: pue)
        case .facility?:
            facilityGrain(m)
        case nil:
            break
        }
        if let measurement = m[.measurement], grain != nil { self.measurement(measurement) }
        eventID(m[.event_id], slots: m)
    }

    mutating func timestamp(_ value: JSONValue?, _ path: String) -> Timestamp? {
        guard let text = string(value, path) else { return nil }
        do {
            return try Timestamp(contract: text)
        } catch {
            add(.badTimestamp, path, error.description)
            return nil
        }
    }

    mutating func device(_ value: JSONValue?, grain: Grain?, source: EnergySource?) {
        guard let value else {
            if grain == .run, let source, source.isPhysical {
                add(.badDevice, "device", "required for \(source.rawValue) events at run grain: which device was metered")
            }
            return
        }
        guard let d = object(value, "device") else { return }
        let slots: Slots<DeviceField> = members(d, path: "device", required: [.class, .id])
        if let cls = string(slots[.class], "device.class"), let grain {
            if DeviceClass(rawValue: cls)?.isAllowed(at: grain) != true {
                let allowed = DeviceClass.allowed(at: grain)
                add(.badDevice, "device.class", "\"\(cls)\" is not a device class at \(grain.rawValue) grain; allowed: \(allowed.map(\.rawValue).sorted().joined(separator: ", "))")
            }
        }
        if let id = string(slots[.id], "device.id"), id.isEmpty { add(.badDevice, "device.id", "must not be empty") }
        _ = string(slots[.name], "device.name")
        if let index = integer(slots[.index], "device.index"), index < 0 {
            add(.badDevice, "device.index", "must be >= 0, got \(index)")
        }
    }

    mutating func labels(_ value: JSONValue?) {
        guard let value, let pairs = object(value, "labels") else { return }
        if pairs.count > Contract.maximumLabels {
            add(.badLabel, "labels", "has \(pairs.count) labels; at most \(Contract.maximumLabels) are allowed")
        }
        for (key, labelValue) in pairs {
            let path = "labels." + key
            if !Self.isLabelKey(key) {
                add(.badLabel, path, "key must match ^[a-z][a-z0-9_.-]{0,62}$")
            }
            if let token = ObservationOnly.forbiddenToken(inLabelKey: key) {
                add(.forbiddenLabel, path, "\"\(token)\" names a concept the receiving cloud owns; emit labels carry observations only")
            }
            checkBrand(key, path)
            if let text = string(labelValue, path) {
                if text.unicodeScalars.count > Contract.maximumLabelValueLength {
                    add(.badLabel, path, "value has \(text.unicodeScalars.count) characters; at most \(Contract.maximumLabelValueLength) are allowed")
                }
                checkBrand(text, path)
            }
        }
    }

    static func isLabelKey(_ key: String) -> Bool {
        let bytes = key.utf8
        guard let first = bytes.first, (0x61...0x7A).contains(first), bytes.count <= 63 else { return false }
        return bytes.dropFirst().allSatisfy { b in
            (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x5F || b == 0x2E || b == 0x2D
        }
    }

    mutating func runGrain(_ m: Slots<TopField>, source: EnergySource?, tier: Provenance?, energy: Double?, pue: Bool?) {
        if let value = m[.compute_assignment_run_id] {
            if let id = string(value, "compute_assignment_run_id"), let problem = Contract.runIDProblem(id) {
                add(.missingRunID, "compute_assignment_run_id", problem)
            }
        } else {
            add(.missingRunID, "compute_assignment_run_id", "run-grain events must name the compute assignment run they measured")
        }
        for field in [TopField.facility_id, .region, .grid_region] where m[field] != nil {
            let name = field.name
            add(.facilityFields, name, "\"\(name)\" belongs to facility-grain events, not run grain")
        }
        if tier == .measured, m[.measurement] == nil {
            add(.badMeasurement, "measurement", "required for measured run-grain events: method, samples, interval, coverage, wraps, resets")
        }

        var coefficient: Coefficient?
        if source == .tokenModel {
            if m[.coefficient] == nil { add(.missingField, "coefficient", "required for token_model events") }
            else { coefficient = self.coefficient(m[.coefficient], path: "coefficient") }
        } else if m[.coefficient] != nil, source != nil {
            add(.badCoefficient, "coefficient", "only token_model events carry a coefficient")
        }
        var tokens: (input: Int64, output: Int64)?
        if source == .tokenModel {
            if m[.tokens] == nil { add(.missingField, "tokens", "required for token_model events") }
            else { tokens = self.tokens(m[.tokens]) }
        } else if m[.tokens] != nil, source != nil {
            add(.badTokens, "tokens", "only token_model events carry token counts")
        }
        var proration: (energy: Double, share: Double)?
        if source == .facilityProration {
            if m[.proration] == nil { add(.missingField, "proration", "required for facility_proration events") }
            else { proration = self.proration(m[.proration]) }
        } else if m[.proration] != nil, source != nil {
            add(.badProration, "proration", "only facility_proration events carry a proration")
        }

        if let energy, energy.isFinite {
            if let tokens, let coefficient {
                let expected = Double(tokens.input) * coefficient.joulesPerInputToken + Double(tokens.output) * coefficient.joulesPerOutputToken
                checkEnergy(energy, expected: expected, because: "tokens × coefficient")
            }
            if let proration {
                checkEnergy(energy, expected: proration.energy * proration.share, because: "facility_energy_joules × compute_share")
            }
        }

        if let pue, let source {
            if source.isPhysical, pue {
                add(.pueMismatch, "pue_applied", "run-grain \(source.rawValue) energy is raw IT load: pue_applied must be false")
            }
            if source == .tokenModel, let coefficient, pue != coefficient.pueApplied {
                add(.pueMismatch, "pue_applied", "must be \(coefficient.pueApplied) for a coefficient of \(coefficient.scope.rawValue) scope (true only for facility)")
            }
        }
    }

    mutating func checkEnergy(_ energy: Double, expected: Double, because rule: String) {
        if abs(energy - expected) > Contract.energyTolerance * max(1, abs(expected)) {
            add(.energyMismatch, "energy_joules", "is \(JSONWriter.formatNumber(energy)) but \(rule) gives \(JSONWriter.formatNumber(expected))")
        }
    }

    mutating func facilityGrain(_ m: Slots<TopField>) {
        if let value = m[.facility_id] {
            if let id = string(value, "facility_id") {
                if id.isEmpty { add(.facilityFields, "facility_id", "must not be empty") }
                else if id.unicodeScalars.count > Contract.maximumIdentifierLength {
                    add(.facilityFields, "facility_id", "at most \(Contract.maximumIdentifierLength) characters are allowed")
                }
            }
        } else {
            add(.facilityFields, "facility_id", "facility-grain events must name their facility")
        }
        var hasRegion = false
        for field in [TopField.region, .grid_region] {
            let name = field.name
            guard let value = m[field] else { continue }
            if let text = string(value, name) {
                if text.isEmpty { add(.facilityFields, name, "must not be empty") } else { hasRegion = true }
            }
        }
        if !hasRegion, m[.region] == nil, m[.grid_region] == nil {
            add(.facilityFields, "region", "facility-grain events need region or grid_region")
        }
        for field in [TopField.compute_assignment_run_id, .tokens, .coefficient, .proration] where m[field] != nil {
            let name = field.name
            add(.facilityFields, name, "\"\(name)\" belongs to run-grain events, not facility grain")
        }
    }

    mutating func measurement(_ value: JSONValue) {
        guard let fields = object(value, "measurement") else { return }
        let s: Slots<MeasurementField> = members(fields, path: "measurement", required: [.method, .samples, .interval_ms, .coverage, .counter_wraps, .counter_resets])
        if let method = string(s[.method], "measurement.method"), MeasurementMethod(rawValue: method) == nil {
            add(.badMeasurement, "measurement.method", "must be counter_delta or power_integration, not \"\(method)\"")
        }
        if let samples = integer(s[.samples], "measurement.samples"), samples < 2 {
            add(.badMeasurement, "measurement.samples", "must be >= 2 (a delta needs two readings), got \(samples)")
        }
        if let interval = number(s[.interval_ms], "measurement.interval_ms"), !(interval > 0) {
            add(.badMeasurement, "measurement.interval_ms", "must be > 0, got \(JSONWriter.formatNumber(interval))")
        }
        if let coverage = number(s[.coverage], "measurement.coverage"), !(coverage >= 0 && coverage <= 1) {
            add(.badMeasurement, "measurement.coverage", "must be within [0, 1], got \(JSONWriter.formatNumber(coverage))")
        }
        for field in [MeasurementField.counter_wraps, .counter_resets] {
            let name = field.name
            if let count = integer(s[field], "measurement." + name), count < 0 {
                add(.badMeasurement, "measurement." + name, "must be >= 0, got \(count)")
            }
        }
        if let resolution = number(s[.resolution_joules], "measurement.resolution_joules"), !(resolution >= 0) {
            add(.badMeasurement, "measurement.resolution_joules", "must be >= 0 (the smallest energy step the evidence shows), got \(JSONWriter.formatNumber(resolution))")
        }
    }

    mutating func tokens(_ value: JSONValue?) -> (input: Int64, output: Int64)? {
        guard let fields = object(value, "tokens") else { return nil }
        let s: Slots<TokensField> = members(fields, path: "tokens", required: TokensField.allCases)
        var counts: [Int64] = []
        for field in TokensField.allCases {
            let name = field.name
            guard let count = integer(s[field], "tokens." + name) else { continue }
            if count < 0 { add(.badTokens, "tokens." + name, "a token count must be >= 0, got \(count)") }
            else { counts.append(count) }
        }
        return counts.count == 2 ? (counts[0], counts[1]) : nil
    }

    mutating func coefficient(_ value: JSONValue?, path: String) -> Coefficient? {
        guard let fields = object(value, path) else { return nil }
        let before = findings.count
        let s: Slots<CoefficientField> = members(fields, path: path, required: CoefficientField.allCases)
        if let id = string(s[.profile_id], path + ".profile_id") {
            if !Self.isProfileID(id) {
                add(.badCoefficient, path + ".profile_id", "\"\(id)\" must match ^[a-z0-9]+(-[a-z0-9]+)*-v[0-9]+$ (an opaque id such as managed-balanced-v1)")
            }
            checkBrand(id, path + ".profile_id")
        }
        for field in [CoefficientField.model_family, .model_tier, .citation] {
            let name = field.name
            if let text = string(s[field], path + "." + name) {
                if text.allSatisfy(\.isWhitespace) { add(.badCoefficient, path + "." + name, "must not be empty") }
                checkBrand(text, path + "." + name)
            }
        }
        for field in [CoefficientField.joules_per_input_token, .joules_per_output_token] {
            let name = field.name
            if let j = number(s[field], path + "." + name), !(j.isFinite && j >= 0) {
                add(.badCoefficient, path + "." + name, "must be a finite number >= 0, got \(j.isFinite ? JSONWriter.formatNumber(j) : "\(j)")")
            }
        }
        if let scope = string(s[.scope], path + ".scope"), CoefficientScope(rawValue: scope) == nil {
            add(.badCoefficient, path + ".scope", "must be accelerator, system or facility, not \"\(scope)\"")
        }
        if let confidence = string(s[.confidence], path + ".confidence"), Confidence(rawValue: confidence) == nil {
            add(.badCoefficient, path + ".confidence", "must be low, medium or high, not \"\(confidence)\"")
        }
        guard findings.count == before, let value else { return nil }
        return Coefficient(validated: value)
    }

    static func isProfileID(_ id: String) -> Bool {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 2, let last = parts.last, last.first == "v", last.count >= 2,
              last.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        return parts.dropLast().allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
        }
    }

    mutating func proration(_ value: JSONValue?) -> (energy: Double, share: Double)? {
        guard let fields = object(value, "proration") else { return nil }
        let s: Slots<ProrationField> = members(fields, path: "proration", required: ProrationField.allCases)
        if let id = string(s[.facility_id], "proration.facility_id"),
           id.isEmpty || id.unicodeScalars.count > Contract.maximumIdentifierLength {
            add(.badProration, "proration.facility_id", "must be 1-\(Contract.maximumIdentifierLength) characters")
        }
        if let id = string(s[.facility_event_id], "proration.facility_event_id"), !Self.isEventIDShape(id) {
            add(.badProration, "proration.facility_event_id", "must be the 64 lowercase hex event_id of the facility event")
        }
        var energy: Double?
        if let e = number(s[.facility_energy_joules], "proration.facility_energy_joules") {
            if e.isFinite && e >= 0 { energy = e } else {
                add(.badProration, "proration.facility_energy_joules", "must be a finite number >= 0")
            }
        }
        var share: Double?
        if let c = number(s[.compute_share], "proration.compute_share") {
            if c > 0 && c <= 1 { share = c } else {
                add(.badProration, "proration.compute_share", "must be within (0, 1], got \(c.isFinite ? JSONWriter.formatNumber(c) : "\(c)")")
            }
        }
        if let basis = string(s[.basis], "proration.basis"), ProrationBasis(rawValue: basis) == nil {
            add(.badProration, "proration.basis", "must be one of \(ProrationBasis.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(basis)\"")
        }
        guard let energy, let share else { return nil }
        return (energy, share)
    }

    static func isEventIDShape(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    mutating func eventID(_ value: JSONValue?, slots m: Slots<TopField>) {
        guard let id = string(value, "event_id") else { return }
        guard Self.isEventIDShape(id) else {
            add(.eventIDMismatch, "event_id", "must be 64 lowercase hex characters (SHA-256 of the identity)")
            return
        }
        guard let identity = EventIdentity(kind: m[.kind], grain: m[.grain], energySource: m[.energy_source],
                                           computeAssignmentRunID: m[.compute_assignment_run_id], facilityID: m[.facility_id],
                                           nodeID: m[.producer]?["node_id"], deviceID: m[.device]?["id"],
                                           validFrom: m[.valid_from], validTo: m[.valid_to]) else { return }
        let expected = identity.eventID
        if expected != id {
            add(.eventIDMismatch, "event_id", "is not the SHA-256 of this event's identity; expected \(expected)")
        }
    }
}
