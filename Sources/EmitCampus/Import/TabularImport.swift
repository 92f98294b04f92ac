import EmitContract
import Foundation

/// Operator windows from CSV (header-named columns in any order, RFC 4180 quoting, a UTF-8 BOM,
/// CRLF and blank lines accepted) or JSON Lines with the same members.
public enum TabularImport {
    public enum Format: String, Sendable, CaseIterable {
        case csv, jsonl
    }

    static let known = Set(["valid_from", "valid_to", "meter_id", "provenance"] + EnergyUnit.allCases.map(\.rawValue))

    /// Reads `path` into `windows` (every good row); every bad row is a problem.
    public static func read(path: String, format: Format, problems: inout [ImportProblem], into windows: inout ImportedWindows) throws {
        switch format {
        case .csv: try readCSV(path: path, problems: &problems, into: &windows)
        case .jsonl: try readJSONLines(path: path, problems: &problems) { windows.add($0) }
        }
    }

    /// Where a row's fields are, from the header: the fast path's plan.
    struct Columns {
        let count: Int
        let from: Int, to: Int, energy: Int
        let meter: Int?, provenance: Int?
        let unit: EnergyUnit
    }

    /// A plain row (no quotes, the right number of fields, every value well formed) read straight
    /// from its bytes; nil sends the row down the general path, which gives any problem its
    /// message. Most rows of real exports take this path.
    static func fastRow(_ line: UnsafeBufferPointer<UInt8>, position: Int, _ c: Columns, fields: inout [Range<Int>],
                        into windows: inout ImportedWindows) -> Bool {
        var end = line.count
        if end > 0, line[end - 1] == 0x0D { end -= 1 }
        fields.removeAll(keepingCapacity: true)
        var start = 0
        for i in 0...end {
            if i == end || line[i] == 0x2C {
                fields.append(start..<i)
                guard fields.count <= c.count else { return false }
                start = i + 1
            } else if line[i] == 0x22 {
                return false
            }
        }
        guard fields.count == c.count else { return false }
        func slice(_ i: Int) -> UnsafeBufferPointer<UInt8> {
            var a = fields[i].lowerBound, b = fields[i].upperBound
            while a < b, line[a] == 0x20 || line[a] == 0x09 { a += 1 }
            while b > a, line[b - 1] == 0x20 || line[b - 1] == 0x09 { b -= 1 }
            return UnsafeBufferPointer(rebasing: line[a..<b])
        }
        guard let from = Timestamp.instant(rfc3339: slice(c.from)), let to = Timestamp.instant(rfc3339: slice(c.to)),
              (from.seconds, from.nanoseconds) < (to.seconds, to.nanoseconds) else { return false }
        let energyBytes = slice(c.energy)
        guard !energyBytes.isEmpty, energyBytes.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x65 || $0 == 0x45 || $0 == 0x2B || $0 == 0x2D }),
              let value = Double(String(decoding: energyBytes, as: UTF8.self)), value.isFinite, value >= 0 else { return false }
        var tier = Provenance.measured
        if let p = c.provenance {
            let bytes = slice(p)
            if bytes.elementsEqual("estimated".utf8) { tier = .estimated } else if !bytes.isEmpty, !bytes.elementsEqual("measured".utf8) { return false }
        }
        var meter: String?
        if let m = c.meter {
            let bytes = slice(m)
            if !bytes.isEmpty { meter = String(decoding: bytes, as: UTF8.self) }
        }
        windows.add(meterID: meter, position: position, energyJoules: value * c.unit.joulesPerUnit, provenance: tier,
                    from: (from.seconds, from.nanoseconds, UInt8(from.fractionDigits)), to: (to.seconds, to.nanoseconds, UInt8(to.fractionDigits)))
        return true
    }

    static func readCSV(path: String, problems: inout [ImportProblem], into windows: inout ImportedWindows) throws {
        var plan: Columns?
        var fieldBounds: [Range<Int>] = []   // reused by every plain row
        var header: [String]?
        var columns: [String: Int] = [:]
        var unit: EnergyUnit?
        var pending = ""          // a record whose quoted field spans lines
        var pendingLine = 0
        var headerBroken = false
        try EventFileReader.forEachLine(path: path) { number, bytes in
            if let plan, pending.isEmpty, fastRow(bytes, position: number, plan, fields: &fieldBounds, into: &windows) { return }
            var text = String(decoding: bytes, as: UTF8.self)
            if header == nil, pending.isEmpty, text.hasPrefix("\u{FEFF}") { text.removeFirst() }
            if pending.isEmpty { pendingLine = number } else { text = pending + "\n" + text }
            guard text.utf8.reduce(0, { $0 + ($1 == 0x22 ? 1 : 0) }) % 2 == 0 else { pending = text; return }
            pending = ""
            var location: String { "\(path):\(pendingLine)" }
            let fields: [String]
            switch parseRecord(text) {
            case .failure(let reason):
                problems.append(ImportProblem(location: location, code: "bad_row", message: reason.description))
                return
            case .success(let parsed): fields = parsed
            }
            guard let names = header else {
                let names = fields.map { $0.trimmingSpaces.lowercased() }
                header = names
                headerBroken = !checkHeader(names, location: location, columns: &columns, unit: &unit, problems: &problems)
                if !headerBroken, let unit, let from = columns["valid_from"], let to = columns["valid_to"], let energy = columns[unit.rawValue] {
                    plan = Columns(count: names.count, from: from, to: to, energy: energy, meter: columns["meter_id"],
                                   provenance: columns["provenance"], unit: unit)
                }
                return
            }
            guard !headerBroken, let unit else { return }
            guard fields.count == names.count else {
                problems.append(ImportProblem(location: location, code: "bad_row", message: "\(fields.count) fields, the header has \(names.count)"))
                return
            }
            func field(_ name: String) -> String? { columns[name].map { fields[$0].trimmingSpaces } }
            if let good = RowReader.window(path: path, position: pendingLine, from: field("valid_from"), to: field("valid_to"), energy: field(unit.rawValue),
                                           unit: unit, meterID: field("meter_id"), provenance: field("provenance"), problems: &problems) {
                windows.add(good)
            }
        }
        if !pending.isEmpty {
            problems.append(ImportProblem(location: "\(path):\(pendingLine)", code: "bad_row", message: "a quoted field is never closed"))
        }
        if header == nil {
            problems.append(ImportProblem(location: "\(path):1", code: "bad_header", message: "the file is empty: a header with valid_from, valid_to and one energy column is required"))
        }
    }

    static func checkHeader(_ names: [String], location: String, columns: inout [String: Int], unit: inout EnergyUnit?,
                            problems: inout [ImportProblem]) -> Bool {
        var ok = true
        for (index, name) in names.enumerated() {
            if columns[name] != nil {
                problems.append(ImportProblem(location: location, code: "bad_header", message: "column \"\(name)\" appears twice"))
                ok = false
            }
            columns[name] = index
            if !known.contains(name) {
                problems.append(ImportProblem(location: location, code: "bad_header", message: "unknown column \"\(name)\" (known: \(known.sorted().joined(separator: ", ")))"))
                ok = false
            }
        }
        for required in ["valid_from", "valid_to"] where columns[required] == nil {
            problems.append(ImportProblem(location: location, code: "bad_header", message: "missing column \(required)"))
            ok = false
        }
        let units = EnergyUnit.allCases.filter { columns[$0.rawValue] != nil }
        if units.count != 1 {
            problems.append(ImportProblem(location: location, code: "bad_header",
                message: "exactly one energy column is required (energy_j, energy_wh, energy_kwh or energy_mwh); found \(units.count)"))
            ok = false
        }
        unit = units.first
        return ok
    }

    struct RecordError: Error, CustomStringConvertible { let description: String }

    /// One RFC 4180 record: comma-separated, fields optionally in double quotes with `""` escapes.
    /// Works on UTF-8 bytes: quotes and commas are ASCII, so multi-byte text passes through whole.
    static func parseRecord(_ text: String) -> Result<[String], RecordError> {
        var bytes = Array(text.utf8)
        if bytes.last == 0x0D { bytes.removeLast() }
        var fields: [String] = []
        var current: [UInt8] = []
        var inQuotes = false
        var wasQuoted = false
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if inQuotes {
                if c == 0x22 {
                    if i + 1 < bytes.count, bytes[i + 1] == 0x22 { current.append(0x22); i += 1 } else { inQuotes = false }
                } else {
                    current.append(c)
                }
            } else if c == 0x22 {
                guard current.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else {
                    return .failure(RecordError(description: "a quote inside an unquoted field"))
                }
                current.removeAll(keepingCapacity: true)
                inQuotes = true
                wasQuoted = true
            } else if c == 0x2C {
                fields.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
                wasQuoted = false
            } else {
                if wasQuoted, c != 0x20 { return .failure(RecordError(description: "text after a closing quote")) }
                current.append(c)
            }
            i += 1
        }
        fields.append(String(decoding: current, as: UTF8.self))
        return .success(fields)
    }

    static func readJSONLines(path: String, problems: inout [ImportProblem], window: (FacilityWindow) throws -> Void) throws {
        try EventFileReader.forEachLine(path: path) { number, bytes in
            let location = "\(path):\(number)"
            let value: JSONValue
            do { value = try JSONParser.parse(bytes) } catch {
                problems.append(ImportProblem(location: location, code: "bad_row", message: "not JSON: \(error)"))
                return
            }
            guard case let .object(members) = value else {
                problems.append(ImportProblem(location: location, code: "bad_row", message: "a row must be a JSON object"))
                return
            }
            let unknown = members.map(\.0).filter { !known.contains($0) }
            if !unknown.isEmpty {
                problems.append(ImportProblem(location: location, code: "bad_row", message: "unknown member(s) \(unknown.joined(separator: ", "))"))
                return
            }
            let units = EnergyUnit.allCases.filter { value[$0.rawValue] != nil }
            guard units.count == 1, let unit = units.first else {
                problems.append(ImportProblem(location: location, code: "bad_row", message: "exactly one of energy_j, energy_wh, energy_kwh, energy_mwh is required"))
                return
            }
            func text(_ name: String) -> String? {
                switch value[name] {
                case let .string(s)?: return s
                case let .number(n)?: return JSONWriter.formatNumber(n)
                case nil: return nil
                case let other?: return JSONWriter.line(other)
                }
            }
            if let good = RowReader.window(path: path, position: number, from: text("valid_from"), to: text("valid_to"), energy: text(unit.rawValue),
                                           unit: unit, meterID: text("meter_id"), provenance: text("provenance"), problems: &problems) {
                try window(good)
            }
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs; the common case (none) costs two byte reads.
    var trimmingSpaces: String {
        let bytes = utf8
        guard let first = bytes.first, let last = bytes.last else { return self }
        if first != 0x20, first != 0x09, last != 0x20, last != 0x09 { return self }
        let start = bytes.firstIndex { $0 != 0x20 && $0 != 0x09 } ?? bytes.endIndex
        guard start != bytes.endIndex, let end = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        return String(self[start...end])
    }
}
