import EmitContract
import EmitTestSupport
import Foundation
import Testing

func readEvents(_ path: String) throws -> [EnergyEvent] {
    try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
        try EnergyEvent(validating: try JSONParser.parse(String($0)))
    }
}

/// `emit facility collect` and `emit run --source ipmi|redfish` through the built binary, against
/// the peers of Tests/Peers (the steady BMC, UPS "ups-load", snmpsim, the Redfish chassis
/// "Collect" that only this suite changes).
@Suite(.serialized) struct FacilityCollectCLITests {
    static let peers = ["ipmi", "nut", "snmp", "redfish"]

    func config(_ dir: TemporaryDirectory, meters: [String]) throws -> String {
        try dir.write("collect.json", """
            {"facility_id": "campus-a", "region": "eu-west", "grid_region": "DE",
             "meters": [\(meters.joined(separator: ",\n"))]}
            """)
    }

    var collectJoules: Double? {
        let reply = HTTP.request("http://127.0.0.1:\(Peers.redfishPort)/redfish/v1/Chassis/Collect/EnvironmentMetrics")
        return (try? JSONParser.parse(Array(reply.body)))?["EnergyJoules"]?["Reading"]?.numberValue
    }

    @Test func everyKindOfMeterInWindowsThatTileTime() throws {
        guard Self.peers.allSatisfy(peerRunning) else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let password = try dir.write("bmc.pw", "secret\n")
        let wrongPassword = try dir.write("wrong.pw", "guess\n")
        let community = try dir.write("pdu.community", "entity\n")
        let path = try config(dir, meters: [
            #"{"id": "node-7", "source": "ipmi", "class": "node", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.steadyIPMIPort), "username": "admin", "password_file": "\#(password)"}"#,
            #"{"id": "ups-1", "source": "ups", "class": "ups", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.nutPort), "ups": "ups-load"}"#,
            #"{"id": "rack-1-inlet", "source": "pdu", "class": "pdu_inlet", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.snmpPort), "community_file": "\#(community)", "profile": "entity-sensor", "index": 11}"#,
            #"{"id": "rack-2-inlet", "source": "pdu", "class": "pdu_inlet", "pue_applied": true, "host": "127.0.0.1", "port": \#(Peers.snmpPort), "community": "pdu-live", "profile": "apc-rpdu2"}"#,
            #"{"id": "rack-3-inlet", "source": "pdu", "class": "pdu_inlet", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.snmpPort), "community": "apc-ap7902b", "profile": "apc-rpdu2"}"#,
            #"{"id": "gpu-chassis", "source": "redfish", "class": "chassis", "pue_applied": false, "url": "http://127.0.0.1:\#(Peers.redfishPort)", "chassis": "Collect"}"#,
            #"{"id": "node-8", "source": "ipmi", "class": "node", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.steadyIPMIPort), "username": "admin", "password_file": "\#(wrongPassword)"}"#,
        ])
        let start = try #require(collectJoules)
        let out = dir.file("events.jsonl")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Programs.emit)
        // 2 s windows: a BMC read through ipmitool takes a good part of a second on a loaded
        // machine, and a window needs two reads to say anything.
        process.arguments = ["facility", "collect", "--config", path, "--interval", "100ms", "--window", "2s", "--windows", "3", "--out", out]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // 3600 J arrive in the Redfish counter during the second window.
        usleep(3_000_000)
        let patched = HTTP.request("http://127.0.0.1:\(Peers.redfishPort)/redfish/v1/Chassis/Collect/EnvironmentMetrics", method: "PATCH",
                                   body: Data(#"{"EnergyJoules": {"Reading": \#(start + 3600)}}"#.utf8))
        #expect(patched.status == 204)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("not metered: pdu rack-3-inlet: rPDU2DeviceStatusEnergy.1 is -1: not supported by this PDU"))
        // A BMC that refuses now is kept and sampled (it may come back); with no good read it
        // yields no event, never 0 J.
        #expect(stderr.contains("first read failed, still sampled: ipmi node-8:"))

        let events = try readEvents(out)
        let byDevice = Dictionary(grouping: events, by: { $0.deviceID ?? "" })
        #expect(Set(byDevice.keys) == ["node-7", "ups-1", "rack-1-inlet", "rack-2-inlet", "gpu-chassis"])
        #expect(events.allSatisfy { $0.grain == .facility && $0.facilityID == "campus-a" && $0.json["grid_region"] == .string("DE") })
        // Three windows per meter, consecutive, the same for every meter, each about 2 s.
        let windows = Set(events.map { "\($0.window.from)..\($0.window.to)" })
        #expect(windows.count == 3)
        for (device, list) in byDevice {
            let sorted = list.sorted { $0.window.from < $1.window.from }
            // A BMC read by starting ipmitool can leave a window with fewer than two reads on a
            // loaded machine: that window has no event (never a guess). The others read in-process.
            if device == "node-7" { #expect((1...3).contains(sorted.count)) } else { #expect(sorted.count == 3, "\(device)") }
            for (a, b) in zip(sorted, sorted.dropFirst()) where sorted.count == 3 { #expect(a.window.to == b.window.from, "\(device) windows must tile") }
            #expect(sorted.allSatisfy { windows.contains("\($0.window.from)..\($0.window.to)") })
            #expect(sorted.allSatisfy { abs($0.window.seconds - 2) < 0.2 })
        }
        // Power integrated: the steady BMC's 250 W and the sensor's 1432 W over the time each
        // window observed (a loaded machine's slow first read leaves a part unobserved, which
        // is said as coverage, never filled in).
        func observedWatts(_ event: EnergyEvent) -> Double? {
            guard let coverage = event.json["measurement"]?["coverage"]?.numberValue, coverage > 0 else { return nil }
            return event.energyJoules / (event.window.seconds * coverage)
        }
        for event in byDevice["node-7"] ?? [] {
            let watts = observedWatts(event)
            #expect(watts.map { abs($0 - 250) < 250 * 0.03 } == true, "\(event.energyJoules) J in \(event.window.seconds) s: \(event.json["measurement"] ?? .null)")
            #expect(event.json["measurement"]?["method"] == .string("power_integration"))
            #expect(event.provenance == .measured)
        }
        for event in byDevice["rack-1-inlet"] ?? [] {
            let watts = observedWatts(event)
            #expect(watts.map { abs($0 - 1432) < 1432 * 0.03 } == true, "\(event.energyJoules) J in \(event.window.seconds) s: \(event.json["measurement"] ?? .null)")
        }
        // A UPS read through load × nominal is an estimate.
        #expect(byDevice["ups-1"]?.allSatisfy { $0.provenance == .estimated } == true)
        // A counter in 0.1 kWh (360 kJ steps) is far too coarse for 1 s windows: the PDU's power,
        // read in the same request (hundredths of kW, so 10 W steps), is the evidence.
        for event in byDevice["rack-2-inlet"] ?? [] {
            #expect(event.pueApplied)
            #expect(event.json["measurement"]?["method"] == .string("power_integration"))
            let resolution = try #require(event.json["measurement"]?["resolution_joules"]?.numberValue)
            #expect(abs(resolution - 10 * event.window.seconds) < 1e-3)
            #expect(event.energyJoules > 0)
        }
        // The Redfish counter held still, then jumped 3600 J at once: a stale counter whose steps
        // are coarser than a window. Each window is the chassis's 900 W integrated: never 0 J,
        // never the whole jump in one window.
        let redfish = (byDevice["gpu-chassis"] ?? []).sorted { $0.window.from < $1.window.from }
        #expect(redfish.count == 3)
        for event in redfish {
            #expect(event.json["measurement"]?["method"] == .string("power_integration"))
            let watts = observedWatts(event)
            #expect(watts.map { abs($0 - 900) < 900 * 0.03 } == true, "\(event.energyJoules) J in \(event.window.seconds) s: \(event.json["measurement"] ?? .null)")
        }
        // Every measured event says how fine its evidence is.
        #expect(events.allSatisfy { $0.provenance != .measured || $0.json["measurement"]?["resolution_joules"]?.numberValue != nil })
        #expect(stderr.contains("COVERAGE") && stderr.contains("EVIDENCE"))
    }

    @Test func aWholeKWhCounterIsNeverZeroJoules() throws {
        guard peerRunning("redfish") else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try config(dir, meters: [
            #"{"id": "tower", "source": "redfish", "class": "chassis", "pue_applied": false, "url": "http://127.0.0.1:\#(Peers.redfishPort)", "chassis": "/redfish/v1/Chassis/KWhTower"}"#,
            #"{"id": "kwh-only", "source": "redfish", "class": "chassis", "pue_applied": false, "url": "http://127.0.0.1:\#(Peers.redfishPort)", "chassis": "KWhOnly"}"#,
        ])
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, ["facility", "collect", "--config", path, "--interval", "100ms", "--window", "1s", "--windows", "1", "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        // The tower's counter counts whole kWh (3.6 MJ steps): its 374 W power sensor is the
        // evidence, and the event says the step that evidence can show (1 W × the window).
        let events = try readEvents(out)
        #expect(events.map(\.deviceID) == ["tower"])
        let tower = try #require(events.first)
        #expect(tower.json["measurement"]?["method"] == .string("power_integration"))
        #expect(abs(tower.energyJoules / tower.window.seconds - 374) < 0.5)
        let resolution = try #require(tower.json["measurement"]?["resolution_joules"]?.numberValue)
        #expect(abs(resolution - tower.window.seconds) < 1e-3)
        // A whole-kWh counter with no power beside it cannot say anything about one second.
        #expect(result.stderr.contains("not reported as measured: the counter did not advance"), "\(result.stderr)")
    }

    @Test func sensorsListEveryRedfishChassisAndSayWhatContainsWhat() throws {
        guard peerRunning("redfish") else { return }
        let result = try Programs.run(Programs.emit, ["sensors", "--source", "redfish", "--redfish-url", "http://127.0.0.1:\(Peers.redfishPort)",
                                                      "--redfish-chassis", "KWhTower", "--watch", "400ms"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        // The whole-kWh counter is named, and a short window rests on the power beside it.
        #expect(lines.contains { $0.contains("KWhTower") && $0.contains("Sensor TotalEnergy (EnergykWh)") && $0.contains(" power ") }, "\(result.stdout)")
        // The card, reachable only through the tower's Links.Contains, is listed, and the
        // containment is said so nobody adds the two.
        #expect(lines.contains { $0.contains("Card") && $0.contains("Links.Contains only") }, "\(result.stdout)")
        #expect(result.stdout.contains("chassis KWhTower contains Card (Links.Contains): its figure includes theirs; never add them up"))
    }

    @Test func aSilentBMCDoesNotSlowTheOtherMeters() throws {
        guard peerRunning("ipmi") else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A UDP port that takes ipmitool's packets and never answers: a BMC that went quiet.
        let silent = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, length) == 0 && getsockname(silent, $0, &length) == 0 }
        }
        try #require(bound)
        let silentPort = Int(UInt16(bigEndian: address.sin_port))
        let password = try dir.write("bmc.pw", "secret\n")
        let path = try config(dir, meters: [
            #"{"id": "node-7", "source": "ipmi", "class": "node", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.steadyIPMIPort), "username": "admin", "password_file": "\#(password)"}"#,
            #"{"id": "node-quiet", "source": "ipmi", "class": "node", "pue_applied": false, "host": "127.0.0.1", "port": \#(silentPort), "username": "admin", "password_file": "\#(password)"}"#,
        ])
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, ["facility", "collect", "--config", path, "--interval", "100ms", "--window", "1s", "--windows", "3", "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let events = try readEvents(out)
        #expect(events.allSatisfy { $0.deviceID == "node-7" }, "the quiet BMC never answered, so it has no event")
        #expect(result.stderr.contains("no read completed"), "\(result.stderr)")
        #expect(events.count == 3)
        // On 100 ms ticks a 1 s window holds about 11 samples; rounds that waited for the quiet
        // BMC's timeouts (seconds each) would hold one or two.
        for event in events {
            let samples = event.json["measurement"]?["samples"]?.integerValue ?? 0
            #expect(samples >= 7, "\(samples) samples in \(event.window.seconds) s")
            #expect(abs(event.window.seconds - 1) < 0.2)
            #expect(abs(event.energyJoules / event.window.seconds - 250) < 250 * 0.03)
        }
    }

    @Test func anInterruptWritesThePartialWindow() throws {
        guard peerRunning("ipmi") else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let password = try dir.write("bmc.pw", "secret\n")
        let path = try config(dir, meters: [
            #"{"id": "node-7", "source": "ipmi", "class": "node", "pue_applied": false, "host": "127.0.0.1", "port": \#(Peers.steadyIPMIPort), "username": "admin", "password_file": "\#(password)"}"#,
        ])
        let out = dir.file("events.jsonl")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Programs.emit)
        process.arguments = ["facility", "collect", "--config", path, "--interval", "100ms", "--window", "1h", "--out", out]
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(1_200_000)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let events = try readEvents(out)
        #expect(events.count == 1)
        let seconds = try #require(events.first?.window.seconds)
        #expect(seconds > 0.9 && seconds < 3, "the window ends at the interrupt: \(seconds) s")
        #expect(abs((events.first?.energyJoules ?? 0) / seconds - 250) < 250 * 0.05)
    }

    @Test func configurationErrorsAreAllListedWithTheirFields() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try dir.write("bad.json", """
            {"facility_id": "campus-a", "colour": "blue",
             "meters": [
               {"id": "a", "source": "ipmi", "class": "gpu", "host": "10.0.0.1", "username": "op", "password": "hunter2"},
               {"id": "a", "source": "pdu", "class": "pdu_inlet", "pue_applied": "no", "host": "10.0.0.2", "port": 99999, "profile": "acme", "community": "public"},
               {"id": "c", "source": "nvml", "class": "node", "pue_applied": false},
               {"id": "d", "source": "ups", "class": "ups", "pue_applied": false, "host": "h", "ups": "u", "url": "http://x"}
             ]}
            """)
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, ["facility", "collect", "--config", path, "--windows", "1", "--out", out])
        #expect(result.status == 1)
        for expected in [
            "\(path): colour: unknown member",
            "\(path): region: give region or grid_region (or both)",
            "\(path): meters[0].class: \"gpu\" is not a facility device class",
            "\(path): meters[0].pue_applied: missing",
            "\(path): meters[0].password: credentials are read from files: use password_file",
            "\(path): meters[0].password_file: missing: a remote BMC user needs a password file",
            "\(path): meters[1].id: \"a\" names another meter too",
            "\(path): meters[1].pue_applied: must be true or false",
            "\(path): meters[1].port: must be an integer in 1...65535",
            "\(path): meters[1].profile: \"acme\" is not a PDU profile",
            "\(path): meters[2].source: \"nvml\" is not a live facility meter",
            "\(path): meters[3].url: unknown member for source ups",
        ] {
            #expect(result.stderr.contains(expected), "missing: \(expected)\n\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        let unreadable = try Programs.run(Programs.emit, ["facility", "collect", "--config", dir.file("absent.json")])
        #expect(unreadable.status == 1)
        #expect(unreadable.stderr.contains("absent.json: cannot read the file"))
    }

    @Test func runMetersNodeEnergyThroughTheBMC() throws {
        guard peerRunning("ipmi"), peerRunning("redfish") else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let password = try dir.write("bmc.pw", "secret\n")
        let out = dir.file("events.jsonl")
        let result = try Programs.run(Programs.emit, [
            "run", "--run-id", "asg-9/run-1", "--interval", "100ms", "--source", "ipmi,redfish",
            "--ipmi-host", "127.0.0.1:\(Peers.steadyIPMIPort)", "--ipmi-username", "admin", "--ipmi-password-file", password,
            "--redfish-url", "http://127.0.0.1:\(Peers.redfishPort)", "--redfish-chassis", "Legacy", "--bmc-class", "chassis",
            "--out", out, "--", "sleep", "1",
        ], environment: ["EMIT_NODE_ID": "node-test"])
        #expect(result.status == 0, "\(result.stderr)")
        let events = try readEvents(out)
        let bySource = Dictionary(uniqueKeysWithValues: events.map { ($0.source, $0) })
        let ipmi = try #require(bySource[.ipmi])
        let redfish = try #require(bySource[.redfish])
        #expect(ipmi.computeAssignmentRunID == "asg-9/run-1")
        #expect(ipmi.json["device"]?["class"] == .string("chassis"))
        #expect(ipmi.deviceID == "127.0.0.1")
        #expect(abs(ipmi.energyJoules / ipmi.window.seconds - 250) < 250 * 0.03)
        #expect(abs(redfish.energyJoules / redfish.window.seconds - 344) < 344 * 0.03)
        #expect(redfish.deviceID == "Legacy")

        // A source that was named but cannot be read stops the run before the command starts,
        // with the reason: the job is never run only to lose what the user asked to meter.
        let wrong = try dir.write("wrong.pw", "guess\n")
        let marker = dir.file("ran")
        let refused = try Programs.run(Programs.emit, [
            "run", "--run-id", "asg-9/run-2", "--interval", "100ms", "--source", "ipmi,redfish",
            "--ipmi-host", "127.0.0.1:\(Peers.steadyIPMIPort)", "--ipmi-username", "admin", "--ipmi-password-file", wrong,
            "--redfish-url", "http://127.0.0.1:\(Peers.redfishPort)", "--redfish-chassis", "Legacy",
            "--out", dir.file("refused.jsonl"), "--", "touch", marker,
        ], environment: ["EMIT_NODE_ID": "node-test"])
        #expect(refused.status == 125, "\(refused.stderr)")
        #expect(refused.stderr.contains("--source ipmi cannot be read here") && refused.stderr.contains("ipmi 127.0.0.1:"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker))

        let usage = try Programs.run(Programs.emit, ["run", "--run-id", "r", "--source", "ipmi", "--ipmi-username", "admin", "--", "true"])
        #expect(usage.status == 125)
        #expect(usage.stderr.contains("give --ipmi-host too"))
    }
}
