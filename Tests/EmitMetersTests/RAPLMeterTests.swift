import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitMeters

@Suite struct RAPLMeterTests {
    /// Two sockets with DRAM, core and uncore subzones, psys, and an MMIO duplicate of package-0.
    static let zones: [PowercapTree.Zone] = [
        .init("intel-rapl:0", "package-0", energy: 1_000_000),
        .init("intel-rapl:0:0", "core", energy: 400_000),
        .init("intel-rapl:0:1", "uncore", energy: 100_000),
        .init("intel-rapl:0:2", "dram", energy: 50_000, range: 65_712_999_613),
        .init("intel-rapl:1", "package-1", energy: 2_000_000),
        .init("intel-rapl:1:0", "dram", energy: 60_000, range: 65_712_999_613),
        .init("intel-rapl:2", "psys", energy: 9_000_000),
        .init("intel-rapl-mmio:0", "package-0", energy: 1_000_321),
    ]

    @Test func defaultZonesArePackagesAndDRAMOnceEach() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: Self.zones)
        let meter = RAPLMeter(root: tree.root)
        #expect(meter.devices.map(\.device.id) == ["package-0", "package-0/dram", "package-1", "package-1/dram"])
        #expect(meter.devices.map(\.device.deviceClass) == [.cpuPackage, .dram, .cpuPackage, .dram])
        #expect(meter.devices.first?.device.index == 0)
        #expect(meter.problems.contains { $0.deviceID == "package-0" && $0.reason.contains("intel-rapl-mmio:0 duplicates intel-rapl:0") })
        #expect(meter.sample() == [.counter(raw: 1_000_000, unitsPerJoule: 1e6, wrapRange: 262_143_328_850),
                                   .counter(raw: 50_000, unitsPerJoule: 1e6, wrapRange: 65_712_999_613),
                                   .counter(raw: 2_000_000, unitsPerJoule: 1e6, wrapRange: 262_143_328_850),
                                   .counter(raw: 60_000, unitsPerJoule: 1e6, wrapRange: 65_712_999_613)])
    }

    @Test func allZonesKeepTheirOwnClasses() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: Self.zones)
        let meter = RAPLMeter(root: tree.root, zones: .all)
        let byID = Dictionary(uniqueKeysWithValues: meter.devices.map { ($0.device.id, $0.device.deviceClass) })
        #expect(byID == ["package-0": .cpuPackage, "package-0/core": .cpuCore, "package-0/uncore": .uncore, "package-0/dram": .dram,
                         "package-1": .cpuPackage, "package-1/dram": .dram, "psys": .psys])
    }

    @Test func anMMIOOnlyPackageIsStillRead() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl-mmio:0", "package-0", energy: 5)])
        let meter = RAPLMeter(root: tree.root)
        #expect(meter.devices.map(\.device.id) == ["package-0"])
    }

    @Test func aVanishedZoneIsUnavailableNotZero() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: Array(Self.zones.prefix(4)))
        let meter = RAPLMeter(root: tree.root)
        try FileManager.default.removeItem(atPath: tree.energyFile("intel-rapl:0:2"))
        let values = meter.sample()
        guard case .unavailable(let reason) = values[1] else { Issue.record("read a vanished file: \(values[1])"); return }
        #expect(reason.contains("No such file"))
        #expect(values[0] == .counter(raw: 1_000_000, unitsPerJoule: 1e6, wrapRange: 262_143_328_850))
    }

    @Test func theSafeIntervalFollowsTheSmallestRange() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 1, range: 3_000_000_000)])
        let meter = RAPLMeter(root: tree.root)
        // 3000 J of range at a generous 1500 W: 2 s between samples at most.
        #expect(meter.longestSafeInterval == 2)
    }

    @Test func unreadableCountersAreExplained() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 1)])
        try FileManager.default.removeItem(atPath: tree.energyFile("intel-rapl:0"))
        try FileManager.default.createDirectory(atPath: tree.energyFile("intel-rapl:0"), withIntermediateDirectories: false)
        let meter = RAPLMeter(root: tree.root)
        #expect(meter.devices.isEmpty)
        #expect(meter.problems.first?.deviceID == "package-0")
        let missing = RAPLMeter(root: dir.file("nowhere"))
        #expect(missing.problems.first?.reason.contains("no powercap class folder") == true)
        #expect(RAPLMeter.permissionFix.contains("root since Linux 5.10"))
    }
}
