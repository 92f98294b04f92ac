import EmitContract

/// A Redfish service's failure to answer as needed, in words.
public struct RedfishFailure: Error, CustomStringConvertible {
    public let description: String
}

/// One figure a chassis offers: an energy counter or a power reading, and where to read it.
public struct RedfishReading: Sendable, Equatable {
    /// Chosen by `ReadingType` (or the property's own name), never by `ReadingUnits`: services
    /// write "kW" or "kWh" where DSP0268 says "kW.h".
    public enum Kind: Sendable, Equatable {
        case energyJoules, energyWh, energykWh, powerWatts

        var isCounter: Bool { self != .powerWatts }
        /// Joules (counters) or watts (power) per unit of the reading.
        var scale: Double {
            switch self {
            case .energyJoules, .powerWatts: return 1
            case .energyWh: return 3600
            case .energykWh: return 3_600_000
            }
        }
        /// The units DSP0268 gives for the reading type (UCUM), and what services write instead.
        var units: (standard: String, accepted: Set<String>) {
            switch self {
            case .energyJoules: return ("J", ["J"])
            case .energyWh: return ("W.h", ["W.h", "Wh"])
            case .energykWh: return ("kW.h", ["kW.h", "kWh"])
            case .powerWatts: return ("W", ["W"])
            }
        }
    }

    public let kind: Kind
    /// Resource paths and the member path to the number inside each; several are summed (one
    /// counter per power supply).
    public let sources: [(path: String, member: [String])]
    /// Where it came from, for `emit sensors` and the stderr summary.
    public let label: String
    /// What a person should know about it (a unit that disagrees with the reading type).
    public var note: String?

    public static func == (a: RedfishReading, b: RedfishReading) -> Bool {
        a.kind == b.kind && a.label == b.label && a.sources.map(\.path) == b.sources.map(\.path)
            && a.sources.map(\.member) == b.sources.map(\.member) && a.note == b.note
    }
}

/// One chassis as discovery saw it: for `emit sensors`, and to say which chassis contain which.
public struct RedfishChassis: Sendable, Equatable {
    public let id: String
    public let path: String
    /// Chassis ids in its `Links.Contains`.
    public let contains: [String]
    /// Reachable only through another chassis's `Links.Contains`, not listed in the collection.
    public let onlyThroughContains: Bool
    public let counter: RedfishReading?
    public let power: RedfishReading?
}

/// What emit reads from a Redfish service's documents: the chassis and the readings each offers.
/// Apart from HTTP (`fetch` gives a resource's JSON), so the same code reads a live BMC and,
/// in the fuzz target `redfish`, any set of documents at all.
struct RedfishDocuments {
    let fetch: (String) throws(RedfishFailure) -> JSONValue

    func get(_ path: String) throws(RedfishFailure) -> JSONValue { try fetch(path) }

    static func number(in document: JSONValue, at member: [String]) -> Double? {
        var node: JSONValue? = document
        for key in member {
            if let index = Int(key), case .array(let items)? = node {
                node = index < items.count ? items[index] : nil
            } else {
                node = node?[key]
            }
        }
        return node?.numberValue
    }

    static func link(_ document: JSONValue, _ key: String) -> String? {
        document[key]?["@odata.id"]?.stringValue
    }

    func members(_ path: String) throws(RedfishFailure) -> [String] {
        guard case .array(let items)? = try get(path)["Members"] else { return [] }
        return items.compactMap { $0["@odata.id"]?.stringValue }
    }

    /// Every chassis the service shows: the collection's members, then those reachable only
    /// through `Links.Contains`, each with its best counter and power reading.
    func survey() throws(RedfishFailure) -> (chassis: [RedfishChassis], unreadable: [String]) {
        // A collection that lists a member twice (seen by fuzzing; services have bugs) shows it once.
        var seen = Set<String>()
        var queue = try members("/redfish/v1/Chassis").filter { seen.insert(Self.trimmed($0)).inserted }.map { ($0, false) }
        var found: [RedfishChassis] = [], unreadable: [String] = []
        var next = 0
        while next < queue.count {
            let (path, onlyThroughContains) = queue[next]
            next += 1
            // Collections may list members a service cannot serve: one bad chassis is skipped.
            let document: JSONValue
            do { document = try get(path) } catch { unreadable.append(error.description); continue }
            var contains: [String] = []
            if case .array(let links)? = document["Links"]?["Contains"] {
                for link in links.compactMap({ $0["@odata.id"]?.stringValue }) {
                    contains.append(Self.lastComponent(link))
                    if seen.insert(Self.trimmed(link)).inserted { queue.append((link, true)) }
                }
            }
            let id = document["Id"]?.stringValue ?? Self.lastComponent(path)
            let offered = readings(of: document)
            found.append(RedfishChassis(id: id, path: Self.trimmed(path), contains: contains, onlyThroughContains: onlyThroughContains,
                                        counter: offered.first { $0.kind.isCounter }, power: offered.first { !$0.kind.isCounter }))
        }
        return (found, unreadable)
    }

    static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    static func lastComponent(_ path: String) -> String {
        String(trimmed(path).split(separator: "/").last ?? "")
    }

    /// A sensor's reading kind from its `ReadingType`, and a note when `ReadingUnits` disagrees.
    static func kind(ofSensor sensor: JSONValue, name: String) -> (RedfishReading.Kind, String?)? {
        let kind: RedfishReading.Kind
        switch sensor["ReadingType"]?.stringValue {
        case "EnergyJoules": kind = .energyJoules
        case "EnergyWh": kind = .energyWh
        case "EnergykWh": kind = .energykWh
        case "Power": kind = .powerWatts
        default: return nil
        }
        guard let units = sensor["ReadingUnits"]?.stringValue, !kind.units.accepted.contains(units) else { return (kind, nil) }
        return (kind, "\(name): ReadingUnits \"\(units)\" disagrees with ReadingType \(sensor["ReadingType"]?.stringValue ?? ""); read by ReadingType as \(kind.units.standard)")
    }

    /// Whether a sensor speaks for an output (a supply's output, a PDU's outlet side) rather than
    /// what the chassis draws. Names are the only hint some services give (`ps1_energy_out`).
    static func isOutput(_ sensor: JSONValue) -> Bool {
        if sensor["PhysicalSubContext"]?.stringValue == "Output" { return true }
        let name = (sensor["Id"]?.stringValue ?? "") + " " + (sensor["Name"]?.stringValue ?? "")
        let tokens = name.lowercased().split { !$0.isLetter && !$0.isNumber }
        return tokens.contains("out") || tokens.contains("output") || tokens.contains("pout")
    }

    /// The sensors a chassis's power equipment (`Links.PowerDistribution`: a rack PDU, a power
    /// shelf, a transfer switch) names as the source of its own power and energy
    /// (`Metrics.PowerWatts.DataSourceUri`, `EnergykWh.DataSourceUri`). A PDU can list more than
    /// one sensor that calls itself the chassis-wide total (DMTF's public-pdu sample lists a
    /// 28.8 kW `ACMainPower` and serves, unlisted, the 2.7 kW `PDUPower` its metrics point at):
    /// the device's own word decides, not the order of the collection.
    func sensorsNamedByPowerEquipment(of chassis: JSONValue) -> Set<String> {
        guard let links = chassis["Links"], let equipmentPath = Self.link(links, "PowerDistribution"),
              let equipment = try? get(equipmentPath), let metricsPath = Self.link(equipment, "Metrics"),
              let metrics = try? get(metricsPath) else { return [] }
        return Set(["PowerWatts", "EnergykWh", "EnergyJoules"].compactMap { metrics[$0]?["DataSourceUri"]?.stringValue }.map { Self.trimmed($0) })
    }

    /// Every reading the chassis offers, best first: counters, then power.
    func readings(of chassis: JSONValue) -> [RedfishReading] {
        var counters: [RedfishReading] = [], power: [RedfishReading] = []
        if let metricsPath = Self.link(chassis, "EnvironmentMetrics"), let metrics = try? get(metricsPath) {
            if Self.number(in: metrics, at: ["EnergyJoules", "Reading"]) != nil {
                counters.append(RedfishReading(kind: .energyJoules, sources: [(metricsPath, ["EnergyJoules", "Reading"])], label: "EnvironmentMetrics.EnergyJoules"))
            }
            if Self.number(in: metrics, at: ["EnergykWh", "Reading"]) != nil {
                counters.append(RedfishReading(kind: .energykWh, sources: [(metricsPath, ["EnergykWh", "Reading"])], label: "EnvironmentMetrics.EnergykWh"))
            }
            if Self.number(in: metrics, at: ["PowerWatts", "Reading"]) != nil {
                power.append(RedfishReading(kind: .powerWatts, sources: [(metricsPath, ["PowerWatts", "Reading"])], label: "EnvironmentMetrics.PowerWatts"))
            }
        }
        // The finest unit first: J, then Wh, then kWh.
        let rank: (RedfishReading) -> Int = { [.energyJoules: 0, .energyWh: 1, .energykWh: 2][$0.kind] ?? 3 }
        var supplyEnergy: [(kind: RedfishReading.Kind, path: String, note: String?)] = []
        // DSP0268 fixes the collection's URI; a service that forgets the link still serves it.
        let ownPath = chassis["@odata.id"]?.stringValue.map { Self.trimmed($0) + "/Sensors" }
        let namedByEquipment = sensorsNamedByPowerEquipment(of: chassis)
        if let sensorsPath = Self.link(chassis, "Sensors") ?? ownPath {
            var wholeCounters: [(rank: Int, reading: RedfishReading)] = [], wholePower: [(rank: Int, reading: RedfishReading)] = []
            let listed = (try? members(sensorsPath)) ?? []
            // A sensor the equipment names is read even when the collection does not list it
            // (DMTF's public-pdu sample serves PDUPower but leaves it out of Sensors).
            let listedPaths = Set(listed.map { Self.trimmed($0) })
            for sensorPath in listed + namedByEquipment.sorted().filter({ !listedPaths.contains($0) }) {
                guard let sensor = try? get(sensorPath), Self.number(in: sensor, at: ["Reading"]) != nil else { continue }
                if let state = sensor["Status"]?["State"]?.stringValue, state != "Enabled" { continue }
                let id = sensor["Id"]?.stringValue ?? Self.lastComponent(sensorPath)
                let name = "Sensor \(id) (\(sensor["ReadingType"]?.stringValue ?? "?"))"
                guard let (kind, note) = Self.kind(ofSensor: sensor, name: name), !Self.isOutput(sensor) else { continue }
                let context = sensor["PhysicalContext"]?.stringValue
                if context == "PowerSupply" {
                    if kind.isCounter { supplyEnergy.append((kind, sensorPath, note)) }
                    continue
                }
                // Per-CPU, per-outlet or per-phase sensors are parts; only a chassis-wide total is the whole.
                guard context == nil || context == "Chassis" || context == "SystemBoard" else { continue }
                let electrical = sensor["ElectricalContext"]?.stringValue
                guard electrical == nil || electrical == "Total" else { continue }
                let reading = RedfishReading(kind: kind, sources: [(sensorPath, ["Reading"])], label: name, note: note)
                if kind.isCounter {
                    wholeCounters.append((namedByEquipment.contains(Self.trimmed(sensorPath)) ? 0 : 1, reading))
                } else {
                    // The one the chassis's power equipment names as its source first, then a
                    // stated total, then one whose name says total or chassis, then the rest.
                    let tokens = id.lowercased().split { !$0.isLetter && !$0.isNumber }
                    let named = tokens.contains("total") || tokens.contains("chassis")
                    let rank = namedByEquipment.contains(Self.trimmed(sensorPath)) ? 0 : electrical == "Total" ? 1 : named ? 2 : 3
                    wholePower.append((rank, reading))
                }
            }
            // The finest unit first; within a unit, the one the power equipment names.
            counters += wholeCounters.enumerated().sorted {
                (rank($0.element.reading), $0.element.rank, $0.offset) < (rank($1.element.reading), $1.element.rank, $1.offset)
            }.map(\.element.reading)
            power += wholePower.enumerated().sorted { ($0.element.rank, $0.offset) < ($1.element.rank, $1.offset) }.map(\.element.reading)
        }
        // Parts, only where they are complete: one reading per present supply.
        var presentSupplies: Int?
        var supplyMetrics: [(String, [String])] = []
        let subsystems = [Self.link(chassis, "PowerSubsystem"), chassis["@odata.id"]?.stringValue.map { Self.trimmed($0) + "/PowerSubsystem" }]
        if let suppliesPath = subsystems.lazy.compactMap({ $0 }).compactMap({ try? self.get($0) }).compactMap({ Self.link($0, "PowerSupplies") }).first {
            var complete = true, present = 0
            for supplyPath in (try? members(suppliesPath)) ?? [] {
                guard let supply = try? get(supplyPath) else { complete = false; continue }
                if let state = supply["Status"]?["State"]?.stringValue, state == "Absent" { continue }
                present += 1
                guard let metricsPath = Self.link(supply, "Metrics"), let metrics = try? get(metricsPath),
                      Self.number(in: metrics, at: ["EnergykWh", "Reading"]) != nil else { complete = false; continue }
                supplyMetrics.append((metricsPath, ["EnergykWh", "Reading"]))
            }
            presentSupplies = present
            if !complete { supplyMetrics = [] }
        }
        for kind in [RedfishReading.Kind.energyJoules, .energyWh, .energykWh] {
            let parts = supplyEnergy.filter { $0.kind == kind }
            // A sum missing a present supply would under-count: parts only when they match the supplies.
            guard !parts.isEmpty, presentSupplies == parts.count else { continue }
            let label = parts.count == 1 ? "supply Sensor \(Self.lastComponent(parts[0].path)) (\(kind.units.standard))"
                : "\(parts.count) supply Sensors (\(kind.units.standard)) summed"
            counters.append(RedfishReading(kind: kind, sources: parts.map { ($0.path, ["Reading"]) }, label: label,
                                           note: parts.compactMap(\.note).first))
        }
        if !supplyMetrics.isEmpty {
            counters.append(RedfishReading(kind: .energykWh, sources: supplyMetrics, label: "PowerSupplyMetrics.EnergykWh of \(supplyMetrics.count) supplies"))
        }
        if let legacyPath = Self.link(chassis, "Power"), let legacy = try? get(legacyPath),
           Self.number(in: legacy, at: ["PowerControl", "0", "PowerConsumedWatts"]) != nil {
            power.append(RedfishReading(kind: .powerWatts, sources: [(legacyPath, ["PowerControl", "0", "PowerConsumedWatts"])], label: "Power.PowerControl[0].PowerConsumedWatts"))
        }
        return counters + power
    }
}
