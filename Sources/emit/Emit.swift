import ArgumentParser
import EmitContract
#if canImport(Glibc)
import Glibc
#endif

/// `emit`: observe energy at the metal, emit energy facts with honest provenance.
@main
struct Emit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit",
        abstract: "Observe energy at the metal and emit energy facts (joules) with honest provenance.",
        discussion: """
            emit reads energy counters and operator windows and writes emit:energy_meter_recorded \
            events (JSON Lines, always joules, with an explicit tier and source). It never sets a \
            power limit and never turns energy into carbon, cost or attribution: the receiving \
            cloud does that.

            Exit codes: 0 success, 1 input rejected, 2 usage or I/O error.
            """,
        version: EmitVersion.current,
        subcommands: [RunCommand.self, AgentCommand.self, SensorsCommand.self, ModelCommand.self, FacilityCommand.self, OutboxCommand.self, ReceiveCommand.self, ValidateCommand.self, CheckCommand.self, CoefficientsCommand.self]
    )

    /// ArgumentParser exits 64 on a usage error; CLI.md promises 2.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            if !failure.message.isEmpty { Console.error("emit: \(failure.message)") }
            Console.flush()
            Glibc.exit(failure.exitCode)
        } catch {
            Console.flush()
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                print(message)
                Glibc.exit(0)
            }
            if !message.isEmpty { Console.error(message) }
            let isRun = CommandLine.arguments.dropFirst().first == RunCommand.configuration.commandName
            if isRun, message.contains("nexpected argument") {
                Console.error("Hint: the command to meter goes after --: emit run --run-id ID [options] -- COMMAND [ARG...]")
            }
            // `emit run` never started its command: 125, as env(1) and timeout(1) do.
            if isRun {
                Glibc.exit(RunCommand.failedToStart)
            }
            Glibc.exit(code == .validationFailure ? 2 : code.rawValue)
        }
        Console.flush()
    }
}

/// A command's own failure: the message for stderr and the exit code CLI.md assigns.
struct CommandFailure: Error {
    let exitCode: Int32
    let message: String

    static func usage(_ message: String) -> CommandFailure { CommandFailure(exitCode: 2, message: message) }
    static func rejected(_ message: String = "") -> CommandFailure { CommandFailure(exitCode: 1, message: message) }
}
