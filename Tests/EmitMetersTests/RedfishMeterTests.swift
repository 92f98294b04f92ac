import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitMeters

/// Against the Redfish mockup service of Tests/Peers: this project's energy mockup (one chassis
/// per way a BMC can report) and DMTF's public-rackmount1 sample.
@Suite(.serialized) struct RedfishMeterTests {
    var energyURL: URL { URL(string: "http://127.0.0.1:\(Peers.redfishPort)")! }

    func meter(_ chassis: String?, url: URL? = nil) -> RedfishMeter {
        RedfishMeter(connection: RedfishConnection(url: url ?? energyURL, chassis: chassis))
    }

    func patch(_ path: String, _ body: String) throws {
        let reply = HTTP.request("http://127.0.0.1:\(Peers.redfishPort)\(path)", method: "PATCH", body: Data(body.utf8))
        #expect(reply.status == 204)
    }

    @Test func discoveryPrefersCountersAndTheFinestUnit() throws {
        guard peerRunning("redfish") else { return }
        let joules = meter("Joules")
        #expect(joules.reading?.label == "EnvironmentMetrics.EnergyJoules")
        #expect(joules.method == .counterDelta)
        #expect(joules.devices == [MeteredDevice(source: .redfish, device: Device(class: .chassis, id: "Joules", name: "EnvironmentMetrics.EnergyJoules"))])
        #expect(joules.sample() == [.counter(raw: 1_000_000_000, unitsPerJoule: 1000, wrapRange: nil)])
        // The chassis-wide sensor, not the power supply's, and the Wh counter before power.
        let sensor = meter("WhSensor")
        #expect(sensor.reading?.label == "Sensor TotalEnergy (EnergyWh)")
        #expect(sensor.sample() == [.counter(raw: 5_000_000, unitsPerJoule: 1000.0 / 3600, wrapRange: nil)])
        // Two present supplies summed (100.5 + 200.25 kWh in mWh); the absent bay is skipped.
        let supplies = meter("Supplies")
        #expect(supplies.reading?.label == "PowerSupplyMetrics.EnergykWh of 2 supplies")
        #expect(supplies.sample() == [.counter(raw: 300_750_000, unitsPerJoule: 1000.0 / 3600, wrapRange: nil)])
        let legacy = meter("Legacy")
        #expect(legacy.method == .powerIntegration)
        #expect(legacy.sample() == [.power(watts: 344)])
        let nothing = meter("Nothing")
        #expect(nothing.devices.isEmpty)
        #expect(nothing.problems.map(\.reason) == ["chassis Nothing report neither energy nor power"])
        #expect(meter("Absent").problems.map(\.reason) == ["no chassis \"Absent\" at \(energyURL.absoluteString)/redfish/v1/Chassis (unreadable: \(energyURL.absoluteString)/redfish/v1/Chassis/Ghost: HTTP status 404)"])
        // Without a chassis named, the first that reports anything; "Ghost", listed first, answers
        // 404 and is skipped.
        #expect(meter(nil).devices.map(\.device.id) == ["Joules"])
    }

    @Test func dmtfSampleServiceReadsItsKWhSensor() throws {
        guard peerRunning("redfish") else { return }
        let dmtf = meter(nil, url: URL(string: "http://127.0.0.1:\(Peers.dmtfPort)")!)
        #expect(dmtf.problems.isEmpty, "\(dmtf.problems)")
        #expect(dmtf.reading?.label == "Sensor TotalEnergy (EnergykWh)")
        #expect(dmtf.sample() == [.counter(raw: 325_675_000_000, unitsPerJoule: 1000.0 / 3600, wrapRange: nil)])
        let all = dmtf.readings(of: try JSONParser.parse(Array(HTTP.request("http://127.0.0.1:\(Peers.dmtfPort)/redfish/v1/Chassis/1U").body)))
        #expect(all.map(\.label) == ["Sensor TotalEnergy (EnergykWh)", "EnvironmentMetrics.PowerWatts", "Sensor TotalPower (Power)",
                                     "Power.PowerControl[0].PowerConsumedWatts"])
    }

    @Test func samplesFollowTheServiceAndAMissingReadingIsAGap() throws {
        guard peerRunning("redfish") else { return }
        let joules = meter("Joules")
        defer { try? patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"EnergyJoules": {"Reading": 1000000}}"#) }
        try patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"EnergyJoules": {"Reading": 1000250.5}}"#)
        #expect(joules.sample() == [.counter(raw: 1_000_250_500, unitsPerJoule: 1000, wrapRange: nil)])
        try patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"EnergyJoules": {"Reading": null}}"#)
        #expect(joules.sample() == [.unavailable(reason: "/redfish/v1/Chassis/Joules/EnvironmentMetrics has no EnergyJoules.Reading reading")])
        // async-http-client retries a refused connection until the deadline: the timeout bounds it.
        let gone = RedfishMeter(connection: RedfishConnection(url: URL(string: "http://127.0.0.1:1")!), timeout: 0.5)
        #expect(gone.devices.isEmpty)
        #expect(gone.problems.count == 1)
    }

    @Test func basicAuthOverTLSWithAPrivateCA() throws {
        guard peerRunning("redfish") else { return }
        guard let openssl = Programs.which("openssl") else {
            if Programs.peersRequired { Issue.record("openssl is required (EMIT_REQUIRE_PEERS=1)") }
            return
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let cert = dir.file("cert.pem"), key = dir.file("key.pem")
        let made = try Programs.run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                                              "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        #expect(made.status == 0, "\(made.stderr)")
        let port = 18443 + Int(getpid() % 200)
        let server = try BackgroundProcess("/usr/bin/env", ["python3", Repository.path("Tests/Peers/redfish/server.py"),
                                                            Repository.path("Tests/Peers/redfish/mockups/energy"), String(port),
                                                            "--user", "operator:s3cret", "--cert", cert, "--key", key], log: dir.file("server.log"))
        defer { server.kill9() }
        #expect(server.waitForPort(port), "\(server.output)")
        let url = URL(string: "https://127.0.0.1:\(port)")!
        let password = try dir.write("password", "s3cret\n")
        let wrong = try dir.write("wrong", "guess\n")
        let good = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Legacy", username: "operator", passwordFile: password, caFile: cert))
        #expect(good.problems.isEmpty, "\(good.problems)")
        #expect(good.sample() == [.power(watts: 344)])
        let denied = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Legacy", username: "operator", passwordFile: wrong, caFile: cert))
        #expect(denied.problems.first?.reason.contains("401, check username and password file") == true)
        let untrusted = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Legacy", username: "operator", passwordFile: password), timeout: 0.5)
        #expect(untrusted.devices.isEmpty)
        #expect(untrusted.problems.count == 1)
    }

    @Test func aSessionLogsInOnceAgainWhenForgottenAndOutOnClose() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let port = 18643 + Int(getpid() % 200)
        let server = try BackgroundProcess("/usr/bin/env", ["python3", Repository.path("Tests/Peers/redfish/server.py"),
                                                            Repository.path("Tests/Peers/redfish/mockups/energy"), String(port),
                                                            "--user", "operator:s3cret"], log: dir.file("server.log"))
        defer { server.kill9() }
        #expect(server.waitForPort(port), "\(server.output)")
        let basic = ["Authorization": "Basic " + Data("operator:s3cret".utf8).base64EncodedString()]
        func liveSessions() throws -> [String] {
            let reply = HTTP.request("http://127.0.0.1:\(port)/redfish/v1/SessionService/Sessions", headers: basic)
            guard case .array(let members)? = try JSONParser.parse(Array(reply.body))["Members"] else { return [] }
            return members.compactMap { $0["@odata.id"]?.stringValue }
        }
        let url = URL(string: "http://127.0.0.1:\(port)")!
        let password = try dir.write("password", "s3cret\n")
        let meter = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Legacy", username: "operator", passwordFile: password, useSession: true))
        #expect(meter.problems.isEmpty, "\(meter.problems)")
        let first = try liveSessions()
        #expect(first.count == 1)
        #expect(meter.sample() == [.power(watts: 344)])
        // The BMC forgets the session (a reboot, a timeout): the meter logs in again.
        #expect(HTTP.request("http://127.0.0.1:\(port)\(first[0])", method: "DELETE", headers: basic).status == 204)
        #expect(try liveSessions().isEmpty)
        #expect(meter.sample() == [.power(watts: 344)])
        #expect(try liveSessions().count == 1)
        meter.close()
        #expect(try liveSessions().isEmpty)
        let wrong = try dir.write("wrong", "guess\n")
        let denied = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Legacy", username: "operator", passwordFile: wrong, useSession: true))
        #expect(denied.problems.map(\.reason) == ["session login: 401, check username and password file"])
        let anonymous = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Legacy", useSession: true))
        #expect(anonymous.problems.map(\.reason) == ["a Redfish session needs a username and password file"])
    }
}
