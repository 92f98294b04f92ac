import Logging
import ServiceLifecycle

/// How emit's long-running commands (the agent, the receiver, a flush) run: each part a service of
/// one group. SIGTERM or SIGINT shuts the group down gracefully, its services one at a time in
/// reverse order of the list, each finishing what it has begun (the batches on the wire, a last
/// checkpoint). What is not finished within `gracePeriod` is cancelled: a batch still unanswered
/// then stays pending and goes again (the receiver holds each event once), and the stop fits
/// inside a container runtime's grace of 10 s before SIGKILL.
enum Daemon {
    static let gracePeriod: Duration = .seconds(8)

    static func run(_ label: String, _ services: [ServiceGroupConfiguration.ServiceConfiguration]) async throws {
        var logger = Logger(label: label)
        logger.logLevel = .warning  // the group's own messages are for debugging; emit says what it does itself
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = gracePeriod
        try await ServiceGroup(configuration: configuration).run()
    }
}
