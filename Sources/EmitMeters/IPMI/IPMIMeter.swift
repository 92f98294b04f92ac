import EmitContract
import Foundation

/// Where and how to reach a BMC. Without `host`, ipmitool talks to the local BMC in-band
/// (/dev/ipmi0, root); with it, IPMI 2.0 lanplus. The password is only ever named by file
/// (`ipmitool -f`), so it never appears in a process list.
public struct IPMIConnection: Sendable, Equatable {
    public var host: String?
    public var port: Int?
    public var username: String?
    public var passwordFile: String?
    /// The lanplus cipher suite; 3 (AES-128, HMAC-SHA1) is what every BMC speaks; 17 where allowed.
    public var cipherSuite: Int
    /// Read this SDR power sensor (`ipmitool sdr elist`) instead of DCMI, for BMCs without DCMI.
    public var sensor: String?
    /// The ipmitool executable; `EMIT_IPMITOOL` or `ipmitool` on PATH.
    public var tool: String

    public init(host: String? = nil, port: Int? = nil, username: String? = nil, passwordFile: String? = nil,
                cipherSuite: Int = 3, sensor: String? = nil,
                tool: String = ProcessInfo.processInfo.environment["EMIT_IPMITOOL"] ?? "ipmitool") {
        self.host = host
        self.port = port
        self.username = username
        self.passwordFile = passwordFile
        self.cipherSuite = cipherSuite
        self.sensor = sensor
        self.tool = tool
    }

    var arguments: [String] {
        var args: [String] = []
        if let host {
            args += ["-I", "lanplus", "-C", String(cipherSuite), "-H", host]
            if let port { args += ["-p", String(port)] }
            if let username { args += ["-U", username] }
            if let passwordFile { args += ["-f", passwordFile] }
            // One retry, short timeouts: the sampler's next tick is the real retry.
            args += ["-N", "2", "-R", "1"]
        }
        return args + (sensor == nil ? ["dcmi", "power", "reading"] : ["sdr", "elist"])
    }
}

/// A node's (or chassis's) power from its BMC: DCMI "Get Power Reading" watts, integrated over
/// time (`power_integration`). Readings the BMC marks inactive, and bare zeros, are gaps.
public final class IPMIMeter: EnergyMeter, @unchecked Sendable {
    // ipmitool runs for every read, in band or over the LAN, and can hang on a BMC.
    public let readsOverNetwork = true
    public let source = EnergySource.ipmi
    public private(set) var devices: [MeteredDevice]
    public private(set) var problems: [MeterProblem] = []
    public let longestSafeInterval: Double? = nil
    private let connection: IPMIConnection
    private let tool: ToolProcess

    /// Reads the BMC once to learn whether it answers. `keepUnreadable`: a facility collector
    /// keeps sampling a BMC that fails now (it may come back; its gaps lower coverage); a run or
    /// `emit sensors` drops it and says why.
    public init(connection: IPMIConnection, device: Device, timeout: Double = 5, keepUnreadable: Bool = false) {
        self.connection = connection
        tool = ToolProcess(executable: connection.tool, timeout: timeout)
        devices = [MeteredDevice(source: .ipmi, device: device)]
        var failure: String?
        if let file = connection.passwordFile, !FileManager.default.isReadableFile(atPath: file) {
            failure = "password file \(file) is not readable"
        } else if case .unavailable(let reason) = sample()[0] {
            failure = reason
        }
        if let failure {
            problems.append(MeterProblem(source: .ipmi, deviceID: device.id, reason: failure))
            if !keepUnreadable { devices = [] }
        }
    }

    public func method(of index: Int) -> MeasurementMethod { .powerIntegration }

    public func sample() -> [SampleValue] {
        guard !devices.isEmpty else { return [] }
        let text: String
        do { text = try tool.run(connection.arguments) } catch { return [.unavailable(reason: error.description)] }
        if let sensor = connection.sensor {
            guard let row = SDRPowerRow.parse(text).first(where: { $0.name == sensor }) else {
                return [.unavailable(reason: "no power sensor named \"\(sensor)\" in `ipmitool sdr elist`")]
            }
            return [row.sample]
        }
        do { return [try DCMIPowerReading.parse(text).sample] } catch { return [.unavailable(reason: error.description)] }
    }

    public func close() {}
}
