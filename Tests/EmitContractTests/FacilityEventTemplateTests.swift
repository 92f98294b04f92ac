import EmitContract
import Foundation
import Testing

/// The facility importer writes lines through the template; they must be byte for byte what the
/// builder (and so the validator and the identity) gives, for any input.
@Suite struct FacilityEventTemplateTests {
    static let recordedAt = Timestamp(epochSeconds: 1_790_000_000, nanoseconds: 123_000_000, fractionDigits: 3)

    func builderLine(_ t: FacilityEventTemplate, device: String?, window: TimeWindow, energy: Double, tier: Provenance) throws -> EnergyEvent {
        var b = t.builder
        b.device = device.map { Device(class: t.builder.device?.deviceClass ?? .utilityMeter, id: $0) }
        b.window = window
        b.energyJoules = energy
        b.provenance = tier
        return try b.build(recordedAt: Self.recordedAt)
    }

    @Test func linesAreTheBuildersForRandomWindows() throws {
        var rng = SystemRandomNumberGenerator()
        let devices: [String?] = [nil, "pdu-007/inlet-1", "meter \"A\" \\ ü 電", "tab\there\u{1}", "x"]
        for (source, grid, node) in [(EnergySource.pdu, "DE" as String?, nil as String?), (.smartMeter, nil, "node-9"), (.ups, "US-CAL", nil)] {
            let template = try FacilityEventTemplate(facilityID: "campus \"north\"", region: grid == nil ? "eu-west" : nil, gridRegion: grid,
                                                     source: source, pueApplied: source == .ups, deviceClass: source == .pdu ? .pduInlet : .utilityMeter,
                                                     nodeID: node, recordedAt: Self.recordedAt)
            #expect(template.verified)
            for _ in 0..<300 {
                let from = Int64.random(in: 1_600_000_000...1_900_000_000, using: &rng)
                let digits = Int.random(in: 0...9, using: &rng)
                let nanos = digits == 0 ? 0 : Int32.random(in: 0..<1_000_000_000, using: &rng) / Int32(pow(10, Double(9 - digits))) * Int32(pow(10, Double(9 - digits)))
                let window = TimeWindow(from: Timestamp(epochSeconds: from, nanoseconds: nanos, fractionDigits: digits),
                                        to: Timestamp(epochSeconds: from + Int64.random(in: 1...86_400, using: &rng), nanoseconds: 0, fractionDigits: 0))
                let energy = [0, 1e-7, 3600, 1e21, Double.random(in: 0...1e9, using: &rng)].randomElement(using: &rng)!
                let tier: Provenance = Bool.random(using: &rng) ? .measured : .estimated
                let device = devices.randomElement(using: &rng)!
                var line: [UInt8] = []
                let id = try template.appendLine(deviceID: device, window: window, energyJoules: energy, provenance: tier, to: &line)
                let expected = try builderLine(template, device: device, window: window, energy: energy, tier: tier)
                #expect(String(decoding: line, as: UTF8.self) == expected.jsonLine)
                #expect(id == expected.eventID)
            }
        }
    }

    @Test func whatTheTemplateCannotVouchForGetsTheValidatorsFindings() throws {
        let template = try FacilityEventTemplate(facilityID: "f", region: "r", gridRegion: nil, source: .pdu, pueApplied: false,
                                                 deviceClass: .pduInlet, recordedAt: Self.recordedAt)
        let t0 = Timestamp(epochSeconds: 1_700_000_000, nanoseconds: 0, fractionDigits: 0)
        let t1 = Timestamp(epochSeconds: 1_700_000_060, nanoseconds: 0, fractionDigits: 0)
        var line: [UInt8] = []
        func codes(_ body: () throws(EnergyEvent.Invalid) -> Void) -> [String] {
            do throws(EnergyEvent.Invalid) { try body(); return [] } catch { return error.findings.map(\.code.rawValue) }
        }
        #expect(codes { () throws(EnergyEvent.Invalid) in _ = try template.appendLine(deviceID: "m", window: TimeWindow(from: t1, to: t0), energyJoules: 1, provenance: .measured, to: &line) } == ["bad_window"])
        #expect(codes { () throws(EnergyEvent.Invalid) in _ = try template.appendLine(deviceID: "m", window: TimeWindow(from: t0, to: t1), energyJoules: -1, provenance: .measured, to: &line) } == ["bad_energy"])
        #expect(codes { () throws(EnergyEvent.Invalid) in _ = try template.appendLine(deviceID: "", window: TimeWindow(from: t0, to: t1), energyJoules: 1, provenance: .measured, to: &line) } == ["bad_device"])
        #expect(codes { () throws(EnergyEvent.Invalid) in _ = try template.appendLine(deviceID: "m", window: TimeWindow(from: t0, to: t1), energyJoules: 1, provenance: .modeled, to: &line) } == ["tier_source_mismatch"])
        #expect(line.isEmpty)
        #expect(codes { () throws(EnergyEvent.Invalid) in _ = try FacilityEventTemplate(facilityID: "", region: nil, gridRegion: nil, source: .pdu, pueApplied: false, deviceClass: .pduInlet, recordedAt: Self.recordedAt) }.isEmpty == false)
    }
}
