import EmitContract
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Green Button (NAESB ESPI) "Download My Data" XML: an Atom feed whose entries are linked by
/// `self`/`up`/`related` hrefs. A MeterReading relates to its ReadingType (unit, power-of-ten
/// multiplier, flow direction) and to the IntervalBlocks whose `up` is its IntervalBlock
/// collection. Only consumption is counted (flowDirection 1, forward/delivered); values are
/// `value × 10^powerOfTenMultiplier` in the ReadingType's unit (uom 72 = Wh); readings the
/// utility marks as not metered (quality 7 manually edited, 8 and 9 estimated, 12 projected)
/// become `estimated`. Real feeds repeat entries (a MeterReading listed twice): an entry repeated
/// under the same `self` link is read once, and a reading repeated with the same window, value
/// and quality is one reading; only different values for one window are an overlap.
public enum GreenButtonImport {
    /// One IntervalReading; a member that is missing or not a number is nil.
    struct Reading {
        let start: Int64?
        let duration: Int64?
        let value: Double?
        let quality: Int?
        let element: Int
    }

    struct Entry {
        var selfHref: String?
        var upHref: String?
        var related: [String] = []
        var title: String?
        var kind: String?               // MeterReading, ReadingType, IntervalBlock, UsagePoint, ...
        var fields: [String: String] = [:]   // ReadingType members
        var readings: [Reading] = []
    }

    /// ESPI ReadingQuality codes of values that are not sensor data: 7 manually edited, 8
    /// estimated using a reference day, 9 estimated by interpolation, 12 projected.
    public static let estimatedQualities: Set<Int> = [7, 8, 9, 12]

    /// One reading as the feed states it, to recognise an identical repeat.
    private struct ReadingKey: Hashable {
        let meter: String?
        let start: Int64
        let duration: Int64
        let value: Double
        let quality: Int?
    }

    /// The line of the first byte sequence that is not UTF-8, or nil when the text is UTF-8.
    static func firstLineNotUTF8(_ data: Data) -> Int? {
        let bytes = [UInt8](data)
        guard String(validating: bytes, as: UTF8.self) == nil else { return nil }
        var line = 1, start = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            if String(validating: bytes[start..<i], as: UTF8.self) == nil { return line }
            line += 1
            start = i + 1
        }
        return line
    }

    public static func read(path: String, problems: inout [ImportProblem], into windows: inout ImportedWindows) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EventFileError(path: path, reason: "cannot read the file")
        }
        // Feeds are UTF-8 (ESPI); other bytes are refused here, with their line, because
        // FoundationXML traps on some of them after libxml2 recovers (found by fuzzing).
        if let line = firstLineNotUTF8(data) {
            problems.append(ImportProblem(location: "\(path):\(line)", code: "bad_row", message: "not UTF-8 text (Green Button feeds are UTF-8 XML)"))
            return
        }
        let delegate = FeedReader()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        guard parser.parse() else {
            problems.append(ImportProblem(location: "\(path):\(parser.lineNumber)", code: "bad_row",
                message: "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "parse error")"))
            return
        }
        let entries = delegate.entries
        let readingTypes = Dictionary(entries.filter { $0.kind == "ReadingType" }.compactMap { e in e.selfHref.map { ($0, e) } }, uniquingKeysWith: { a, _ in a })
        var counted = 0
        var seenReadings = Set<ReadingKey>()
        var seenMeterReadings = Set<String>()
        for meterReading in entries where meterReading.kind == "MeterReading" {
            if let href = meterReading.selfHref, !seenMeterReadings.insert(href).inserted { continue }
            let name = meterReading.selfHref ?? meterReading.title ?? "MeterReading"
            guard let typeHref = meterReading.related.first(where: { readingTypes[$0] != nil }), let type = readingTypes[typeHref] else {
                problems.append(ImportProblem(location: "\(path): MeterReading \(name)", code: "bad_row", message: "no ReadingType is linked to this MeterReading"))
                continue
            }
            // Only consumption counts: a received (reverse) flow is export, not energy used.
            if let flow = type.fields["flowDirection"], flow != "1" { continue }
            guard type.fields["uom"] == "72" else {
                problems.append(ImportProblem(location: "\(path): ReadingType \(typeHref)", code: "bad_energy",
                    message: "uom \(type.fields["uom"] ?? "absent") is not energy in Wh (72)"))
                continue
            }
            let multiplier = Int(type.fields["powerOfTenMultiplier"] ?? "0") ?? 0
            let blocksHref = meterReading.related.first { $0.hasSuffix("/IntervalBlock") }
            var seenBlocks = Set<String>()
            for block in entries where block.kind == "IntervalBlock" && block.upHref != nil && block.upHref == blocksHref {
                if let href = block.selfHref, !seenBlocks.insert(href).inserted { continue }
                for reading in block.readings {
                    let location = "\(path): IntervalReading \(reading.element)"
                    guard let start = reading.start, let duration = reading.duration, let value = reading.value else {
                        let missing = [("timePeriod start", reading.start == nil), ("timePeriod duration", reading.duration == nil), ("value", reading.value == nil)]
                            .filter(\.1).map(\.0).joined(separator: ", ")
                        problems.append(ImportProblem(location: location, code: "bad_row", message: "\(missing): missing or not a number"))
                        continue
                    }
                    guard duration > 0 else {
                        problems.append(ImportProblem(location: location, code: "bad_window", message: "timePeriod duration \(duration) is not positive"))
                        continue
                    }
                    let wattHours = value * pow(10, Double(multiplier))
                    guard wattHours.isFinite, wattHours >= 0 else {
                        problems.append(ImportProblem(location: location, code: "bad_energy", message: "value \(value) × 10^\(multiplier) Wh is not >= 0"))
                        continue
                    }
                    let key = ReadingKey(meter: meterReading.selfHref ?? meterReading.title, start: start, duration: duration, value: value, quality: reading.quality)
                    guard seenReadings.insert(key).inserted else { continue }
                    let from = Timestamp(epochSeconds: start, nanoseconds: 0, fractionDigits: 0)
                    let to = Timestamp(epochSeconds: start + duration, nanoseconds: 0, fractionDigits: 0)
                    let tier: Provenance = reading.quality.map(estimatedQualities.contains) == true ? .estimated : .measured
                    windows.add(FacilityWindow(position: reading.element, meterID: meterReading.selfHref ?? meterReading.title,
                                              window: TimeWindow(from: from, to: to), energyJoules: wattHours * 3600, provenance: tier))
                    counted += 1
                }
            }
        }
        if counted == 0, problems.isEmpty {
            problems.append(ImportProblem(location: path, code: "bad_row", message: "no consumption IntervalReading found (flowDirection 1, uom 72)"))
        }
    }

    /// SAX reader keeping only what the import needs.
    final class FeedReader: NSObject, XMLParserDelegate {
        var entries: [Entry] = []
        private var current: Entry?
        private var path: [String] = []
        private var text = ""
        private var readingStart: Int64?
        private var readingDuration: Int64?
        private var readingValue: Double?
        private var readingQuality: Int?
        private var readingCount = 0
        private static let readingTypeFields: Set<String> = ["uom", "powerOfTenMultiplier", "flowDirection", "kind", "accumulationBehaviour"]
        private static let kinds: Set<String> = ["MeterReading", "ReadingType", "IntervalBlock", "UsagePoint"]

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let local = name.split(separator: ":").last.map(String.init) ?? name
            path.append(local)
            text = ""
            switch local {
            case "entry": current = Entry()
            case "link":
                guard let href = attributes["href"] else { break }
                switch attributes["rel"] {
                case "self": current?.selfHref = href
                case "up": current?.upHref = href
                case "related": current?.related.append(href)
                default: break
                }
            case "IntervalReading":
                readingStart = nil
                readingDuration = nil
                readingValue = nil
                readingQuality = nil
                readingCount += 1
            default:
                if Self.kinds.contains(local), path.count >= 2, path[path.count - 2] == "content" { current?.kind = local }
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            let local = name.split(separator: ":").last.map(String.init) ?? name
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let parent = path.count >= 2 ? path[path.count - 2] : ""
            switch local {
            case "title" where parent == "entry": current?.title = value
            case "start" where parent == "timePeriod": readingStart = Int64(value)
            case "duration" where parent == "timePeriod": readingDuration = Int64(value)
            case "value" where parent == "IntervalReading": readingValue = Double(value)
            case "quality" where parent == "ReadingQuality": readingQuality = Int(value)
            case "IntervalReading":
                current?.readings.append(Reading(start: readingStart, duration: readingDuration, value: readingValue, quality: readingQuality, element: readingCount))
            case "entry":
                if let current { entries.append(current) }
                current = nil
            default:
                if parent == "ReadingType", Self.readingTypeFields.contains(local) { current?.fields[local] = value }
            }
            path.removeLast()
            text = ""
        }
    }
}
