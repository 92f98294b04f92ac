import EmitContract
import EmitTestSupport
import Foundation
import Testing
@testable import EmitMeters

@Suite struct DCMIOutputTests {
    func sample(_ name: String) throws -> String { try Repository.text("Tests/EmitMetersTests/Fixtures/ipmi/\(name)") }

    @Test(arguments: [
        ("ipmitool-1.8.18-dcmi-power-reading.txt", 215.0),
        ("ipmitool-1.8.19-dcmi-power-reading-sameline.txt", 109.0),
        ("ipmitool-old-dcmi-power-reading-milliseconds.txt", 297.0),
        ("sim-ipmitool-1.8.19-dcmi-power-reading.txt", 280.0),
        ("freeipmi-ipmi-dcmi-get-system-power-statistics.txt", 164.0),
        ("sim-freeipmi-ipmi-dcmi.txt", 280.0),
    ])
    func activeReadingsAreWatts(file: String, watts: Double) throws {
        let reading = try DCMIPowerReading.parse(try sample(file))
        #expect(reading.state == .active)
        #expect(reading.sample == .power(watts: watts, quantumWatts: 1))
    }

    @Test(arguments: ["ipmitool-openbmc-deactivated.txt", "freeipmi-ipmi-dcmi-not-available.txt"])
    func aBMCThatIsNotMeasuringGivesAGapNotZeroWatts(file: String) throws {
        let reading = try DCMIPowerReading.parse(try sample(file))
        guard case .inactive = reading.state else { Issue.record("state \(reading.state)"); return }
        guard case .unavailable(let reason) = reading.sample else { Issue.record("\(reading.sample)"); return }
        #expect(reason.contains("not measuring"))
    }

    @Test func aBareZeroIsNoReadingAndGarbageIsAnError() throws {
        let zero = try DCMIPowerReading.parse("    Instantaneous power reading:                     0 Watts\n")
        guard case .unavailable(let reason) = zero.sample else { Issue.record("\(zero.sample)"); return }
        #expect(reason.contains("0 W"))
        #expect(throws: DCMIPowerReading.ParseError.self) { try DCMIPowerReading.parse("Error: Unable to establish IPMI v2 / RMCP+ session\n") }
    }

    @Test func sdrRowsOfEveryLayoutYieldTheirWatts() throws {
        let dell = SDRPowerRow.parse(try sample("ipmitool-sdr-type-current-dell.txt"))
        #expect(dell == [SDRPowerRow(name: "Pwr Consumption", watts: 98, status: "ok")])
        let intel = SDRPowerRow.parse(try sample("ipmitool-sdr-list-intel-psu-input-power.txt"))
        #expect(intel.map(\.name) == ["PS1 Input Power", "PS2 Input Power"])
        #expect(intel.map(\.watts) == [168, 0])
        #expect(SDRPowerRow.parse(try sample("ipmitool-sdr-elist-psu-power-in.txt")).map(\.watts) == [132, 160])
        let sensors = SDRPowerRow.parse(try sample("sim-ipmitool-sensor-list.txt"))
        #expect(sensors.map(\.name) == ["Pwr Consumption", "PS1 Input Power"])
        #expect(sensors.map(\.watts) == [280, 150])
        #expect(SDRPowerRow(name: "PS2", watts: nil, status: "ns").sample == .unavailable(reason: "sensor \"PS2\" has no reading (status ns)"))
    }
}

/// Against two ipmi_sim BMCs over lanplus; this suite alone changes BMC "a"'s power.
@Suite(.serialized) struct IPMIMeterTests {
    func connection(port: Int = Peers.ipmiPort, sensor: String? = nil, passwordFile: String = Peers.ipmiPasswordFile, tool: String = "ipmitool") -> IPMIConnection {
        IPMIConnection(host: "127.0.0.1", port: port, username: "admin", passwordFile: passwordFile, sensor: sensor, tool: tool)
    }

    @Test func readsDCMIPowerAsTheBMCChangesIt() throws {
        guard peerRunning("ipmi") else { return }
        defer { try? "250\n".write(toFile: Peers.ipmiPowerFile, atomically: true, encoding: .utf8) }
        let meter = IPMIMeter(connection: connection(), device: Device(class: .node, id: "bmc-a"))
        #expect(meter.problems.isEmpty)
        #expect(meter.devices == [MeteredDevice(source: .ipmi, device: Device(class: .node, id: "bmc-a"))])
        try "410\n".write(toFile: Peers.ipmiPowerFile, atomically: true, encoding: .utf8)
        #expect(meter.sample() == [.power(watts: 410, quantumWatts: 1)])
        try "deactivated\n".write(toFile: Peers.ipmiPowerFile, atomically: true, encoding: .utf8)
        guard case .unavailable(let reason) = meter.sample()[0] else { Issue.record("a deactivated reading was taken as power"); return }
        #expect(reason.contains("deactivated"))
    }

    @Test func readsAnSDRPowerSensorWhereDCMIIsMissing() throws {
        guard peerRunning("ipmi") else { return }
        let meter = IPMIMeter(connection: connection(port: Peers.steadyIPMIPort, sensor: "Pwr Consumption"), device: Device(class: .node, id: "b"))
        #expect(meter.method(of: 0) == .powerIntegration)
        #expect(meter.sample() == [.power(watts: 200, quantumWatts: 1)])
        let missing = IPMIMeter(connection: connection(port: Peers.steadyIPMIPort, sensor: "PS9 Input Power"), device: Device(class: .node, id: "b"))
        #expect(missing.devices.isEmpty)
        #expect(missing.problems.map(\.reason) == ["no power sensor named \"PS9 Input Power\" in `ipmitool sdr elist`"])
    }

    @Test func wrongPasswordAndMissingToolAreReasonsNotReadings() throws {
        guard peerRunning("ipmi") else { return }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let wrong = try dir.write("wrong.pw", "not-the-password\n")
        let denied = IPMIMeter(connection: connection(port: Peers.steadyIPMIPort, passwordFile: wrong), device: Device(class: .node, id: "b"), timeout: 10)
        #expect(denied.devices.isEmpty)
        #expect(denied.problems.first?.reason.contains("exited with status") == true)
        // A facility collector keeps an unreadable BMC: its failed reads become gaps.
        let kept = IPMIMeter(connection: connection(port: Peers.steadyIPMIPort, passwordFile: wrong), device: Device(class: .node, id: "b"),
                             timeout: 10, keepUnreadable: true)
        #expect(kept.devices.count == 1)
        guard case .unavailable = kept.sample()[0] else { Issue.record("read with a wrong password"); return }
        let unreadable = IPMIMeter(connection: connection(passwordFile: dir.file("absent.pw")), device: Device(class: .node, id: "b"))
        #expect(unreadable.problems.map(\.reason) == ["password file \(dir.file("absent.pw")) is not readable"])
        let noTool = IPMIMeter(connection: connection(tool: "emit-no-such-ipmitool"), device: Device(class: .node, id: "b"))
        #expect(noTool.problems.map(\.reason) == ["emit-no-such-ipmitool is not installed (apt-get install ipmitool)"])
    }

    @Test func inBandAndRemoteArgumentsNeverCarryThePassword() {
        #expect(IPMIConnection(tool: "ipmitool").arguments == ["dcmi", "power", "reading"])
        let remote = IPMIConnection(host: "10.0.0.7", port: 623, username: "op", passwordFile: "/etc/bmc.pw", tool: "ipmitool").arguments
        #expect(remote == ["-I", "lanplus", "-C", "3", "-H", "10.0.0.7", "-p", "623", "-U", "op", "-f", "/etc/bmc.pw", "-N", "2", "-R", "1", "dcmi", "power", "reading"])
        #expect(!remote.contains("-P"))
    }
}

@Suite struct NUTProtocolTests {
    @Test func quotedValuesAndErrorsParse() {
        #expect(NUTProtocol.value(ofVarLine: #"VAR ups ups.realpower "310""#, ups: "ups", variable: "ups.realpower") == "310")
        #expect(NUTProtocol.value(ofVarLine: #"VAR ups ups.model "5PX \"1500\" \\ x""#, ups: "ups", variable: "ups.model") == #"5PX "1500" \ x"#)
        #expect(NUTProtocol.value(ofVarLine: #"VAR other ups.realpower "310""#, ups: "ups", variable: "ups.realpower") == nil)
        #expect(NUTProtocol.error(in: "ERR VAR-NOT-SUPPORTED") == "VAR-NOT-SUPPORTED")
        #expect(NUTProtocol.error(in: "VAR ups x \"1\"") == nil)
    }
}

/// Against upsd with dummy-ups drivers; this suite alone edits the data file of UPS "ups".
@Suite(.serialized) struct UPSMeterTests {
    func meter(_ ups: String, preferPower: Bool = false) -> UPSMeter {
        UPSMeter(connection: NUTConnection(host: "127.0.0.1", port: Peers.nutPort, ups: ups, preferPower: preferPower), device: Device(class: .ups, id: ups))
    }

    @Test func realPowerIsReadAsItChanges() throws {
        guard peerRunning("nut") else { return }
        let file = Peers.upsDataFile("ups")
        // The peer's own data, whatever an interrupted earlier run left in the file.
        let original = try Repository.text("Tests/Peers/nut/ups.dev")
        defer { try? original.write(toFile: file, atomically: true, encoding: .utf8) }
        let ups = meter("ups")
        #expect(ups.reading == .realPower)
        #expect(ups.devices.map(\.provenance) == [.measured])
        /// dummy-ups notices a new file within its poll interval (2 s); upsd serves it after.
        func serves(_ watts: Double) -> Bool {
            for _ in 0..<80 {
                if ups.sample() == [.power(watts: watts, quantumWatts: 1)] { return true }
                usleep(100_000)
            }
            return false
        }
        try original.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(serves(300))
        try original.replacingOccurrences(of: "ups.realpower: 300", with: "ups.realpower: 420").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(serves(420))
        ups.close()
    }

    @Test func loadTimesNominalIsOnlyEstimatedAndVoltAmperesAreNeverWatts() throws {
        guard peerRunning("nut") else { return }
        let load = meter("ups-load")
        #expect(load.reading == .loadTimesNominal)
        #expect(load.devices.map(\.provenance) == [.estimated])
        #expect(load.sample() == [.power(watts: 300, quantumWatts: 15)])  // 20 % of 1500 W, in steps of 1 %
        let apparent = meter("ups-va")
        #expect(apparent.devices.isEmpty)
        #expect(apparent.problems.count == 1)
        #expect(apparent.problems.first?.reason.contains("ups.power, which is VA, not W") == true)
    }

    @Test func anEnergyCounterIsPreferredUnlessPowerIsAskedFor() throws {
        guard peerRunning("nut") else { return }
        let counter = meter("ups-energy")
        #expect(counter.reading == .energyCounter(variable: "experimental.output.energy"))
        // Whole Wh (3600 J steps), with the real power beside it for windows too short for them.
        #expect(counter.sample() == [.counter(raw: 1_000_000, unitsPerJoule: 1000 / 3600, wrapRange: nil, quantumJoules: 3600,
                                              power: PowerReading(watts: 300, quantumWatts: 1))])
        #expect(meter("ups-energy", preferPower: true).reading == .realPower)
    }

    /// What real drivers serve (the quirks of NUT's device dump library), as upsd would serve
    /// them after dummy-ups has read a dump: comments such as a submitter's `#BAD` are gone.
    @Test func implausibleReadingsAreRefusedWithTheReason() {
        func check(_ variables: [String: String]) -> String? { UPSMeter.implausibility(of: variables, ups: "u") }
        // A nominal rating no UPS has (a CyberPower unit read as 88 W), with only ups.load beside it.
        #expect(check(["ups.load": "26", "ups.realpower.nominal": "88"])?.contains("ups.realpower.nominal is 88 W, not a plausible UPS rating") == true)
        // The same load with a plausible rating is an estimate, not a refusal.
        #expect(check(["ups.load": "18", "ups.realpower.nominal": "600"]) == nil)
        // What a driver serves where it cannot read output power (a dump marked #BAD).
        #expect(check(["ups.realpower": "0", "ups.load": "0", "ups.power": "0", "ups.power.nominal": "3000"])?
            .contains("all 0") == true)
        // Real power above its own rating.
        #expect(check(["ups.realpower": "3000.00", "ups.realpower.nominal": "1500"])?.contains("above 1.5 × its own rating") == true)
        // A value that is not a number.
        #expect(check(["ups.realpower": "0 #BAD"]) == "UPS u: ups.realpower is \"0 #BAD\", not a number")
        // A bogus apparent-power rating does not matter where real power is served.
        #expect(check(["ups.realpower": "96", "ups.load": "16", "ups.power.nominal": "100000"]) == nil)
        // Outlets that do not add up to the total are never read: ups.realpower is.
        #expect(check(["ups.realpower": "504", "outlet.realpower": "274", "outlet.1.realpower": "162"]) == nil)
    }

    @Test func implausibleDriversAreRefusedThroughUpsd() throws {
        guard peerRunning("nut") else { return }
        let bogus = meter("ups-bad-nominal")
        #expect(bogus.devices.isEmpty)
        #expect(bogus.problems.first?.reason.contains("ups.realpower.nominal is 88 W, not a plausible UPS rating") == true, "\(bogus.problems)")
        let unread = meter("ups-unread")
        #expect(unread.devices.isEmpty)
        #expect(unread.problems.first?.reason.contains("are all 0") == true, "\(unread.problems)")
    }

    @Test func unknownUPSAndClosedPortAreReported() throws {
        guard peerRunning("nut") else { return }
        let unknown = meter("no-such-ups")
        #expect(unknown.devices.isEmpty)
        #expect(unknown.problems.first?.reason == "upsd answered UNKNOWN-UPS for UPS no-such-ups")
        let closed = UPSMeter(connection: NUTConnection(host: "127.0.0.1", port: 1, ups: "ups"), device: Device(class: .ups, id: "x"))
        #expect(closed.problems.first?.reason.hasPrefix("cannot connect to 127.0.0.1:1") == true)
    }
}

@Suite struct SNMPMessageTests {
    @Test func aGetRequestIsTheBERAnyAgentExpects() throws {
        // What net-snmp's `snmpget -v2c -c public HOST 1.3.6.1.2.1.1.5.0` sends (captured on
        // loopback), with its random request-id replaced by 1.
        let expected: [UInt8] = [0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, 0x70, 0x75, 0x62, 0x6c, 0x69, 0x63,
                                 0xa0, 0x19, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
                                 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x05, 0x00, 0x05, 0x00]
        #expect(try SNMPMessage.getRequest(requestID: 1, community: "public", oids: [[1, 3, 6, 1, 2, 1, 1, 5, 0]]) == expected)
    }

    @Test func responsesDecodeEveryValueKindAndSkipOtherRequests() throws {
        // GetResponse id 7: INTEGER -1, Gauge32 4294967295, Counter64 2^40, noSuchInstance.
        let bindings: [UInt8] = [0x30, 0x08, 0x06, 0x03, 0x2b, 0x06, 0x01, 0x02, 0x01, 0xff] +
            [0x30, 0x0c, 0x06, 0x03, 0x2b, 0x06, 0x02, 0x42, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff] +
            [0x30, 0x0d, 0x06, 0x03, 0x2b, 0x06, 0x03, 0x46, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00] +
            [0x30, 0x07, 0x06, 0x03, 0x2b, 0x06, 0x04, 0x81, 0x00]
        func message(id: UInt8) -> [UInt8] {
            let pdu: [UInt8] = [0x02, 0x01, id, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, UInt8(bindings.count)] + bindings
            let body: [UInt8] = [0x02, 0x01, 0x01, 0x04, 0x01, 0x70, 0xa2, UInt8(pdu.count)] + pdu
            return [0x30, UInt8(body.count)] + body
        }
        let values = try SNMPMessage.response(message(id: 7), requestID: 7, count: 4)
        #expect(values == [.integer(-1), .unsigned(4_294_967_295), .unsigned(1 << 40), .missing("noSuchInstance")])
        #expect(try SNMPMessage.response(message(id: 6), requestID: 7, count: 4) == nil)
        #expect(throws: SNMPMessage.Failure.self) { try SNMPMessage.response([0x30, 0x05, 0x02], requestID: 7, count: 1) }
    }
}

/// Against snmpsim serving real APC recordings and this project's Raritan / ENTITY-SENSOR data.
@Suite struct PDUMeterTests {
    func meter(_ community: String, _ profile: PDUProfile, index: Int = 1, outlet: Int? = nil, preferPower: Bool = false) -> PDUMeter {
        PDUMeter(connection: SNMPConnection(host: "127.0.0.1", port: Peers.snmpPort, community: community, profile: profile,
                                            index: index, outlet: outlet, preferPower: preferPower),
                 device: Device(class: outlet == nil ? .pduInlet : .pduOutlet, id: community))
    }

    @Test func apcRecordingReadsItsEnergyCounterOrItsPower() throws {
        guard peerRunning("snmp") else { return }
        let counter = meter("apc-ap8641", .apcRPDU2)
        #expect(counter.problems.isEmpty, "\(counter.problems)")
        #expect(counter.method == .counterDelta)
        // rPDU2DeviceStatusEnergy 19516 in 0.1 kWh: one unit is 360 kJ.
        // With the device power beside it (121 hundredths of kW), read in the same request.
        #expect(counter.sample() == [.counter(raw: 19516, unitsPerJoule: 1 / 360_000, wrapRange: nil,
                                              power: PowerReading(watts: 1210, quantumWatts: 10))])
        let power = meter("apc-ap8641", .apcRPDU2, preferPower: true)
        #expect(power.method == .powerIntegration)
        #expect(power.sample() == [.power(watts: 1210, quantumWatts: 10)])  // 121 hundredths of kW
        let outlet = meter("apc-ap8641", .apcRPDU2, outlet: 1, preferPower: true)
        #expect(outlet.sample() == [.power(watts: 163, quantumWatts: 1)])
    }

    @Test func aPDUAnsweringMinusOneIsReportedNotCounted() throws {
        guard peerRunning("snmp") else { return }
        let old = meter("apc-ap7902b", .apcRPDU2)
        #expect(old.devices.isEmpty)
        #expect(old.problems.map(\.reason) == ["rPDU2DeviceStatusEnergy.1 is -1: not supported by this PDU; rPDU2DeviceStatusPower.1 is -1: not supported by this PDU"])
    }

    @Test func growingCountersGrow() throws {
        guard peerRunning("snmp") else { return }
        let live = meter("pdu-live", .apcRPDU2, outlet: 3)
        guard case .counter(let first, _, _, _, _) = live.sample()[0] else { Issue.record("no counter"); return }
        usleep(1_200_000)
        guard case .counter(let second, _, _, _, _) = live.sample()[0] else { Issue.record("no counter"); return }
        #expect(second > first)
    }

    @Test func raritanScalesByDecimalDigits() throws {
        guard peerRunning("snmp") else { return }
        let energy = meter("raritan", .raritanPDU2)
        #expect(energy.method == .counterDelta)
        guard case .counter(let raw, let unitsPerJoule, nil, _, _) = energy.sample()[0] else { Issue.record("no counter"); return }
        #expect(raw >= 193_359)
        #expect(unitsPerJoule == 1.0 / 3600)  // Wh
        let power = meter("raritan", .raritanPDU2, index: 2)
        #expect(power.method == .powerIntegration)  // inlet 2 has no energy sensor
        #expect(power.sample() == [.power(watts: 1680.5, quantumWatts: 0.1)])
    }

    @Test func entitySensorsNeedWattsAndAnOkStatus() throws {
        guard peerRunning("snmp") else { return }
        #expect(meter("entity", .entitySensor, index: 11).sample() == [.power(watts: 1432, quantumWatts: 1)])
        #expect(meter("entity", .entitySensor, index: 15).sample() == [.power(watts: 1430, quantumWatts: 10)])  // 143, kilo, precision 2
        #expect(meter("entity", .entitySensor, index: 12).problems.map(\.reason) == ["ENTITY-SENSOR 12 is not a watts sensor (entPhySensorType 3)"])
        #expect(meter("entity", .entitySensor, index: 16).problems.map(\.reason) == ["ENTITY-SENSOR 16 entPhySensorOperStatus is 2 (not ok)"])
    }

    @Test func aWrongCommunityIsSilenceAndSaysSo() throws {
        guard peerRunning("snmp") else { return }
        let wrong = PDUMeter(connection: SNMPConnection(host: "127.0.0.1", port: Peers.snmpPort, community: "no-such-community", profile: .apcRPDU2),
                             device: Device(class: .pduInlet, id: "x"), timeout: 0.2)
        #expect(wrong.devices.isEmpty)
        #expect(wrong.problems.first?.reason.contains("wrong community, or the agent is down") == true)
    }
}
