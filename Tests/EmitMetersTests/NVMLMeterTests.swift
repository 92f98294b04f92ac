import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitMeters

/// The NVML meter against a stand-in libnvidia-ml.so.1 loaded through the real dlopen path.
/// The stand-in reads its state from FAKE_NVML_DIR, which must be set in this process.
@Suite(.serialized) struct NVMLMeterTests {
    func withFake<T>(_ gpus: [FakeNVML.GPU], _ body: (FakeNVML) throws -> T) throws -> T {
        let fake = try FakeNVML(gpus: gpus)
        defer { fake.state.remove() }
        setenv("FAKE_NVML_DIR", fake.state.path, 1)
        return try body(fake)
    }

    @Test func twoGPUsWithEnergyCounters() throws {
        try withFake([FakeNVML.GPU(uuid: "GPU-aaaa", energyMillijoules: 1_000), FakeNVML.GPU(uuid: "GPU-bbbb", name: "Other GPU", energyMillijoules: 7)]) { fake in
            let meter = NVMLMeter(libraryPath: fake.library)
            #expect(meter.problems.isEmpty)
            #expect(meter.devices.map(\.device) == [Device(class: .gpu, id: "GPU-aaaa", name: "Test Accelerator 80GB", index: 0),
                                                    Device(class: .gpu, id: "GPU-bbbb", name: "Other GPU", index: 1)])
            #expect(meter.sample() == [.counter(raw: 1_000, unitsPerJoule: 1e3, wrapRange: nil), .counter(raw: 7, unitsPerJoule: 1e3, wrapRange: nil)])
            try fake.state.write("gpu0/energy_mj", "2500\n")
            #expect(meter.sample().first == .counter(raw: 2_500, unitsPerJoule: 1e3, wrapRange: nil))
            meter.close()
        }
    }

    @Test func powerIsReadBesideACounterOnlyOnceTheCounterHasHeldStill() throws {
        try withFake([FakeNVML.GPU(uuid: "GPU-a", energyMillijoules: 1_000, powerMilliwatts: 70_500)]) { fake in
            let meter = NVMLMeter(libraryPath: fake.library)
            let withPower = SampleValue.counter(raw: 1_000, unitsPerJoule: 1e3, wrapRange: nil, power: PowerReading(watts: 70.5, quantumWatts: 0.001))
            // The first read takes power too, so a counter that holds from the start can pair with it.
            #expect(meter.sample() == [withPower])
            try fake.state.write("gpu0/energy_mj", "1100\n")
            #expect(meter.sample() == [.counter(raw: 1_100, unitsPerJoule: 1e3, wrapRange: nil)], "a moving counter costs one call")
            // The board did not refresh its counter between two reads: power from now on.
            #expect(meter.sample() == [.counter(raw: 1_100, unitsPerJoule: 1e3, wrapRange: nil, power: PowerReading(watts: 70.5, quantumWatts: 0.001))])
            try fake.state.write("gpu0/energy_mj", "1200\n")
            #expect(meter.sample() == [.counter(raw: 1_200, unitsPerJoule: 1e3, wrapRange: nil, power: PowerReading(watts: 70.5, quantumWatts: 0.001))])
        }
    }

    @Test func aGPUWithoutEnergyFallsBackToPowerOrDropsOut() throws {
        try withFake([FakeNVML.GPU(uuid: "GPU-old", powerMilliwatts: 150_000), FakeNVML.GPU(uuid: "GPU-none"), FakeNVML.GPU(uuid: "GPU-new", energyMillijoules: 5)]) { fake in
            let meter = NVMLMeter(libraryPath: fake.library)
            #expect(meter.devices.map(\.device.id) == ["GPU-old", "GPU-new"])
            #expect(meter.method(of: 0) == .powerIntegration)
            #expect(meter.method(of: 1) == .counterDelta)
            #expect(meter.problems.count == 1)
            #expect(meter.problems.first?.deviceID == "GPU-none")
            #expect(meter.problems.first?.reason.contains("Not Supported") == true)
            #expect(meter.sample().first == .power(watts: 150, quantumWatts: 0.001))
        }
    }

    @Test func aLostGPUIsUnavailableAndTheOthersGoOn() throws {
        try withFake([FakeNVML.GPU(uuid: "GPU-a", energyMillijoules: 10), FakeNVML.GPU(uuid: "GPU-b", energyMillijoules: 20)]) { fake in
            let meter = NVMLMeter(libraryPath: fake.library)
            try fake.state.write("gpu0/lost", "1")
            #expect(meter.sample() == [.unavailable(reason: "GPU is lost"), .counter(raw: 20, unitsPerJoule: 1e3, wrapRange: nil)])
        }
    }

    @Test func missingLibraryAndFailedInitAreReported() throws {
        let missing = NVMLMeter(libraryPath: "/nonexistent/libnvidia-ml.so.1")
        #expect(missing.devices.isEmpty)
        #expect(missing.problems.first?.reason.hasPrefix("NVML library not found: /nonexistent/libnvidia-ml.so.1") == true)
        try withFake([FakeNVML.GPU(uuid: "GPU-a", energyMillijoules: 10)]) { fake in
            try fake.state.write("init_fail", "1")
            let meter = NVMLMeter(libraryPath: fake.library)
            #expect(meter.devices.isEmpty)
            #expect(meter.problems.first?.reason == "nvmlInit_v2 failed: Driver Not Loaded")
        }
    }

    @Test func aLibraryWithoutARequiredSymbolIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = try dir.write("partial.c", "int nvmlInit_v2(void) { return 0; }\n")
        let cc = try #require(Programs.which("cc") ?? Programs.which("clang"))
        let lib = dir.file("libpartial.so")
        #expect(try Programs.run(cc, ["-shared", "-fPIC", "-o", lib, source]).status == 0)
        let meter = NVMLMeter(libraryPath: lib)
        #expect(meter.problems.first?.reason == "\(lib) lacks the required symbol nvmlShutdown")
    }
}
