import ArgumentParser
import EmitContract

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate events against the v1 contract.",
        discussion: """
            A .json file holds one event or an array of events; .jsonl/.ndjson files and - (stdin) \
            hold one event per line (blank lines skipped). Every violation is printed as \
            FILE:N: CODE: path: message (N = line in JSON Lines, 1-based array position in JSON), \
            then a last line "V valid, I invalid".

            Exit 0 when all events are valid, 1 when any is invalid, 2 when a file cannot be read.
            """
    )

    @Argument(help: "Event files (.json, .jsonl, .ndjson) or - for stdin.")
    var files: [String] = ["-"]

    func run() throws {
        let validator = Validator.standard
        var valid = 0
        var invalid = 0
        var unreadable = false
        func report(_ position: Int, _ findings: [Finding], _ file: String) {
            if findings.isEmpty {
                valid += 1
            } else {
                invalid += 1
                for finding in findings { Console.out("\(file):\(position): \(finding)") }
            }
        }
        for file in files {
            do {
                if EventFileReader.isJSONDocument(file) {
                    try EventFileReader.forEachRecord(path: file) { record in
                        let (position, findings) = validator.findings(of: record)
                        report(position, findings, file)
                    }
                } else {
                    try EventFileReader.forEachLineBatch(path: file) { batch in
                        for (number, findings) in ParallelValidation.validate(batch, with: validator) {
                            report(number, findings, file)
                        }
                    }
                }
            } catch {
                Console.error("emit validate: \(error)")
                unreadable = true
            }
        }
        Console.out("\(valid) valid, \(invalid) invalid")
        if unreadable { throw CommandFailure(exitCode: 2, message: "") }
        if invalid > 0 { throw CommandFailure.rejected() }
    }
}
