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

    @Test func discoveryPrefersCountersAndTheFinestUnitAndReadsPowerBeside() throws {
        guard peerRunning("redfish") else { return }
        let joules = meter("Joules")
        #expect(joules.counter?.label == "EnvironmentMetrics.EnergyJoules")
        #expect(joules.power?.label == "EnvironmentMetrics.PowerWatts")
        #expect(joules.method == .counterDelta)
        #expect(joules.devices == [MeteredDevice(source: .redfish, device: Device(class: .chassis, id: "Joules",
                                                                                    name: "EnvironmentMetrics.EnergyJoules + EnvironmentMetrics.PowerWatts"))])
        #expect(joules.sample() == [.counter(raw: 1_000_000_000, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 1,
                                             power: PowerReading(watts: 450, quantumWatts: 1))])
        // The chassis-wide sensor, not the power supply's; whole Wh are 3600 J steps.
        let sensor = meter("WhSensor")
        #expect(sensor.counter?.label == "Sensor TotalEnergy (EnergyWh)")
        #expect(sensor.power?.label == "Sensor TotalPower (Power)")
        #expect(sensor.sample() == [.counter(raw: 18_000_000_000, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 3600,
                                             power: PowerReading(watts: 600, quantumWatts: 1))])
        // Two present supplies summed (100.5 + 200.25 kWh); the absent bay is skipped. The sum is no
        // finer than its parts: 0.1 + 0.01 kWh.
        let supplies = meter("Supplies")
        #expect(supplies.counter?.label == "PowerSupplyMetrics.EnergykWh of 2 supplies")
        #expect(supplies.power == nil)
        guard case let .counter(raw, _, _, quantum?, nil) = supplies.sample()[0] else { Issue.record("\(supplies.sample())"); return }
        #expect(raw == 1_082_700_000_000)
        #expect(abs(quantum - 396_000) < 1e-6)
        let legacy = meter("Legacy")
        #expect(legacy.method == .powerIntegration)
        #expect(legacy.sample() == [.power(watts: 344, quantumWatts: 1)])
        let nothing = meter("Nothing")
        #expect(nothing.devices.isEmpty)
        #expect(nothing.problems.map(\.reason) == ["chassis Nothing reports neither energy nor power"])
        let absent = meter("Absent").problems.map(\.reason)
        #expect(absent.count == 1)
        #expect(absent.first?.hasPrefix("no chassis \"Absent\" at \(energyURL.absoluteString)/redfish/v1/Chassis (it has Joules, WhSensor") == true)
        #expect(absent.first?.hasSuffix("(unreadable: \(energyURL.absoluteString)/redfish/v1/Chassis/Ghost: HTTP status 404)") == true)
        // Without a chassis named, the first that reports anything; "Ghost", listed first, answers
        // 404 and is skipped.
        #expect(meter(nil).devices.map(\.device.id) == ["Joules"])
    }

    /// A collection that lists a chassis twice shows it once (found by fuzzing: Fuzz/redfish/).
    @Test func aChassisListedTwiceIsSurveyedOnce() throws {
        let documents: [String: JSONValue] = [
            "/redfish/v1/Chassis": .object([("Members", .array([.object([("@odata.id", .string("/redfish/v1/Chassis/A"))]),
                                                                 .object([("@odata.id", .string("/redfish/v1/Chassis/A/"))])]))]),
            "/redfish/v1/Chassis/A": .object([("Id", .string("A")), ("@odata.id", .string("/redfish/v1/Chassis/A"))]),
        ]
        let service = RedfishDocuments { path throws(RedfishFailure) in
            guard let document = documents[path] else { throw RedfishFailure(description: "\(path): 404") }
            return document
        }
        let (chassis, unreadable) = try service.survey()
        #expect(chassis.map(\.id) == ["A"])
        #expect(unreadable.isEmpty)
    }

    @Test func ofTwoChassisWideTotalsThePowerEquipmentsOwnSourceIsRead() throws {
        // As in DMTF's public-pdu sample: two sensors call themselves the chassis's total power,
        // ten times apart; the rack PDU's metrics name the one the collection does not list.
        func ref(_ path: String) -> JSONValue { .object([("@odata.id", .string(path))]) }
        func sensor(_ id: String, _ type: String, _ units: String, _ reading: Double) -> JSONValue {
            .object([("Id", .string(id)), ("ReadingType", .string(type)), ("ReadingUnits", .string(units)), ("Reading", .number(reading)),
                     ("PhysicalContext", .string("Chassis")), ("ElectricalContext", .string("Total")),
                     ("Status", .object([("State", .string("Enabled"))]))])
        }
        let base = "/redfish/v1/Chassis/PDU"
        var documents: [String: JSONValue] = [
            base: .object([("Id", .string("PDU")), ("@odata.id", .string(base)), ("Sensors", ref(base + "/Sensors")),
                           ("Links", .object([("PowerDistribution", ref("/redfish/v1/PowerEquipment/RackPDUs/1"))]))]),
            base + "/Sensors": .object([("Members", .array(["ACMainPower", "MainsEnergy", "PDUEnergy"].map { ref(base + "/Sensors/" + $0) }))]),
            base + "/Sensors/ACMainPower": sensor("ACMainPower", "Power", "W", 28783),
            base + "/Sensors/PDUPower": sensor("PDUPower", "Power", "W", 2734.8),
            base + "/Sensors/MainsEnergy": sensor("MainsEnergy", "EnergykWh", "kW.h", 90210),
            base + "/Sensors/PDUEnergy": sensor("PDUEnergy", "EnergykWh", "kW.h", 7855),
            "/redfish/v1/PowerEquipment/RackPDUs/1": .object([("Metrics", ref("/redfish/v1/PowerEquipment/RackPDUs/1/Metrics"))]),
            "/redfish/v1/PowerEquipment/RackPDUs/1/Metrics": .object([
                ("PowerWatts", .object([("DataSourceUri", .string(base + "/Sensors/PDUPower")), ("Reading", .number(6438))])),
                ("EnergykWh", .object([("DataSourceUri", .string(base + "/Sensors/PDUEnergy/")), ("Reading", .number(56438))]))]),
        ]
        func readings() throws -> [String] {
            let service = RedfishDocuments { [documents] path throws(RedfishFailure) in
                guard let document = documents[RedfishDocuments.trimmed(path)] else { throw RedfishFailure(description: "\(path): 404") }
                return document
            }
            return service.readings(of: try #require(documents[base])).map(\.label)
        }
        #expect(try readings() == ["Sensor PDUEnergy (EnergykWh)", "Sensor MainsEnergy (EnergykWh)",
                                   "Sensor PDUPower (Power)", "Sensor ACMainPower (Power)"])
        // Without the equipment's word, the collection and its order stand.
        documents["/redfish/v1/PowerEquipment/RackPDUs/1/Metrics"] = .object([])
        #expect(try readings() == ["Sensor MainsEnergy (EnergykWh)", "Sensor PDUEnergy (EnergykWh)", "Sensor ACMainPower (Power)"])
        // A source the equipment names that the service cannot serve is passed over.
        documents["/redfish/v1/PowerEquipment/RackPDUs/1/Metrics"] = .object([
            ("PowerWatts", .object([("DataSourceUri", .string(base + "/Sensors/Missing"))]))])
        #expect(try readings() == ["Sensor MainsEnergy (EnergykWh)", "Sensor PDUEnergy (EnergykWh)", "Sensor ACMainPower (Power)"])
    }

    @Test func aChassisIsNamedByIdOrByItsODataID() throws {
        guard peerRunning("redfish") else { return }
        for name in ["KWhTower", "/redfish/v1/Chassis/KWhTower", "/redfish/v1/Chassis/KWhTower/"] {
            #expect(meter(name).devices.map(\.device.id) == ["KWhTower"], "\(name)")
        }
    }

    @Test func aWholeKWhCounterComesWithThePowerOfTheSameChassis() throws {
        guard peerRunning("redfish") else { return }
        let tower = meter("KWhTower")
        #expect(tower.counter?.label == "Sensor TotalEnergy (EnergykWh)")
        #expect(tower.power?.label == "Sensor TotalPower (Power)")
        #expect(tower.sample() == [.counter(raw: 1_172_430_000_000_000, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 3_600_000,
                                            power: PowerReading(watts: 374, quantumWatts: 1))])
    }

    @Test func chassisOnlyInLinksContainsAreFoundAndContainmentIsSaid() throws {
        guard peerRunning("redfish") else { return }
        let tower = meter("KWhTower")
        let card = try #require(tower.chassis.first { $0.id == "Card" })
        #expect(card.onlyThroughContains)
        #expect(tower.chassis.first { $0.id == "KWhTower" }?.contains == ["Card"])
        #expect(tower.notes.map(\.reason) == ["chassis KWhTower contains Card (Links.Contains): its figure includes theirs; never add them up"])
        let cardMeter = meter("Card")
        #expect(cardMeter.problems.isEmpty, "\(cardMeter.problems)")
        #expect(cardMeter.sample() == [.power(watts: 75.5, quantumWatts: 0.1)])
    }

    @Test func aPowerShelfWithSensorsOnlyIsMeteredFromItsSupplyJoulesAndItsTotalInput() throws {
        guard peerRunning("redfish") else { return }
        let shelf = meter("Shelf")
        #expect(shelf.problems.isEmpty, "\(shelf.problems)")
        // Input counters of the two present supplies (one in the non-standard state Standby);
        // outputs and the small hot-swap sensor listed first are not the shelf's draw.
        #expect(shelf.counter?.label == "2 supply Sensors (J) summed")
        #expect(shelf.power?.label == "Sensor total_power_in (Power)")
        #expect(shelf.sample() == [.counter(raw: 348_977_000, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 2,
                                            power: PowerReading(watts: 1749, quantumWatts: 1))])
    }

    @Test func aRoundAsksForAllItsDocumentsAtOnceAndForEachOnce() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let port = 18843 + Int(getpid() % 200)
        let server = try BackgroundProcess("/usr/bin/env", ["python3", Repository.path("Tests/Peers/redfish/server.py"),
                                                            Repository.path("Tests/Peers/redfish/mockups/energy"), String(port)], log: dir.file("server.log"))
        defer { server.kill9() }
        #expect(server.waitForPort(port), "\(server.output)")
        let url = URL(string: "http://127.0.0.1:\(port)")!
        func stats() throws -> (gets: [String: Int], mostAtOnce: Int) {
            let reply = try JSONParser.parse(Array(HTTP.request("http://127.0.0.1:\(port)/_stats").body))
            guard case .object(let gets)? = reply["gets"], let most = reply["most_at_once"]?.numberValue else { throw CocoaError(.coderReadCorrupt) }
            return (Dictionary(uniqueKeysWithValues: gets.map { ($0.0, Int($0.1.numberValue ?? -1)) }), Int(most))
        }
        // A slow BMC: each answer takes 0.4 s.
        func slow() { #expect(HTTP.request("http://127.0.0.1:\(port)/_stats", method: "POST", body: Data(#"{"delay": 0.4}"#.utf8)).status == 204) }

        // A shelf's two supply counters and its total power: three documents, asked for together.
        let shelf = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Shelf"))
        let joules = RedfishMeter(connection: RedfishConnection(url: url, chassis: "Joules"))
        let paths = Set(((shelf.counter?.sources ?? []) + (shelf.power?.sources ?? [])).map(\.path))
        #expect(paths.count == 3)
        slow()
        #expect(shelf.sample() == [.counter(raw: 348_977_000, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 2,
                                            power: PowerReading(watts: 1749, quantumWatts: 1))])
        var seen = try stats()
        #expect(seen.gets == Dictionary(uniqueKeysWithValues: paths.map { ($0, 1) }))
        #expect(seen.mostAtOnce == 3, "read one after another, a round takes the sum of the BMC's delays")

        // The counter and the power in one document: it is read once a round.
        slow()
        #expect(joules.sample() == [.counter(raw: 1_000_000_000, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 1,
                                             power: PowerReading(watts: 450, quantumWatts: 1))])
        seen = try stats()
        #expect(seen.gets == ["/redfish/v1/Chassis/Joules/EnvironmentMetrics": 1])
        shelf.close()
        joules.close()
    }

    @Test func theReadingTypeDecidesAndAUnitThatDisagreesIsSaid() throws {
        guard peerRunning("redfish") else { return }
        let kw = meter("KwUnits")
        #expect(kw.counter?.kind == .energykWh)
        #expect(kw.notes.map(\.reason) == [#"Sensor EnergyA1 (EnergykWh): ReadingUnits "kW" disagrees with ReadingType EnergykWh; read by ReadingType as kW.h"#])
        // No Sensors link, a phase listed before the total, and an energy sensor of the DC output.
        let phases = meter("Phases")
        #expect(phases.counter == nil)
        #expect(phases.power?.label == "Sensor PowerMains1 (Power)")
        #expect(phases.sample() == [.power(watts: 427.3, quantumWatts: 0.1)])
    }

    @Test func dmtfSampleServiceReadsItsKWhSensorAndItsPower() throws {
        guard peerRunning("redfish") else { return }
        let dmtf = meter(nil, url: URL(string: "http://127.0.0.1:\(Peers.dmtfPort)")!)
        #expect(dmtf.problems.isEmpty, "\(dmtf.problems)")
        #expect(dmtf.counter?.label == "Sensor TotalEnergy (EnergykWh)")
        #expect(dmtf.power?.label == "EnvironmentMetrics.PowerWatts")
        guard case let .counter(raw, _, _, quantum, power?) = dmtf.sample()[0] else { Issue.record("\(dmtf.sample())"); return }
        #expect(raw == 1_172_430_000_000_000)
        #expect(quantum == 3_600_000)
        #expect(power.watts > 0)
        let all = dmtf.readings(of: try JSONParser.parse(Array(HTTP.request("http://127.0.0.1:\(Peers.dmtfPort)/redfish/v1/Chassis/1U").body)))
        #expect(all.map(\.label) == ["Sensor TotalEnergy (EnergykWh)", "supply Sensor PS1Energy (kW.h)", "EnvironmentMetrics.PowerWatts", "Sensor TotalPower (Power)",
                                     "Power.PowerControl[0].PowerConsumedWatts"])
    }

    @Test func samplesFollowTheServiceAndAMissingReadingIsAGap() throws {
        guard peerRunning("redfish") else { return }
        let joules = meter("Joules")
        defer { try? patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"EnergyJoules": {"Reading": 1000000}, "PowerWatts": {"Reading": 450.0}}"#) }
        try patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"EnergyJoules": {"Reading": 1000250.5}}"#)
        #expect(joules.sample() == [.counter(raw: 1_000_250_500, unitsPerJoule: 1000, wrapRange: nil, quantumJoules: 0.1,
                                             power: PowerReading(watts: 450, quantumWatts: 1))])
        // The counter has no reading this time: a gap in the counter, while the power read at the
        // same moment still counts.
        try patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"EnergyJoules": {"Reading": null}}"#)
        #expect(joules.sample() == [.power(watts: 450, quantumWatts: 1)])
        try patch("/redfish/v1/Chassis/Joules/EnvironmentMetrics", #"{"PowerWatts": {"Reading": null}}"#)
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
        #expect(good.sample() == [.power(watts: 344, quantumWatts: 1)])
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
        #expect(meter.sample() == [.power(watts: 344, quantumWatts: 1)])
        // The BMC forgets the session (a reboot, a timeout): the meter logs in again.
        #expect(HTTP.request("http://127.0.0.1:\(port)\(first[0])", method: "DELETE", headers: basic).status == 204)
        #expect(try liveSessions().isEmpty)
        #expect(meter.sample() == [.power(watts: 344, quantumWatts: 1)])
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
