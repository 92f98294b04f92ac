import ArgumentParser
import EmitContract

/// `--coefficients FILE`, shared by the commands that read the coefficient table.
struct CoefficientOptions: ParsableArguments {
    @Option(name: .customLong("coefficients"), help: ArgumentHelp(
        "A coefficient table (JSON, same shape as coefficients/coefficients.json) to use instead of the built-in one.",
        valueName: "FILE"))
    var file: String?

    func load() throws -> CoefficientTable {
        guard let file else { return try CoefficientTable.standard() }
        let bytes: [UInt8]
        do { bytes = try EventFileReader.readAll(path: file) } catch {
            throw CommandFailure.usage("cannot read coefficient table \(error)")
        }
        do {
            return try CoefficientTable(parsing: String(decoding: bytes, as: UTF8.self), source: file)
        } catch {
            throw CommandFailure.usage("invalid coefficient table:\n\(error)")
        }
    }
}

struct CoefficientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coefficients",
        abstract: "List the coefficient table used for modeled token energy.",
        discussion: """
            Each profile is an opaque, provider-neutral id with joules per input and per output \
            token, the scope the energy covers (accelerator, system or facility; only facility \
            includes facility overhead, so only it sets pue_applied) and a published citation.
            """
    )

    @OptionGroup var coefficients: CoefficientOptions

    @Flag(help: "Print the table as one JSON object.")
    var json = false

    func run() throws {
        let table = try coefficients.load()
        if json {
            let value = JSONValue.object([
                ("table_version", .string(table.version)),
                ("profiles", .array(table.profiles.map(\.jsonValue))),
            ])
            Console.out(JSONWriter.line(value))
            return
        }
        Console.out("coefficient table \(table.version)")
        let header = ["PROFILE", "J/INPUT", "J/OUTPUT", "SCOPE", "CONFIDENCE"]
        let rows = table.profiles.map {
            [$0.profileID, JSONWriter.formatNumber($0.joulesPerInputToken), JSONWriter.formatNumber($0.joulesPerOutputToken),
             $0.scope.rawValue, $0.confidence.rawValue]
        }
        for line in TextTable.render(header: header, rows: rows) { Console.out(line) }
        Console.out("")
        for profile in table.profiles { Console.out("\(profile.profileID): \(profile.citation)") }
    }
}
