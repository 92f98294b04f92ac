import EmitContract

/// One operator window read from an export, before it becomes an event.
public struct FacilityWindow: Sendable {
    /// The row's line (CSV, JSON Lines) or element number (Green Button).
    public let position: Int
    public let meterID: String?
    public let window: TimeWindow
    public let energyJoules: Double
    public let provenance: Provenance

    public init(position: Int, meterID: String?, window: TimeWindow, energyJoules: Double, provenance: Provenance) {
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

    /// The event lines of this import's windows; throws the findings when the shared members
    /// (facility, region, source, pue_applied) are invalid.
    public func template(recordedAt: Timestamp) throws(EnergyEvent.Invalid) -> FacilityEventTemplate {
        try FacilityEventTemplate(facilityID: facilityID, region: region, gridRegion: gridRegion, source: source,
                                  pueApplied: pueApplied, deviceClass: meterClass, nodeID: nodeID, recordedAt: recordedAt)
    }
}

/// The good windows of one import, in file order, kept compactly (48 bytes a window: instants,
/// fraction digits, energy, tier, the meter as an index and the row's position) so that the file
/// is read once: every window is checked before any event is written (all or nothing), then the
/// events are written from here.
public struct ImportedWindows: Sendable {
    struct Row: Sendable {
        let fromSeconds: Int64, toSeconds: Int64
        let energyJoules: Double
        let position: Int
        let fromNanos: Int32, toNanos: Int32
        let meter: UInt32
        let fromDigits: UInt8, toDigits: UInt8, tier: UInt8
        var from: (Int64, Int32) { (fromSeconds, fromNanos) }
        var to: (Int64, Int32) { (toSeconds, toNanos) }
    }

    private static let noMeter = UInt32.max
    private var rows: [Row] = []
    private var meterNames: [String] = []
    private var meterIndex: [String: UInt32] = [:]
    private let describe: @Sendable (Int) -> String

    /// `describe` turns a row position back into "FILE:LINE" for messages.
    public init(describe: @escaping @Sendable (Int) -> String) {
        self.describe = describe
    }

    public var count: Int { rows.count }

    public mutating func add(_ window: FacilityWindow) {
        let w = window.window
        add(meterID: window.meterID, position: window.position, energyJoules: window.energyJoules, provenance: window.provenance,
            from: (w.from.epochSeconds, w.from.nanoseconds, Self.fractionDigits(w.from)),
            to: (w.to.epochSeconds, w.to.nanoseconds, Self.fractionDigits(w.to)))
    }

    /// A checked window from its parts (the CSV reader's fast path: no strings for timestamps).
    mutating func add(meterID: String?, position: Int, energyJoules: Double, provenance: Provenance,
                      from: (Int64, Int32, UInt8), to: (Int64, Int32, UInt8)) {
        var meter = Self.noMeter
        if let id = meterID {
            if let known = meterIndex[id] { meter = known } else {
                meter = UInt32(meterNames.count)
                meterIndex[id] = meter
                meterNames.append(id)
            }
        }
        rows.append(Row(fromSeconds: from.0, toSeconds: to.0, energyJoules: energyJoules, position: position,
                        fromNanos: from.1, toNanos: to.1, meter: meter, fromDigits: from.2, toDigits: to.2,
                        tier: provenance == .estimated ? 1 : 0))
    }

    /// "YYYY-MM-DDTHH:MM:SSZ" has none; "….fffZ" has as many as were given.
    static func fractionDigits(_ t: Timestamp) -> UInt8 {
        let count = t.text.utf8.count
        return count > 20 ? UInt8(count - 21) : 0
    }

    /// Window `i` as it was read (timestamps written with the digits they were given).
    public func window(_ i: Int) -> FacilityWindow {
        let r = rows[i]
        return FacilityWindow(
            position: r.position, meterID: r.meter == Self.noMeter ? nil : meterNames[Int(r.meter)],
            window: TimeWindow(from: Timestamp(epochSeconds: r.fromSeconds, nanoseconds: r.fromNanos, fractionDigits: Int(r.fromDigits)),
                               to: Timestamp(epochSeconds: r.toSeconds, nanoseconds: r.toNanos, fractionDigits: Int(r.toDigits))),
            energyJoules: r.energyJoules, provenance: r.tier == 1 ? .estimated : .measured)
    }

    static func text(_ instant: (Int64, Int32)) -> String {
        Timestamp(epochSeconds: instant.0, nanoseconds: instant.1, fractionDigits: instant.1 == 0 ? 0 : 9).text
    }

    /// Overlaps between windows of one meter (adjacent windows do not overlap) and the gaps.
    public func check() -> (overlaps: [ImportProblem], gaps: [String]) {
        var overlaps: [ImportProblem] = []
        var gaps: [String] = []
        var byMeter = [[UInt32]](repeating: [], count: meterNames.count + 1)
        for (i, row) in rows.enumerated() {
            byMeter[row.meter == Self.noMeter ? meterNames.count : Int(row.meter)].append(UInt32(i))
        }
        let order = (0...meterNames.count).sorted {
            ($0 == meterNames.count ? "" : meterNames[$0]) < ($1 == meterNames.count ? "" : meterNames[$1])
        }
        for m in order {
            let meter = m == meterNames.count ? "" : meterNames[m]
            let windows = byMeter[m].sorted { rows[Int($0)].from < rows[Int($1)].from }.map { rows[Int($0)] }
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
    static func window(path: String, position: Int, from: String?, to: String?, energy: String?, unit: EnergyUnit,
                       meterID: String?, provenance: String?, problems: inout [ImportProblem]) -> FacilityWindow? {
        var ok = true
        var location: String { "\(path):\(position)" }
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
        return FacilityWindow(position: position, meterID: meter, window: TimeWindow(from: start, to: end), energyJoules: joules, provenance: tier)
    }
}

import Foundation
