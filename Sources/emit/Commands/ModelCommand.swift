import ArgumentParser
import EmitContract

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Emit one modeled token_model event for a run window.",
        discussion: """
            For runs with token counts but no physical meter. Energy = input tokens × J/input token \
            + output tokens × J/output token from the chosen profile (see `emit coefficients`); the \
            event is tier "modeled", source "token_model", and pue_applied is true only for a \
            facility-scope profile. Nothing is written when any argument is invalid.
            """
    )

    @Option(name: .customLong("run-id"), help: "The compute_assignment_run_id the tokens belong to.")
    var runID: String

    @Option(help: "Coefficient profile id, e.g. managed-balanced-v1.")
    var profile: String

    @Option(name: .customLong("input-tokens"), help: "Input (prompt) tokens, >= 0.")
    var inputTokens: Int64

    @Option(name: .customLong("output-tokens"), help: "Output (generated) tokens, >= 0.")
    var outputTokens: Int64

    @Option(help: "Window start, RFC 3339 (any offset; written as UTC).")
    var from: String

    @Option(help: "Window end, RFC 3339, after --from.")
    var to: String

    @OptionGroup var coefficients: CoefficientOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var problems: [String] = []
        if inputTokens < 0 { problems.append("--input-tokens must be >= 0, got \(inputTokens)") }
        if outputTokens < 0 { problems.append("--output-tokens must be >= 0, got \(outputTokens)") }
        let start = parseTime(from, "--from", &problems)
        let end = parseTime(to, "--to", &problems)
        if let start, let end, !(start < end) { problems.append("--to (\(end.text)) must be after --from (\(start.text))") }
        let table = try coefficients.load()
        let coefficient = table.profile(profile)
        if coefficient == nil {
            problems.append("unknown profile \"\(profile)\"; known: \(table.profiles.map(\.profileID).joined(separator: ", "))")
        }
        guard problems.isEmpty, let start, let end, let coefficient else {
            throw CommandFailure.usage(problems.joined(separator: "\n  "))
        }
        let builder = TokenModelEventBuilder(
            runID: runID, window: TimeWindow(from: start, to: end),
            tokens: TokenCounts(input: inputTokens, output: outputTokens), coefficient: coefficient)
        let event: EnergyEvent
        do { event = try builder.build(recordedAt: Clock.now()) } catch {
            throw CommandFailure.rejected("the event would be invalid: \(error)")
        }
        try output.write([event])
        Console.error("emit model: \(JSONWriter.formatNumber(event.energyJoules)) J modeled for run \(runID) with \(coefficient.profileID) (\(coefficient.scope.rawValue) scope, pue_applied \(event.pueApplied))")
    }

    func parseTime(_ text: String, _ flag: String, _ problems: inout [String]) -> Timestamp? {
        do { return try Timestamp(rfc3339: text) } catch {
            problems.append("\(flag): \(error)")
            return nil
        }
    }
}
