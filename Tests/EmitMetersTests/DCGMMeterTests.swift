import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitMeters

@Suite struct PrometheusTextTests {
    @Test func parsesLabelsEscapesAndTimestamps() throws {
        let text = """
            # HELP x help
            # TYPE x counter
            x{a="1",b="q\\"uote\\\\d\\nline"} 12.5 1700000000000
            x 3
            y{a="2"} 4
            """
        let samples = try PrometheusText.parse(text, metric: "x")
        #expect(samples == [PrometheusSample(name: "x", labels: ["a": "1", "b": "q\"uote\\d\nline"], value: 12.5, quantum: 0.1),
                            PrometheusSample(name: "x", labels: [:], value: 3, quantum: 1)])
        #expect(try PrometheusText.parse(text).count == 3)
        #expect(throws: PrometheusText.ParseError.self) { try PrometheusText.parse("x{a=\"1\" 2") }
        #expect(throws: PrometheusText.ParseError.self) { try PrometheusText.parse("x{a=\"1\"} abc") }
    }

    /// Found by `scripts/fuzz.sh prometheus`: an exponent from outside once cost a loop of that
    /// many multiplications (Fuzz/prometheus/regressions keeps the input).
    @Test func aHugeExponentIsAnsweredAtOnce() throws {
        let samples = try PrometheusText.parse("x 1.8734e+120215698123")
        #expect(samples.first?.value == .infinity)
        #expect(samples.first?.quantum == .infinity)
        #expect(DecimalQuantum.of(text: "5e-99999999999") == 0)
        #expect(DecimalQuantum.of(text: "8.969") == 0.001)
    }
}

@Suite struct DCGMExporterMeterTests {
    @Test func readsOneCounterPerPhysicalGPUUnderMIG() throws {
        let server = try StaticHTTPServer(files: ["metrics": try Repository.text("Tests/EmitMetersTests/Fixtures/dcgm-exporter-mig.prom")])
        defer { server.stop() }
        let meter = DCGMExporterMeter(url: server.url("metrics"))
        #expect(meter.problems.isEmpty, "\(meter.problems)")
        #expect(meter.devices.map(\.device) == [
            Device(class: .gpu, id: "GPU-8c1b6f4e-2d3a-4b5c-9e7f-0a1b2c3d4e5f", name: "NVIDIA A100-SXM4-40GB", index: 0),
            Device(class: .gpu, id: "GPU-1f2e3d4c-5b6a-4798-8a9b-cdef01234567", name: "NVIDIA A100-SXM4-40GB", index: 1),
        ])
        // Each counter with its GPU's power from the same scrape, once per GPU under MIG; the
        // exporter prints six decimals, so the reading's step is a microwatt.
        #expect(meter.sample() == [.counter(raw: 20_215_698_123, unitsPerJoule: 1e3, wrapRange: nil,
                                            power: PowerReading(watts: 261.482, quantumWatts: 1e-6)),
                                   .counter(raw: 18_734_000_000, unitsPerJoule: 1e3, wrapRange: nil,
                                            power: PowerReading(watts: 88.013, quantumWatts: 1e-6))])
    }

    @Test func gpusMeteredThroughNVMLAreLeftOut() throws {
        let server = try StaticHTTPServer(files: ["metrics": try Repository.text("Tests/EmitMetersTests/Fixtures/dcgm-exporter-mig.prom")])
        defer { server.stop() }
        let meter = DCGMExporterMeter(url: server.url("metrics"), excluding: ["GPU-8c1b6f4e-2d3a-4b5c-9e7f-0a1b2c3d4e5f"])
        #expect(meter.devices.map(\.device.id) == ["GPU-1f2e3d4c-5b6a-4798-8a9b-cdef01234567"])
        #expect(meter.problems.first?.reason.contains("metered through NVML") == true)
    }

    @Test func unreachableOrEmptyEndpointsAreReported() throws {
        let server = try StaticHTTPServer(files: ["metrics": "# nothing\nother_metric 1\n"])
        defer { server.stop() }
        let empty = DCGMExporterMeter(url: server.url("metrics"))
        #expect(empty.devices.isEmpty)
        #expect(empty.problems.first?.reason.contains("serves no DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION") == true)
        let missing = DCGMExporterMeter(url: server.url("absent"))
        #expect(missing.problems.first?.reason.contains("HTTP status 404") == true)
    }
}
