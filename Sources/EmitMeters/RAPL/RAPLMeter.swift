import EmitContract
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which RAPL zones to meter. The default (packages and DRAM) never double counts: core and
/// uncore sit inside a package, and psys contains packages and DRAM.
public enum RAPLZoneSelection: String, Sendable, CaseIterable {
    case packagesAndDRAM = "default"
    case all
}

/// CPU package and DRAM energy through Linux powercap (`intel-rapl`, also used for AMD packages).
///
/// The class folder lists every zone flat (`intel-rapl:0`, `intel-rapl:0:0`, ...) as links into
/// nested zone folders; each zone has `name`, `energy_uj` and `max_energy_range_uj`. Files are
/// only ever opened read-only.
public final class RAPLMeter: EnergyMeter, @unchecked Sendable {
    public let source = EnergySource.rapl
    public private(set) var devices: [MeteredDevice] = []
    public private(set) var problems: [MeterProblem] = []
    public private(set) var longestSafeInterval: Double?

    /// Zone folders read by `sample()`, in `devices` order.
    private var zones: [Zone] = []

    struct Zone {
        let folder: String
        let energyPath: String
        let range: UInt64
        /// Kept open (read-only) between samples: a sample is then one pread and one fstat,
        /// without a path lookup.
        var descriptor: Int32 = -1
    }

    /// A generous upper bound of any one zone's power, used to size the sampling interval so
    /// that no more than one wrap can happen between two samples.
    public static let generousMaximumWatts = 1500.0

    public static let permissionFix = "energy_uj is readable only by root since Linux 5.10: run emit as root, or grant read access with a udev rule (ACTION==\"add\", SUBSYSTEM==\"powercap\", RUN+=\"/bin/chmod a+r /sys%p/energy_uj\")"

    public init(root: String = ProcessInfo.processInfo.environment["EMIT_POWERCAP_ROOT"] ?? "/sys/class/powercap",
                zones selection: RAPLZoneSelection = .packagesAndDRAM) {
        discover(root: root, selection: selection)
    }

    private struct Candidate {
        let entry: String       // intel-rapl:0:1
        let folder: String
        let name: String        // package-0, dram, core, uncore, psys
        let isMMIO: Bool
        let parentEntry: String?
    }

    private func discover(root: String, selection: RAPLZoneSelection) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else {
            problems.append(MeterProblem(source: .rapl, reason: "no powercap class folder at \(root) (no RAPL driver, or not Linux)"))
            return
        }
        var candidates: [Candidate] = []
        for entry in entries.sorted() where entry.hasPrefix("intel-rapl") {
            let folder = (root as NSString).appendingPathComponent(entry)
            guard let name = Self.readText((folder as NSString).appendingPathComponent("name")) else { continue }
            let parts = entry.split(separator: ":")
            let parent = parts.count == 3 ? parts[0...1].joined(separator: ":") : nil
            candidates.append(Candidate(entry: entry, folder: folder, name: name, isMMIO: entry.hasPrefix("intel-rapl-mmio"), parentEntry: parent))
        }
        if candidates.isEmpty {
            problems.append(MeterProblem(source: .rapl, reason: "no intel-rapl zones under \(root)"))
            return
        }
        let byEntry = Dictionary(candidates.map { ($0.entry, $0) }, uniquingKeysWith: { a, _ in a })
        var seen: [String: String] = [:]  // device id -> entry that provides it
        // MSR zones first, so an MMIO zone for the same package is the duplicate that is skipped.
        for candidate in candidates.sorted(by: { ($0.isMMIO ? 1 : 0, $0.entry) < ($1.isMMIO ? 1 : 0, $1.entry) }) {
            guard let (deviceClass, id, index) = Self.classify(candidate, parent: candidate.parentEntry.flatMap { byEntry[$0] }) else {
                problems.append(MeterProblem(source: .rapl, deviceID: candidate.entry, reason: "unknown zone name \"\(candidate.name)\""))
                continue
            }
            if selection == .packagesAndDRAM, deviceClass != .cpuPackage, deviceClass != .dram { continue }
            if let other = seen[id] {
                problems.append(MeterProblem(source: .rapl, deviceID: id, reason: "\(candidate.entry) duplicates \(other) (same zone through another interface); reading \(other) only"))
                continue
            }
            let energyPath = (candidate.folder as NSString).appendingPathComponent("energy_uj")
            switch Self.readCounter(energyPath) {
            case .failure(let reason):
                problems.append(MeterProblem(source: .rapl, deviceID: id, reason: reason.description))
                continue
            case .success:
                break
            }
            guard let rangeText = Self.readText((candidate.folder as NSString).appendingPathComponent("max_energy_range_uj")),
                  let range = UInt64(rangeText), range > 0 else {
                problems.append(MeterProblem(source: .rapl, deviceID: id, reason: "\(candidate.entry) has no readable max_energy_range_uj, so wraps cannot be undone"))
                continue
            }
            seen[id] = candidate.entry
            zones.append(Zone(folder: candidate.folder, energyPath: energyPath, range: range))
            devices.append(MeteredDevice(source: .rapl, device: Device(class: deviceClass, id: id, name: candidate.entry, index: index)))
            let safe = Double(range) / 1e6 / Self.generousMaximumWatts
            longestSafeInterval = min(longestSafeInterval ?? safe, safe)
        }
    }

    private static func classify(_ zone: Candidate, parent: Candidate?) -> (DeviceClass, String, Int?)? {
        if zone.name.hasPrefix("package-"), let n = Int(zone.name.dropFirst("package-".count)) {
            return (.cpuPackage, zone.name, n)
        }
        if zone.name == "psys" { return (.psys, zone.parentEntry == nil ? "psys" : "\(parent?.name ?? zone.entry)/psys", nil) }
        let owner = parent?.name ?? zone.entry
        switch zone.name {
        case "dram": return (.dram, "\(owner)/dram", nil)
        case "core": return (.cpuCore, "\(owner)/core", nil)
        case "uncore": return (.uncore, "\(owner)/uncore", nil)
        default: return nil
        }
    }

    public func sample() -> [SampleValue] {
        var values: [SampleValue] = []
        values.reserveCapacity(zones.count)
        for i in zones.indices {
            switch read(zone: i) {
            case .success(let raw): values.append(.counter(raw: raw, unitsPerJoule: 1e6, wrapRange: zones[i].range))
            case .failure(let reason): values.append(.unavailable(reason: reason.description))
            }
        }
        return values
    }

    /// Reads a zone through its open descriptor; a zone whose file was removed (link count 0)
    /// or that fails is reopened by path once, so a vanished zone fails instead of serving a
    /// stale value.
    private func read(zone i: Int) -> Result<UInt64, ReadFailureReason> {
        if zones[i].descriptor >= 0 {
            var info = stat()
            if fstat(zones[i].descriptor, &info) == 0, info.st_nlink > 0,
               case .success(let value) = Self.parseCounter(descriptor: zones[i].descriptor, path: zones[i].energyPath) {
                return .success(value)
            }
            Glibc.close(zones[i].descriptor)
            zones[i].descriptor = -1
        }
        let fd = open(zones[i].energyPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(Self.describe(errno, path: zones[i].energyPath)) }
        zones[i].descriptor = fd
        return Self.parseCounter(descriptor: fd, path: zones[i].energyPath)
    }

    public func close() {
        for i in zones.indices where zones[i].descriptor >= 0 {
            Glibc.close(zones[i].descriptor)
            zones[i].descriptor = -1
        }
    }

    deinit { close() }

    // MARK: reading sysfs

    /// Reads a counter file once with open/read/close (discovery). Every open is read-only.
    static func readCounter(_ path: String) -> Result<UInt64, ReadFailureReason> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(describe(errno, path: path)) }
        defer { Glibc.close(fd) }
        return parseCounter(descriptor: fd, path: path)
    }

    static func describe(_ code: Int32, path: String) -> ReadFailureReason {
        if code == EACCES || code == EPERM {
            return ReadFailureReason("\(path): permission denied; \(permissionFix)")
        }
        return ReadFailureReason("\(path): \(String(cString: strerror(code)))")
    }

    /// Reads the decimal counter at offset 0 of an open file.
    static func parseCounter(descriptor fd: Int32, path: String) -> Result<UInt64, ReadFailureReason> {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))  // 32 bytes on the stack
        let n = withUnsafeMutableBytes(of: &buffer) { pread(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { return .failure(describe(errno, path: path)) }
        return withUnsafeBytes(of: &buffer) { raw -> Result<UInt64, ReadFailureReason> in
            var value: UInt64 = 0
            var digits = 0
            for byte in raw.prefix(n) {
                if byte >= 0x30 && byte <= 0x39 {
                    let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
                    if o1 || o2 { return .failure(ReadFailureReason("\(path): value out of range")) }
                    value = sum
                    digits += 1
                } else if byte == 0x0A || byte == 0x20 {
                    break
                } else {
                    return .failure(ReadFailureReason("\(path): not a counter value"))
                }
            }
            guard digits > 0 else { return .failure(ReadFailureReason("\(path): empty")) }
            return .success(value)
        }
    }

    static func readText(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Why a read failed, in words a person can act on.
public struct ReadFailureReason: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
