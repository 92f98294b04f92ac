import Testing
import EmitTestSupport
@testable import EmitContract

@Suite struct CoefficientTableTests {
    @Test func compiledInTableIsTheDataFile() throws {
        #expect(EmbeddedData.coefficientTableJSON + "\n" == (try Repository.text("coefficients/coefficients.json")),
                "run scripts/embed-data.py after editing coefficients/coefficients.json")
        #expect(EmbeddedData.brandDenylistText + "\n" == (try Repository.text("invariants/brand-denylist.txt")),
                "run scripts/embed-data.py after editing invariants/brand-denylist.txt")
    }

    @Test func shipsTheFourOpaqueProfilesWithEveryScopeRule() throws {
        let table = try CoefficientTable.standard()
        let ids = Set(table.profiles.map(\.profileID))
        #expect(ids.isSuperset(of: ["managed-small-v1", "managed-balanced-v1", "managed-large-v1", "managed-reasoning-v1"]))
        for profile in table.profiles {
            #expect(Validator.standard.validateCoefficient(profile.jsonValue, path: "c").isEmpty)
            #expect(profile.joulesPerInputToken < profile.joulesPerOutputToken, "prefill is cheaper per token than decode")
            #expect(profile.citation.contains("arXiv:"))
            #expect(profile.pueApplied == (profile.scope == .facility))
        }
    }

    @Test func tablesWithProblemsListEveryProblem() {
        let text = """
            {"table_version":"x","profiles":[
              {"profile_id":"a-v1","model_family":"f","model_tier":"t","joules_per_input_token":1,"joules_per_output_token":2,"scope":"system","confidence":"low","citation":"c"},
              {"profile_id":"a-v1","model_family":"f","model_tier":"t","joules_per_input_token":1,"joules_per_output_token":2,"scope":"system","confidence":"low","citation":"c"},
              {"profile_id":"b-v1","model_family":"mistral-like","model_tier":"t","joules_per_input_token":-1,"joules_per_output_token":2,"scope":"rack","confidence":"low","citation":"c"}
            ],"carbon":1}
            """
        do {
            _ = try CoefficientTable(parsing: text, source: "t.json")
            Issue.record("accepted a bad table")
        } catch {
            let all = error.problems.joined(separator: "\n")
            #expect(all.contains("appears twice"))
            #expect(all.contains("brand_name"))
            #expect(all.contains("joules_per_input_token"))
            #expect(all.contains("profiles[2].scope"))
            #expect(all.contains("unknown_field: carbon"))
        }
    }
}

@Suite struct BrandDenylistTests {
    let brands = BrandDenylist.standard

    @Test func matchesWholeTokensCaseInsensitively() {
        #expect(brands.firstMatch(in: "gpt-4 class") == "gpt")
        #expect(brands.firstMatch(in: "GPT") == "gpt")
        #expect(brands.firstMatch(in: "gpt4") == nil)
        #expect(brands.firstMatch(in: "chatgpt") == "chatgpt")
        #expect(brands.firstMatch(in: "awsome") == nil)
        #expect(brands.firstMatch(in: "on aws.") == "aws")
        #expect(brands.firstMatch(in: "x_llama_y") == "llama")
        #expect(brands.firstMatch(in: "qwen—large") == "qwen")
        #expect(brands.firstMatch(in: "grokking") == nil)
        #expect(brands.matches(in: "a google b azure").map(\.column) == [3, 12])
    }

    @Test func denylistHasTheContractTokens() {
        for token in ["aws", "amazon", "azure", "microsoft", "gcp", "google", "openai", "anthropic", "gpt", "chatgpt", "claude",
                      "gemini", "mistral", "cohere", "llama", "bedrock", "vertex", "sagemaker", "watsonx", "coreweave", "deepseek",
                      "qwen", "grok"] {
            #expect(brands.tokens.contains(token))
        }
    }
}

@Suite struct BuilderTests {
    @Test func measuredRunEventCarriesWhatTheContractNeeds() throws {
        let event = try Sample.gpu()
        #expect(event.grain == .run && event.provenance == .measured && !event.pueApplied)
        #expect(event.json["producer"]?["node_id"] == .string("node-1"))
        #expect(event.json["measurement"]?["samples"] == .number(10))
        #expect(event.eventID == EventIdentity(event: event.json)?.eventID)
    }

    @Test func builtEventsCannotBeInvalid() {
        #expect(throws: EnergyEvent.Invalid.self) {
            try RunMeterEventBuilder(runID: "", source: .rapl, device: Device(class: .cpuPackage, id: "package-0"), nodeID: "n",
                                     window: Sample.window, energyJoules: -1, measurement: nil).build(recordedAt: Sample.recorded)
        }
        do {
            _ = try RunMeterEventBuilder(runID: "r", source: .tokenModel, device: Device(class: .gpu, id: "g"), nodeID: "n",
                                         window: Sample.window, energyJoules: 1, measurement: nil).build(recordedAt: Sample.recorded)
            Issue.record("a physical builder accepted token_model")
        } catch {
            #expect(Set(error.findings.map(\.code)).isSuperset(of: [.tierSourceMismatch, .missingField]))
        }
        #expect(throws: EnergyEvent.Invalid.self) {
            try FacilityWindowEventBuilder(facilityID: "f", source: .pdu, window: Sample.window, energyJoules: 1, pueApplied: false)
                .build(recordedAt: Sample.recorded)
        }
    }

    @Test func tokenModelComputesEnergyAndPUEFromTheCoefficient() throws {
        let system = try Sample.token(scope: .system)
        #expect(abs(system.energyJoules - 132) < 1e-9)
        #expect(system.provenance == .modeled && !system.pueApplied)
        #expect(try Sample.token(scope: .facility).pueApplied)
        #expect(try !Sample.token(scope: .accelerator).pueApplied)
    }

    @Test func prorationCopiesTheFacilityWindowAndPUE() throws {
        let facility = try Sample.facility(pue: true)
        let event = try Sample.proration()
        #expect(event.window == facility.window)
        #expect(event.pueApplied)
        #expect(event.json["proration"]?["facility_event_id"] == .string(facility.eventID))
        #expect(event.provenance == .estimated)
        let runEvent = try Sample.gpu()
        do {
            _ = try FacilityProrationEventBuilder(facilityEvent: runEvent, runID: "r", computeShare: 0.5).build(recordedAt: Sample.recorded)
            Issue.record("prorated a run event")
        } catch {
            #expect(error.findings.map(\.code) == [.badProration])
        }
    }

    @Test func sameFactSameIDDifferentRecordingTime() throws {
        let a = try Sample.gpu()
        let b = try RunMeterEventBuilder(
            runID: "run-1", source: .nvml, device: Device(class: .gpu, id: "GPU-1", name: "Test GPU", index: 0),
            nodeID: "node-1", window: Sample.window, energyJoules: 1234.5,
            measurement: Measurement(method: .counterDelta, samples: 10, intervalMilliseconds: 100, coverage: 1)
        ).build(recordedAt: Sample.time("2026-11-28T00:00:00Z"))
        #expect(a.eventID == b.eventID)
        #expect(a.jsonLine != b.jsonLine)
    }

    @Test func roundTripsThroughText() throws {
        for event in [try Sample.gpu(), try Sample.token(), try Sample.facility(), try Sample.proration()] {
            let parsed = try EnergyEvent(validating: try JSONParser.parse(event.jsonLine))
            #expect(parsed == event)
        }
    }
}
