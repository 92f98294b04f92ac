import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitInvariants

@Suite struct InvariantSuiteTests {
    @Test func theRepositoryIsClean() throws {
        let paths = ["fixtures", "examples", "schema", "coefficients", "Sources"].map(Repository.path)
        let findings = try InvariantSuite().run(paths: paths)
        #expect(findings.isEmpty, "\(findings.map(\.description).joined(separator: "\n"))")
    }

    @Test func aFileNamedItselfIsAlwaysCheckedAndBinaryContentIsAFinding() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = try dir.write("events.jsonl", "{\"a\": 1}\n{\"b\": 2}\u{0}\n")
        let named = try InvariantSuite().run(paths: [file])
        #expect(named.map(\.code) == ["binary_content"])
        #expect(named.first?.line == 2)
        // Found in a folder, binary data (an image) is nothing authored: skipped.
        #expect(try InvariantSuite().run(paths: [dir.path]).isEmpty)
    }

    @Test func everyErrorCodeHasAnInvalidFixtureDeclaringIt() throws {
        let dir = Repository.path("fixtures/conformance/invalid")
        var declared = Set<String>()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(InvariantSuite.expectationSuffix) {
            let expectation = try FixtureExpectation(path: "\(dir)/\(name)")
            declared.formUnion(expectation.codes)
            let fixture = "\(dir)/\(name.replacingOccurrences(of: InvariantSuite.expectationSuffix, with: ".jsonl"))"
            #expect(FileManager.default.fileExists(atPath: fixture), "sidecar \(name) has no fixture")
        }
        #expect(declared == Set(ErrorCode.allCases.map(\.rawValue)))
    }

    @Test func theValidFixturesCoverTheContractList() throws {
        var seen = Set<String>()
        let dir = Repository.path("fixtures/conformance/valid")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let event = try EnergyEvent(validating: try JSONParser.parse(try EventFileReader.readAll(path: "\(dir)/\(name)")))
            var key = "\(event.source.rawValue)/\(event.grain.rawValue)"
            if event.source == .tokenModel, let scope = event.json["coefficient"]?["scope"]?.stringValue { key += "/\(scope)" }
            if event.grain == .facility { key += "/pue=\(event.pueApplied)" }
            seen.insert(key)
            if let cls = event.json["device"]?["class"]?.stringValue { seen.insert("class:\(cls)") }
        }
        let required: Set<String> = [
            "nvml/run", "dcgm/run", "rapl/run", "class:cpu_package", "class:dram", "ipmi/run", "redfish/run",
            "token_model/run/accelerator", "token_model/run/system", "token_model/run/facility",
            "pdu/facility/pue=true", "pdu/facility/pue=false", "smart_meter/facility/pue=true", "smart_meter/facility/pue=false",
            "facility_proration/run",
        ]
        #expect(required.isSubset(of: seen), "missing: \(required.subtracting(seen).sorted())")
    }

    @Test func aBrandInAnExampleIsFoundWithFileAndLine() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let file = try tree.write("examples/notes.md", "A run.\nMeasured on Azure hardware.\n")
        let findings = try InvariantSuite().run(paths: [tree.path])
        #expect(findings == [CheckFinding(file: file, line: 2, code: "brand_name",
                                          message: "column 13: provider brand \"azure\"; emit's authored text stays provider-brand-free")])
    }

    @Test func theDenylistFileItselfIsExempt() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        try tree.write("invariants/brand-denylist.txt", "aws\ngoogle\n")
        #expect(try InvariantSuite().run(paths: [tree.path]).isEmpty)
    }

    @Test func aFixtureRaisingOtherCodesThanDeclaredIsAFinding() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let line = try Repository.text("fixtures/conformance/invalid/bad-energy-negative.jsonl")
        let fixture = try tree.write("invalid/x.jsonl", line)
        try tree.write("invalid/x.expect.json", #"{"codes": ["bad_window"], "schema": "accept"}"#)
        let findings = try InvariantSuite().run(paths: [tree.path])
        #expect(findings.count == 1)
        #expect(findings.first?.file == fixture)
        #expect(findings.first?.code == "fixture_expectation")
        #expect(findings.first?.message == "expected but not raised: bad_window; raised but not declared: bad_energy")
    }

    @Test func anInvalidEventOutsideFixturesIsReportedWithItsCode() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let valid = try Repository.text("fixtures/conformance/invalid/bad-channel.jsonl")
        let file = try tree.write("examples/run.jsonl", "\n" + valid)
        let findings = try InvariantSuite().run(paths: [tree.path])
        #expect(findings.map(\.description) == ["\(file):2: bad_channel: channel: must be \"emit\", not \"telemetry\""])
    }

    @Test func jsonDocumentsMayNotNameOwnedConcepts() throws {
        let tree = try TemporaryDirectory()
        defer { tree.remove() }
        let file = try tree.write("schema/s.json", "{\n  \"$schema\": \"x\",\n  \"properties\": {\"carbon_intensity\": {}}\n}\n")
        let findings = try InvariantSuite().run(paths: [tree.path])
        #expect(findings.map(\.code) == ["forbidden_field"])
        #expect(findings.first?.file == file && findings.first?.line == 3)
    }
}

@Suite struct ObservationRuleTests {
    func findings(_ text: String, file: String = "x.swift") throws -> [String] {
        try ObservationRules.scan(text: text, file: file).map { $0.message.components(separatedBy: ":")[0] }
    }

    @Test func setterCallsAreFound() throws {
        #expect(try findings("let f = dlsym(h, \"nvmlDeviceSetPowerManagementLimit\")") == ["nvml_setter"])
        #expect(try findings("nvmlDeviceSetApplicationsClocks(dev, 1, 2)") == ["nvml_setter"])
        #expect(try findings("dcgmConfigSet(handle, group, &cfg, status)") == ["dcgm_setter"])
        #expect(try findings("dcgmPolicySet(handle, group, &policy, status)") == ["dcgm_setter"])
        #expect(try findings("let f = dlsym(h, \"nvmlDeviceGetTotalEnergyConsumption\")").isEmpty)
    }

    @Test func powercapWritesAreFound() throws {
        let writer = "let root = \"/sys/class/powercap\"\nlet fd = open(root + \"/intel-rapl:0/constraint_0_power_limit_uw\", O_WRONLY)\n"
        #expect(try ObservationRules.scan(text: writer, file: "w.swift").map(\.line) == [2])
        #expect(try findings("// reads /sys/class/powercap\ntry \"1\".write(toFile: p, atomically: true, encoding: .utf8)").count == 1)
        #expect(try findings("FILE *f = fopen(\"/sys/class/powercap/intel-rapl:0/constraint_0_power_limit_uw\", \"w\");", file: "x.c").count == 1)
        let reader = "let root = \"/sys/class/powercap\"\nlet fd = open(root + \"/intel-rapl:0/energy_uj\", O_RDONLY)\n"
        #expect(try findings(reader).isEmpty)
        #expect(try findings("let fd = open(out, O_WRONLY | O_CREAT)").isEmpty, "writing elsewhere is fine")
    }

    @Test func ipmiAndRedfishControlAreFound() throws {
        #expect(try findings(#"args = ["chassis", "power", "off"]"#) == ["ipmi_power_control"])
        #expect(try findings("ipmitool chassis power cycle", file: "x.sh") == ["ipmi_power_control"])
        #expect(try findings("ipmitool dcmi power set_limit limit 300", file: "x.sh") == ["ipmi_power_limit"])
        #expect(try findings(#"["dcmi", "power", "activate"]"#) == ["ipmi_power_limit"])
        #expect(try findings(#"["dcmi", "power", "reading"]"#).isEmpty)
        #expect(try findings(#"body = "{\"ResetType\": \"ForceOff\"}""#) == ["redfish_reset"])
        #expect(try findings(#"url = base + "/Actions/ComputerSystem.Reset""#) == ["redfish_reset"])
        #expect(try findings("request.method = .PATCH") == ["redfish_patch"])
        #expect(try findings("request.method = .GET").isEmpty)
    }

    @Test func theRulesDoNotMatchTheirOwnSource() throws {
        let own = try Repository.text("Sources/EmitInvariants/ObservationRules.swift")
        #expect(try ObservationRules.scan(text: own, file: "ObservationRules.swift").isEmpty)
    }
}

@Suite struct SchemaTests {
    /// The JSON Schema agrees with the fixtures: valid ones pass, structural violations fail it.
    @Test func schemaAgreesWithTheFixtures() throws {
        guard let python = Programs.which("python3"),
              (try? Programs.run(python, ["-c", "import jsonschema"]))?.status == 0 else {
            if Programs.peersRequired { Issue.record("python3 with jsonschema is required (EMIT_REQUIRE_PEERS=1)") }
            return
        }
        let result = try Programs.run(python, [Repository.path("scripts/check-schema.py")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("0 disagreements"))
    }
}
