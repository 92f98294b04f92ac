import Testing
@testable import EmitContract

/// One test per contract rule: break exactly that rule on a valid event and expect exactly its code.
@Suite struct ValidatorTests {
    typealias Mutation = (JSONValue) -> JSONValue

    func expect(_ base: JSONValue, _ mutate: Mutation, raises expected: Set<String>, rehash: Bool = true,
                sourceLocation: SourceLocation = #_sourceLocation) {
        var event = mutate(base)
        if rehash { event = event.rehashed() }
        let found = Validator.standard.validate(event)
        #expect(Set(found.map(\.code.rawValue)) == expected, "\(found)", sourceLocation: sourceLocation)
    }

    func set(_ path: String, _ value: JSONValue?) -> Mutation { { $0.setting(path, value) } }

    @Test func builderOutputsAreValid() throws {
        for event in [try Sample.gpu(), try Sample.token(), try Sample.facility(), try Sample.proration()] {
            #expect(Validator.standard.validate(event.json).isEmpty)
            #expect(Validator.standard.validate(jsonText: event.jsonLine).isEmpty)
        }
    }

    @Test func fixedMembers() throws {
        let gpu = try Sample.gpu().json
        expect(gpu, set("kind", .string("emit:other")), raises: ["bad_kind"], rehash: false)
        expect(gpu, set("channel", .string("x")), raises: ["bad_channel"])
        expect(gpu, set("schema_version", .number(2)), raises: ["bad_schema_version"])
        expect(gpu, set("schema_version", .string("1")), raises: ["wrong_type"])
        expect(gpu, set("schema_version", .number(1.5)), raises: ["wrong_type"])
        expect(gpu, set("grain", .string("rack")), raises: ["bad_grain"])
    }

    @Test func requiredAndUnknownMembers() throws {
        let gpu = try Sample.gpu().json
        for name in ["channel", "schema_version", "energy_joules", "valid_from", "recorded_at", "pue_applied", "producer"] {
            expect(gpu, set(name, nil), raises: ["missing_field"])
        }
        expect(gpu, set("producer.version", nil), raises: ["missing_field"])
        expect(gpu, set("producer.node_id", nil), raises: ["missing_field"])
        expect(gpu, set("carbon_kg", .number(1)), raises: ["unknown_field"])
        expect(gpu, set("device.vendor", .string("x")), raises: ["unknown_field"])
        expect(gpu, set("measurement.extra", .number(1)), raises: ["unknown_field"])
        expect(gpu, set("producer.host", .string("x")), raises: ["unknown_field"])
        let token = try Sample.token().json
        expect(token, set("tokens.cached", .number(1)), raises: ["unknown_field"])
        expect(token, set("coefficient.price", .number(1)), raises: ["unknown_field"])
        expect(try Sample.proration().json, set("proration.note", .string("x")), raises: ["unknown_field"])
    }

    @Test func typesAreStrict() throws {
        let gpu = try Sample.gpu().json
        expect(gpu, set("energy_joules", .bool(true)), raises: ["wrong_type"])
        expect(gpu, set("energy_joules", .string("12")), raises: ["wrong_type"])
        expect(gpu, set("pue_applied", .number(0)), raises: ["wrong_type"])
        expect(gpu, set("measurement.samples", .number(2.5)), raises: ["wrong_type"])
        expect(gpu, set("device.index", .bool(false)), raises: ["wrong_type"])
        expect(gpu, set("producer", .array([])), raises: ["wrong_type"])
        expect(gpu, set("labels", .string("a=b")), raises: ["wrong_type"])
        expect(gpu, set("labels", .object([("team", .number(1))])), raises: ["wrong_type"])
    }

    @Test func vocabularyTiersAndGrains() throws {
        let gpu = try Sample.gpu().json
        expect(gpu, set("energy_source", .string("nvidia")), raises: ["bad_source"])
        expect(gpu, set("energy_provenance", .string("guess")), raises: ["bad_provenance"])
        expect(gpu, set("energy_provenance", .string("modeled")), raises: ["tier_source_mismatch"])
        expect(gpu, { $0.setting("energy_provenance", .string("estimated")) }, raises: [])
        let token = try Sample.token().json
        expect(token, set("energy_provenance", .string("measured")), raises: ["tier_source_mismatch", "bad_measurement"])
        let facility = try Sample.facility().json
        expect(facility, set("energy_source", .string("nvml")), raises: ["grain_source_mismatch"])
        expect(gpu, set("energy_source", .string("smart_meter")), raises: ["grain_source_mismatch"])
        let proration = try Sample.proration().json
        expect(proration, set("energy_provenance", .string("measured")), raises: ["tier_source_mismatch", "bad_measurement"])
    }

    @Test func energyAndTime() throws {
        let gpu = try Sample.gpu().json
        expect(gpu, set("energy_joules", .number(-0.001)), raises: ["bad_energy"])
        expect(gpu, set("energy_joules", .number(0)), raises: [])
        expect(gpu, set("valid_from", .string("2026-11-27T09:00:00+00:00")), raises: ["bad_timestamp"])
        expect(gpu, set("recorded_at", .string("2026-02-30T00:00:00Z")), raises: ["bad_timestamp"])
        expect(gpu, set("valid_to", .string("2026-11-27T09:00:00Z")), raises: ["bad_window"])
        expect(gpu, set("valid_to", .string("2026-11-27T08:59:59.999999999Z")), raises: ["bad_window"])
        expect(gpu, set("valid_to", .string("2026-11-27T09:00:00.000000001Z")), raises: [])
    }

    @Test func runGrainRules() throws {
        let gpu = try Sample.gpu().json
        expect(gpu, set("compute_assignment_run_id", nil), raises: ["missing_run_id"])
        expect(gpu, set("compute_assignment_run_id", .string("")), raises: ["missing_run_id"])
        expect(gpu, set("compute_assignment_run_id", .string(String(repeating: "r", count: 257))), raises: ["missing_run_id"])
        expect(gpu, set("compute_assignment_run_id", .string(String(repeating: "\u{1F600}", count: 256))), raises: [])
        expect(gpu, set("compute_assignment_run_id", .string("run\u{85}1")), raises: ["missing_run_id"])
        expect(gpu, set("compute_assignment_run_id", .number(7)), raises: ["wrong_type"])
        expect(gpu, set("facility_id", .string("f")), raises: ["facility_fields"])
        expect(gpu, set("grid_region", .string("g")), raises: ["facility_fields"])
        expect(gpu, set("device", nil), raises: ["bad_device"])
        expect(gpu, set("device.class", .string("pdu_inlet")), raises: ["bad_device"])
        expect(gpu, set("device.id", .string("")), raises: ["bad_device"])
        expect(gpu, set("device.index", .number(-1)), raises: ["bad_device"])
        expect(gpu, set("measurement", nil), raises: ["bad_measurement"])
        expect(gpu, set("measurement.method", .string("guess")), raises: ["bad_measurement"])
        expect(gpu, set("measurement.samples", .number(1)), raises: ["bad_measurement"])
        expect(gpu, set("measurement.interval_ms", .number(0)), raises: ["bad_measurement"])
        expect(gpu, set("measurement.coverage", .number(1.01)), raises: ["bad_measurement"])
        expect(gpu, set("measurement.coverage", .number(-0.1)), raises: ["bad_measurement"])
        expect(gpu, set("measurement.counter_wraps", .number(-1)), raises: ["bad_measurement"])
        expect(gpu, set("measurement.counter_resets", .number(-1)), raises: ["bad_measurement"])
        expect(gpu, set("measurement.method", nil), raises: ["missing_field"])
        expect(gpu, set("pue_applied", .bool(true)), raises: ["pue_mismatch"])
        expect(gpu, set("tokens", .object([("input", .number(1)), ("output", .number(1))])), raises: ["bad_tokens"])
    }

    @Test func modeledTokenRules() throws {
        let token = try Sample.token().json
        expect(token, set("tokens", nil), raises: ["missing_field"])
        expect(token, set("coefficient", nil), raises: ["missing_field"])
        expect(token, set("tokens.output", .number(-1)), raises: ["bad_tokens"])
        expect(token, set("tokens.input", .number(10.5)), raises: ["wrong_type"])
        expect(token, set("coefficient.profile_id", .string("managed-balanced")), raises: ["bad_coefficient"])
        expect(token, set("coefficient.profile_id", .string("Managed-v1")), raises: ["bad_coefficient"])
        expect(token, set("coefficient.scope", .string("rack")), raises: ["bad_coefficient"])
        expect(token, set("coefficient.confidence", .string("certain")), raises: ["bad_coefficient"])
        expect(token, set("coefficient.citation", .string("  ")), raises: ["bad_coefficient"])
        expect(token, set("coefficient.model_tier", .string("")), raises: ["bad_coefficient"])
        expect(token, set("coefficient.joules_per_input_token", .number(-0.1)), raises: ["bad_coefficient"])
        expect(token, set("energy_joules", .number(600)), raises: ["energy_mismatch"])
        // 1000 × 0.066 + 200 × 0.33 = 132, within the 1e-9 relative tolerance either side.
        expect(token, set("energy_joules", .number(132 + 1e-8)), raises: [])
        expect(token, set("energy_joules", .number(132 + 1e-6)), raises: ["energy_mismatch"])
        expect(token, set("pue_applied", .bool(true)), raises: ["pue_mismatch"])
        let facilityScope = try Sample.token(scope: .facility).json
        #expect(facilityScope["pue_applied"] == .bool(true))
        expect(facilityScope, set("pue_applied", .bool(false)), raises: ["pue_mismatch"])
        expect(token, set("coefficient.model_family", .string("Claude-class")), raises: ["brand_name"])
        expect(token, set("coefficient.citation", .string("after OpenAI 2024")), raises: ["brand_name"])
        expect(token, set("coefficient.profile_id", .string("gpt-4-v1")), raises: ["brand_name"])
        expect(token, set("coefficient.profile_id", .string("gpt4-v1")), raises: [])
    }

    @Test func prorationRules() throws {
        let proration = try Sample.proration().json
        #expect(proration["energy_joules"] == .number(900_000))
        #expect(proration["pue_applied"] == .bool(true))
        expect(proration, set("proration", nil), raises: ["missing_field"])
        expect(proration, set("proration.compute_share", .number(0)), raises: ["bad_proration"])
        expect(proration, set("proration.compute_share", .number(1.0001)), raises: ["bad_proration"])
        expect(proration, set("proration.basis", .string("vibes")), raises: ["bad_proration"])
        expect(proration, set("proration.facility_event_id", .string("abc")), raises: ["bad_proration"])
        expect(proration, set("proration.facility_id", .string("")), raises: ["bad_proration"])
        expect(proration, set("proration.facility_energy_joules", .number(-1)), raises: ["bad_proration"])
        expect(proration, set("energy_joules", .number(900_001)), raises: ["energy_mismatch"])
        expect(try Sample.gpu().json, set("proration", proration["proration"]), raises: ["bad_proration"])
    }

    @Test func facilityGrainRules() throws {
        let facility = try Sample.facility().json
        expect(facility, set("facility_id", nil), raises: ["facility_fields"])
        expect(facility, set("facility_id", .string("")), raises: ["facility_fields"])
        expect(facility, set("facility_id", .string(String(repeating: "f", count: 257))), raises: ["facility_fields"])
        expect(facility, set("region", nil), raises: ["facility_fields"])
        expect(facility, { $0.setting("region", nil).setting("grid_region", .string("DE-LU")) }, raises: [])
        expect(facility, set("region", .string("")), raises: ["facility_fields"])
        expect(facility, set("compute_assignment_run_id", .string("r")), raises: ["facility_fields"])
        expect(facility, set("tokens", .object([])), raises: ["facility_fields"])
        expect(facility, set("device.class", .string("gpu")), raises: ["bad_device"])
        expect(facility, set("device", nil), raises: [])
        expect(facility, set("pue_applied", .bool(true)), raises: [])
        expect(facility, set("pue_applied", nil), raises: ["missing_field"])
        expect(facility, set("measurement", .object([("method", .string("power_integration")), ("samples", .number(2)),
            ("interval_ms", .number(1000)), ("coverage", .number(1)), ("counter_wraps", .number(0)), ("counter_resets", .number(0))])), raises: [])
    }

    @Test func labelsBrandsAndOwnedConcepts() throws {
        let gpu = try Sample.gpu().json
        func labels(_ pairs: [(String, String)]) -> Mutation { set("labels", .object(pairs.map { ($0.0, JSONValue.string($0.1)) })) }
        expect(gpu, labels([("team", "vision"), ("k8s.pod-name", "a")]), raises: [])
        expect(gpu, labels([("Team", "x")]), raises: ["bad_label"])
        expect(gpu, labels([("1team", "x")]), raises: ["bad_label"])
        expect(gpu, labels([(String(repeating: "k", count: 64), "x")]), raises: ["bad_label"])
        expect(gpu, labels([("team", String(repeating: "v", count: 257))]), raises: ["bad_label"])
        expect(gpu, labels((0..<33).map { ("k\($0)", "v") }), raises: ["bad_label"])
        expect(gpu, labels([("cost_center", "x")]), raises: ["forbidden_label"])
        expect(gpu, labels([("team.co2e", "x")]), raises: ["forbidden_label"])
        expect(gpu, labels([("costume", "x")]), raises: [])
        expect(gpu, labels([("cloud", "Azure-east")]), raises: ["brand_name"])
        expect(gpu, labels([("gemini-pool", "x")]), raises: ["brand_name"])
        expect(gpu, set("producer.name", .string("LLAMA-exporter")), raises: ["brand_name"])
        // Facts from outside are not brand-checked: ids, a sensor's device name, regions.
        expect(gpu, set("device.name", .string("Google TPU v5")), raises: [])
        expect(gpu, set("compute_assignment_run_id", .string("aws-batch-17")), raises: [])
    }

    @Test func eventIDRules() throws {
        let gpu = try Sample.gpu().json
        expect(gpu, set("event_id", .string(String(repeating: "0", count: 64))), raises: ["event_id_mismatch"], rehash: false)
        let id = gpu["event_id"]?.stringValue ?? ""
        expect(gpu, set("event_id", .string(id.uppercased())), raises: ["event_id_mismatch"], rehash: false)
        expect(gpu, set("event_id", .string(String(id.dropLast()))), raises: ["event_id_mismatch"], rehash: false)
        // Changing an identity member without rehashing breaks the id; a non-identity member does not.
        expect(gpu, set("device.id", .string("GPU-2")), raises: ["event_id_mismatch"], rehash: false)
        expect(gpu, set("energy_joules", .number(1)), raises: [], rehash: false)
        expect(gpu, set("recorded_at", .string("2026-11-28T00:00:00Z")), raises: [], rehash: false)
    }

    @Test func everyViolationIsReportedNotOnlyTheFirst() throws {
        let event = try Sample.gpu().json
            .setting("energy_joules", .number(-1))
            .setting("channel", .string("x"))
            .setting("labels", .object([("price", .string("1"))]))
            .setting("device.index", .number(-2))
            .setting("color", .string("red"))
            .setting("event_id", .string("nope"))
        let found = Validator.standard.validate(event)
        #expect(Set(found.map(\.code.rawValue)) == ["bad_energy", "bad_channel", "forbidden_label", "bad_device", "unknown_field", "event_id_mismatch"])
        #expect(found.first { $0.code == .badDevice }?.path == "device.index")
        #expect(found.first { $0.code == .unknownField }?.path == "color")
    }

    @Test func nonObjectsAndBadTextAreInvalidJSON() {
        #expect(codes(.array([])) == ["invalid_json"])
        #expect(codes(.string("x")) == ["invalid_json"])
        #expect(Validator.standard.validate(jsonText: "{\"kind\":1} trailing").map(\.code) == [.invalidJSON])
    }

    @Test func everyErrorCodeIsRaisedBySomeRule() throws {
        // Guards against a code that the contract lists but no rule can produce.
        let gpu = try Sample.gpu().json
        let token = try Sample.token().json
        let mutations: [JSONValue] = [
            gpu.setting("kind", .string("x")), gpu.setting("channel", .string("x")), gpu.setting("schema_version", .number(3)),
            gpu.setting("grain", .string("x")), gpu.setting("energy_source", .string("x")), gpu.setting("energy_provenance", .string("x")),
            gpu.setting("energy_provenance", .string("modeled")), gpu.setting("energy_source", .string("smart_meter")),
            gpu.setting("energy_joules", .number(-1)), gpu.setting("valid_to", .string("x")), gpu.setting("valid_to", .string("2000-01-01T00:00:00Z")),
            gpu.setting("region", .string("r")), gpu.setting("device", nil), gpu.setting("measurement", nil), gpu.setting("x", .null),
            gpu.setting("recorded_at", nil), gpu.setting("compute_assignment_run_id", nil), gpu.setting("pue_applied", .number(1)),
            gpu.setting("pue_applied", .bool(true)), gpu.setting("labels", .object([("A", .string("b"))])),
            gpu.setting("labels", .object([("bill", .string("b"))])), gpu.setting("producer.name", .string("grok")),
            token.setting("tokens.input", .number(-1)), token.setting("coefficient.scope", .string("x")),
            token.setting("energy_joules", .number(1)), try Sample.proration().json.setting("proration.basis", .string("x")),
        ]
        var raised = Set(mutations.flatMap { codes($0.rehashed()) })
        raised.formUnion(Validator.standard.validate(jsonText: "[").map(\.code.rawValue))
        raised.formUnion(codes(gpu.setting("event_id", .string("x"))))
        #expect(raised == Set(ErrorCode.allCases.map(\.rawValue)))
    }
}
