import EmitContract
import Foundation

/// The invariant suite behind `emit check`: event files validate, invalid fixtures raise exactly
/// their declared codes, authored text is provider-brand-free, JSON documents name no concept the
/// cloud owns, and source code stays observation-only.
public struct InvariantSuite: Sendable {
    public let validator: Validator
    public let brands: BrandDenylist

    /// The fixture sidecar suffix: `NAME.jsonl` declares its expected codes in `NAME.expect.json`.
    public static let expectationSuffix = ".expect.json"
    /// The denylist file names brands on purpose; it is the one text exempt from the brand scan.
    public static let denylistFileName = "brand-denylist.txt"

    public init(validator: Validator = .standard, brands: BrandDenylist = .standard) {
        self.validator = validator
        self.brands = brands
    }

    public struct UnreadablePath: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Runs every check over the files under `paths` (files or directories), in path order. A
    /// file found in a folder that holds binary data is skipped (an image beside the docs); a
    /// file named itself is always checked, and binary content there is a finding.
    public func run(paths: [String]) throws -> [CheckFinding] {
        var findings: [CheckFinding] = []
        let named = Set(paths)
        for file in try Self.files(under: paths) {
            findings += try check(file: file, named: named.contains(file))
        }
        return findings
    }

    static func files(under paths: [String]) throws -> [String] {
        let fm = FileManager.default
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw UnreadablePath(path: path, reason: "no such file or directory")
            }
            guard isDirectory.boolValue else { files.append(path); continue }
            guard let walker = fm.enumerator(atPath: path) else {
                throw UnreadablePath(path: path, reason: "cannot list directory")
            }
            var found: [String] = []
            while let relative = walker.nextObject() as? String {
                let name = (relative as NSString).lastPathComponent
                if name.hasPrefix(".") || name == "__pycache__" {
                    walker.skipDescendants()
                    continue
                }
                let full = (path as NSString).appendingPathComponent(relative)
                var dir: ObjCBool = false
                if fm.fileExists(atPath: full, isDirectory: &dir), !dir.boolValue { found.append(full) }
            }
            files += found.sorted()
        }
        return files
    }

    func check(file: String, named: Bool = false) throws -> [CheckFinding] {
        let bytes = try EventFileReader.readAll(path: file)
        if let nul = bytes.firstIndex(of: 0) {
            guard named else { return [] }  // binary data found in a folder: nothing authored to read
            let line = bytes[..<nul].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            return [CheckFinding(file: file, line: line, code: "binary_content", message: "a NUL byte at offset \(nul): binary data where text is expected")]
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return [CheckFinding(file: file, line: 1, code: "invalid_text", message: "not valid UTF-8")]
        }
        let name = (file as NSString).lastPathComponent
        let ext = (name as NSString).pathExtension.lowercased()
        if ObservationRules.sourceExtensions.contains(ext) {
            return try ObservationRules.scan(text: text, file: file)
        }
        var findings: [CheckFinding] = []
        if name != Self.denylistFileName { findings += brandFindings(text: text, file: file) }
        guard ["json", "jsonl", "ndjson"].contains(ext), !name.hasSuffix(Self.expectationSuffix) else { return findings }

        let sidecar = Self.sidecarPath(for: file)
        if FileManager.default.fileExists(atPath: sidecar) {
            return findings + expectationFindings(file: file, sidecar: sidecar)
        }
        if ext == "json", let document = try? JSONParser.parse(bytes), !(document.isEventShaped) {
            return findings + documentFindings(document, file: file, text: text)
        }
        return findings + eventFindings(file: file)
    }

    static func sidecarPath(for file: String) -> String {
        ((file as NSString).deletingPathExtension) + expectationSuffix
    }

    func brandFindings(text: String, file: String) -> [CheckFinding] {
        var findings: [CheckFinding] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for match in brands.matches(in: String(line)) {
                findings.append(CheckFinding(file: file, line: index + 1, code: ErrorCode.brandName.rawValue,
                    message: "column \(match.column): provider brand \"\(match.token)\"; emit's authored text stays provider-brand-free"))
            }
        }
        return findings
    }

    /// Every event must validate; findings carry the validator's own codes.
    func eventFindings(file: String) -> [CheckFinding] {
        var findings: [CheckFinding] = []
        do {
            try EventFileReader.forEachRecord(path: file) { record in
                let (position, problems) = validate(record)
                findings += problems.map { CheckFinding(file: file, line: position, code: $0.code.rawValue, message: "\($0.path): \($0.message)") }
            }
        } catch {
            findings.append(CheckFinding(file: file, line: 1, code: "unreadable", message: "\(error)"))
        }
        return findings
    }

    func validate(_ record: EventRecord) -> (Int, [Finding]) { validator.findings(of: record) }

    /// An invalid fixture must raise exactly the codes its sidecar declares, every event of it.
    func expectationFindings(file: String, sidecar: String) -> [CheckFinding] {
        let expectation: FixtureExpectation
        do { expectation = try FixtureExpectation(path: sidecar) } catch {
            return [CheckFinding(file: sidecar, line: 1, code: "bad_expectation", message: "\(error)")]
        }
        var findings: [CheckFinding] = []
        var count = 0
        do {
            try EventFileReader.forEachRecord(path: file) { record in
                count += 1
                let (position, problems) = validate(record)
                let raised = Set(problems.map(\.code.rawValue))
                if raised != expectation.codes {
                    let missing = expectation.codes.subtracting(raised).sorted()
                    let extra = raised.subtracting(expectation.codes).sorted()
                    var parts: [String] = []
                    if !missing.isEmpty { parts.append("expected but not raised: \(missing.joined(separator: ", "))") }
                    if !extra.isEmpty { parts.append("raised but not declared: \(extra.joined(separator: ", "))") }
                    findings.append(CheckFinding(file: file, line: position, code: "fixture_expectation", message: parts.joined(separator: "; ")))
                }
            }
        } catch {
            findings.append(CheckFinding(file: file, line: 1, code: "unreadable", message: "\(error)"))
        }
        if count == 0 {
            findings.append(CheckFinding(file: file, line: 1, code: "fixture_expectation", message: "the fixture holds no event"))
        }
        return findings
    }

    /// Non-event JSON (the schema, the coefficient table): no member name may name a concept the
    /// cloud owns, and a coefficient table must load.
    func documentFindings(_ document: JSONValue, file: String, text: String) -> [CheckFinding] {
        var findings: [CheckFinding] = []
        var names: [String] = []
        Self.collectMemberNames(document, into: &names)
        for name in Set(names).sorted() {
            if let token = ObservationOnly.forbiddenToken(inLabelKey: name) {
                findings.append(CheckFinding(file: file, line: Self.line(of: "\"\(name)\"", in: text), code: "forbidden_field",
                    message: "member \"\(name)\" names \"\(token)\", a concept the receiving cloud owns"))
            }
        }
        if document["profiles"] != nil {
            do { _ = try CoefficientTable(parsing: text, source: file) } catch {
                findings += error.problems.map { CheckFinding(file: file, line: 1, code: "bad_coefficient_table", message: $0) }
            }
        }
        return findings
    }

    static func collectMemberNames(_ value: JSONValue, into names: inout [String]) {
        switch value {
        case let .object(members):
            for (name, member) in members {
                names.append(name)
                collectMemberNames(member, into: &names)
            }
        case let .array(elements):
            for element in elements { collectMemberNames(element, into: &names) }
        default: break
        }
    }

    static func line(of needle: String, in text: String) -> Int {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(needle) {
            return index + 1
        }
        return 1
    }
}

/// The sidecar of an invalid fixture: `{"codes": [...], "schema": "reject" | "accept" | "unparsed"}`.
/// `schema` says whether the JSON Schema alone sees the violation ("reject"), only the full
/// validator can (ids, arithmetic, brands, real dates: "accept"), or the text never becomes a JSON
/// instance a schema could judge ("unparsed").
public struct FixtureExpectation: Sendable {
    public enum SchemaVerdict: String, Sendable { case reject, accept, unparsed }
    public let codes: Set<String>
    public let schema: SchemaVerdict

    public init(path: String) throws {
        let value = try JSONParser.parse(try EventFileReader.readAll(path: path))
        guard case let .array(list)? = value["codes"], !list.isEmpty else {
            throw InvariantSuite.UnreadablePath(path: path, reason: "needs \"codes\": a non-empty array of error codes")
        }
        var codes = Set<String>()
        for entry in list {
            guard let code = entry.stringValue, ErrorCode(rawValue: code) != nil else {
                throw InvariantSuite.UnreadablePath(path: path, reason: "\(JSONWriter.line(entry)) is not a contract error code")
            }
            codes.insert(code)
        }
        guard let schema = value["schema"]?.stringValue.flatMap(SchemaVerdict.init(rawValue:)) else {
            throw InvariantSuite.UnreadablePath(path: path, reason: "needs \"schema\": \"reject\", \"accept\" or \"unparsed\"")
        }
        self.codes = codes
        self.schema = schema
    }
}

extension JSONValue {
    /// An event, or an array of events, rather than a schema or a table.
    var isEventShaped: Bool {
        switch self {
        case .object: return self["$schema"] == nil && self["profiles"] == nil
        case let .array(elements): return elements.allSatisfy { if case .object = $0 { return $0["$schema"] == nil } else { return true } }
        default: return true
        }
    }
}
