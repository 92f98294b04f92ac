import ArgumentParser
import EmitContract
import EmitInvariants
import Foundation

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Run the invariant suite over fixtures, examples, the schema, the coefficient table and sources.",
        discussion: """
            Checks that every event file validates; that every invalid fixture (NAME.jsonl with a \
            NAME.expect.json sidecar) raises exactly its declared codes; that authored text is \
            provider-brand-free (whole-token, case-insensitive); that no JSON member names a concept \
            the receiving cloud owns (carbon, cost, billing, ...); and that source files stay \
            observation-only (no NVML/DCGM setter, no powercap write, no IPMI/Redfish power control).

            Without PATH it checks fixtures/, examples/, schema/, coefficients/ and Sources/ under \
            the current directory. Each finding is printed as FILE:LINE: CODE: message.
            Exit 0 clean, 1 findings, 2 when a path cannot be read.
            """
    )

    static let defaultPaths = ["fixtures", "examples", "schema", "coefficients", "Sources"]

    @Argument(help: "Files or directories to check.")
    var paths: [String] = []

    func run() throws {
        var targets = paths
        if targets.isEmpty {
            targets = Self.defaultPaths.filter { FileManager.default.fileExists(atPath: $0) }
            guard !targets.isEmpty else {
                throw CommandFailure.usage("none of \(Self.defaultPaths.joined(separator: ", ")) is here; run from the project root or name paths")
            }
        }
        let findings: [CheckFinding]
        do { findings = try InvariantSuite().run(paths: targets) } catch {
            throw CommandFailure.usage("check: \(error)")
        }
        for finding in findings { Console.out(finding.description) }
        if findings.isEmpty {
            Console.error("emit check: clean (\(targets.joined(separator: ", ")))")
        } else {
            Console.flush()
            throw CommandFailure.rejected("check: \(findings.count) finding(s)")
        }
    }
}
