import EmitContract
import EmitMeters
import Foundation

/// How a run is metered.
public struct RunConfiguration: Sendable {
    public var runID: String
    public var nodeID: String
    /// Requested sampling interval in seconds (shortened when a counter could wrap twice).
    public var interval: Double
    /// Interim window length in seconds; nil for one window covering the whole run.
    public var window: Double?
    public var labels: [String: String]

    public init(runID: String, nodeID: String, interval: Double = 1, window: Double? = nil, labels: [String: String] = [:]) {
        self.runID = runID
        self.nodeID = nodeID
        self.interval = interval
        self.window = window
        self.labels = labels
    }
}

public struct RunReport: Sendable {
    public let runID: String
    public let session: SessionReport
    public var window: TimeWindow? { session.window }
    public var devices: [DeviceReport] { session.devices }
    public var problems: [MeterProblem] { session.problems }
    public var eventsEmitted: Int { session.eventsEmitted }
    public var intervalSeconds: Double { session.intervalSeconds }
    public var intervalNote: String? { session.intervalNote }
    public var buildFailures: [String] { session.buildFailures }
}

/// Meters a run: samples every meter just before the work starts, periodically while it runs,
/// and right after it ends; one run-grain event per (source, device) per window.
///
/// `start()` and `stop()` are called from one thread; sampling runs on a thread of its own.
public final class RunSession: Sendable {
    public let configuration: RunConfiguration
    private let session: MeteringSession

    public init(configuration: RunConfiguration, meters: [EnergyMeter], deliver: @escaping @Sendable ([EnergyEvent]) -> Void) {
        self.configuration = configuration
        session = MeteringSession(
            interval: configuration.interval, window: configuration.window, meters: meters,
            eventFactory: { device, window, joules, measurement, recordedAt in
                try RunMeterEventBuilder(
                    runID: configuration.runID, source: device.source, device: device.device,
                    nodeID: configuration.nodeID, window: window, energyJoules: joules,
                    measurement: measurement, labels: configuration.labels
                ).build(recordedAt: recordedAt)
            },
            deliver: deliver)
    }

    public var intervalSeconds: Double { session.intervalSeconds }
    public var intervalNote: String? { session.intervalNote }
    public var meteredDevices: [MeteredDevice] { session.meteredDevices }

    /// Takes the first sample now and starts periodic sampling.
    public func start() { session.start() }

    /// Takes the last sample now, closes the last window and returns what was measured.
    public func stop() -> RunReport { RunReport(runID: configuration.runID, session: session.stop()) }

    /// Meters `body` and returns its result with the report.
    public static func measure<T>(configuration: RunConfiguration, meters: [EnergyMeter],
                                  deliver: @escaping @Sendable ([EnergyEvent]) -> Void,
                                  _ body: () throws -> T) rethrows -> (T, RunReport) {
        let session = RunSession(configuration: configuration, meters: meters, deliver: deliver)
        session.start()
        do {
            let result = try body()
            return (result, session.stop())
        } catch {
            _ = session.stop()
            throw error
        }
    }
}
