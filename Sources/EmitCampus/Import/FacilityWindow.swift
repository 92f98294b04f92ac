import EmitContract

/// One operator window read from an export, before it becomes an event.
public struct FacilityWindow: Sendable {
    public let location: String      // "FILE:LINE" or "FILE: IntervalReading N"
    /// The row's line (CSV, JSON Lines) or element number (Green Button).
    public let position: Int
    public let meterID: String?
    public let window: TimeWindow
    public let energyJoules: Double
    public let provenance: Provenance

    public init(location: String, position: Int, meterID: String?, window: TimeWindow, energyJoules: Double, provenance: Provenance) {
        self.location = location
        self.position = position
        self.meterID = meterID
        self.window = window
        self.energyJoules = energyJoules
        self.provenance = provenance
    }
}

/// A row that cannot become an event, with the contract's code where one fits
/// (`bad_timestamp`, `bad_window`, `bad_energy`, `bad_provenance`) or an import code
/// (`bad_header`, `bad_row`, `window_overlap`).
public struct ImportProblem: Sendable, Equatable, CustomStringConvertible {
    public let location: String
    public let code: String
    public let message: String
    public var description: String { "\(location): \(code): \(message)" }

    public init(location: String, code: String, message: String) {
        self.location = location
        self.code = code
        self.message = message
    }
}

/// What every import shares: the facility the windows belong to and how they are declared.
public struct FacilityImportSettings: Sendable {
    public var facilityID: String
    public var region: String?
    public var gridRegion: String?
    public var source: EnergySource
    public var pueApplied: Bool
    public var nodeID: String?

    public init(facilityID: String, region: String?, gridRegion: String?, source: EnergySource, pueApplied: Bool) {
        self.facilityID = facilityID
        self.region = region
        self.gridRegion = gridRegion
        self.source = source
        self.pueApplied = pueApplied
    }

    /// The device class an operator meter of this source gets.
    public var meterClass: DeviceClass {
        switch source {
        case .pdu: return .pduInlet
        case .ups: return .ups
        case .ipmi: return .node
        case .redfish: return .chassis
        default: return .utilityMeter
        }
    }

    public func event(for window: FacilityWindow, recordedAt: Timestamp) throws(EnergyEvent.Invalid) -> EnergyEvent {
        try FacilityWindowEventBuilder(
            facilityID: facilityID, region: region, gridRegion: gridRegion, source: source, provenance: window.provenance,
            window: window.window, energyJoules: window.energyJoules, pueApplied: pueApplied,
            device: window.meterID.map { Device(class: meterClass, id: $0) }
        ).build(recordedAt: recordedAt)
    }
}

/// Checks that no two windows of one meter overlap (adjacent windows do not) and finds gaps.
/// Memory is one 40-byte record per window: instants and the row's position, no strings.
public struct WindowLedger: Sendable {
    struct Span: Sendable {
        let fromSeconds: Int64, fromNanos: Int32
        let toSeconds: Int64, toNanos: Int32
        let position: Int
        var from: (Int64, Int32) { (fromSeconds, fromNanos) }
        var to: (Int64, Int32) { (toSeconds, toNanos) }
    }

    private var byMeter: [String: [Span]] = [:]
    private let describe: @Sendable (Int) -> String

    /// `describe` turns a row position back into "FILE:LINE" for messages.
    public init(describe: @escaping @Sendable (Int) -> String) {
        self.describe = describe
    }

    public mutating func add(_ window: FacilityWindow, position: Int) {
        let w = window.window
        byMeter[window.meterID ?? "", default: []].append(Span(
            fromSeconds: w.from.epochSeconds, fromNanos: w.from.nanoseconds, toSeconds: w.to.epochSeconds, toNanos: w.to.nanoseconds,
            position: position))
    }

    static func text(_ instant: (Int64, Int32)) -> String {
        Timestamp(epochSeconds: instant.0, nanoseconds: instant.1, fractionDigits: instant.1 == 0 ? 0 : 9).text
    }

    public func check() -> (overlaps: [ImportProblem], gaps: [String]) {
        var overlaps: [ImportProblem] = []
        var gaps: [String] = []
        for meter in byMeter.keys.sorted() {
            guard let windows = byMeter[meter]?.sorted(by: { $0.from < $1.from }) else { continue }
            for (a, b) in zip(windows, windows.dropFirst()) {
                if b.from < a.to {
                    overlaps.append(ImportProblem(location: describe(b.position), code: "window_overlap",
                        message: "\(Self.text(b.from))..\(Self.text(b.to)) overlaps \(Self.text(a.from))..\(Self.text(a.to)) of the same meter\(meter.isEmpty ? "" : " \(meter)") at \(describe(a.position))"))
                } else if a.to < b.from {
                    gaps.append("meter \(meter.isEmpty ? "(unnamed)" : meter): no window from \(Self.text(a.to)) to \(Self.text(b.from)) (a gap is reported, not filled)")
                }
            }
        }
        return (overlaps, gaps)
    }
}

/// Energy units an export may use, by column or member name.
public enum EnergyUnit: String, CaseIterable, Sendable {
    case joules = "energy_j"
    case wattHours = "energy_wh"
    case kilowattHours = "energy_kwh"
    case megawattHours = "energy_mwh"

    public var joulesPerUnit: Double {
        switch self {
        case .joules: return 1
        case .wattHours: return 3600
        case .kilowattHours: return 3_600_000
        case .megawattHours: return 3_600_000_000
        }
    }
}

/// Reads the fields every tabular row has, reporting each problem with its code.
enum RowReader {
    static func window(location: String, position: Int, from: String?, to: String?, energy: String?, unit: EnergyUnit,
                       meterID: String?, provenance: String?, problems: inout [ImportProblem]) -> FacilityWindow? {
        var ok = true
        func time(_ text: String?, _ name: String) -> Timestamp? {
            guard let text, !text.isEmpty else {
                problems.append(ImportProblem(location: location, code: "bad_timestamp", message: "\(name) is empty"))
                ok = false
                return nil
            }
            do { return try Timestamp(rfc3339: text) } catch {
                problems.append(ImportProblem(location: location, code: "bad_timestamp", message: "\(name): \(error)"))
                ok = false
                return nil
            }
        }
        let start = time(from, "valid_from"), end = time(to, "valid_to")
        if let start, let end, !(start < end) {
            problems.append(ImportProblem(location: location, code: "bad_window", message: "valid_to \(end.text) is not after valid_from \(start.text)"))
            ok = false
        }
        var joules: Double?
        let energyText = energy?.trimmingSpaces ?? ""
        if let value = Double(energyText), value.isFinite, value >= 0, !energyText.contains(where: { $0 == "n" || $0 == "N" || $0 == "x" || $0 == "X" }) {
            joules = value * unit.joulesPerUnit
        } else {
            problems.append(ImportProblem(location: location, code: "bad_energy",
                message: "\(unit.rawValue) \"\(energyText)\" is not a finite number >= 0"))
            ok = false
        }
        var tier = Provenance.measured
        if let provenance, !provenance.isEmpty {
            if provenance == "measured" || provenance == "estimated", let parsed = Provenance(rawValue: provenance) { tier = parsed } else {
                problems.append(ImportProblem(location: location, code: "bad_provenance", message: "provenance must be measured or estimated, not \"\(provenance)\""))
                ok = false
            }
        }
        guard ok, let start, let end, let joules else { return nil }
        let meter = meterID?.isEmpty == false ? meterID : nil
        return FacilityWindow(location: location, position: position, meterID: meter, window: TimeWindow(from: start, to: end), energyJoules: joules, provenance: tier)
    }
}

import Foundation
