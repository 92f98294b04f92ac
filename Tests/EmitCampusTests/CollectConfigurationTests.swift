import EmitContract
import EmitMeters
import EmitTestSupport
import Foundation
import Testing
@testable import EmitCampus

@Suite struct CollectConfigurationTests {
    @Test func everyConnectionKindParsesWithItsDefaults() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let community = try dir.write("community", "s3cret-community\n")
        let text = """
            {"facility_id": "campus-a", "grid_region": "DE", "meters": [
              {"id": "n1", "source": "ipmi", "class": "node", "pue_applied": false},
              {"id": "n2", "source": "ipmi", "class": "chassis", "pue_applied": true, "host": "10.0.0.2", "port": 6230,
               "username": "op", "password_file": "/etc/bmc.pw", "cipher_suite": 17, "sensor": "PS1 Input Power"},
              {"id": "c1", "source": "redfish", "class": "chassis", "pue_applied": false, "url": "https://10.0.0.3",
               "chassis": "1U", "username": "op", "password_file": "/etc/bmc.pw", "ca_file": "/etc/ca.pem", "session": true},
              {"id": "u1", "source": "ups", "class": "ups", "pue_applied": false, "host": "10.0.0.4", "ups": "rack", "prefer": "power"},
              {"id": "p1", "source": "pdu", "class": "pdu_outlet", "pue_applied": false, "host": "10.0.0.5",
               "community_file": "\(community)", "profile": "raritan-pdu2", "outlet": 7, "unit": 2}
            ]}
            """
        let config = try CollectConfiguration.parse(Array(text.utf8), file: "c.json")
        #expect(config.facilityID == "campus-a" && config.region == nil && config.gridRegion == "DE")
        #expect(config.meters.map(\.device.id) == ["n1", "n2", "c1", "u1", "p1"])
        #expect(config.meters.map(\.pueApplied) == [false, true, false, false, false])
        let connections = config.meters.map(\.connection)
        #expect(connections[0] == .ipmi(IPMIConnection(tool: connections[0].ipmiTool)))
        #expect(connections[1] == .ipmi(IPMIConnection(host: "10.0.0.2", port: 6230, username: "op", passwordFile: "/etc/bmc.pw",
                                                        cipherSuite: 17, sensor: "PS1 Input Power", tool: connections[1].ipmiTool)))
        #expect(connections[2] == .redfish(RedfishConnection(url: URL(string: "https://10.0.0.3")!, chassis: "1U", username: "op",
                                                              passwordFile: "/etc/bmc.pw", caFile: "/etc/ca.pem", useSession: true)))
        #expect(connections[3] == .ups(NUTConnection(host: "10.0.0.4", port: 3493, ups: "rack", preferPower: true)))
        #expect(connections[4] == .pdu(SNMPConnection(host: "10.0.0.5", port: 161, community: "s3cret-community", profile: .raritanPDU2,
                                                      index: 1, outlet: 7, unit: 2)))
    }

    @Test func notJSONOrNotAnObjectIsOneProblem() {
        #expect(throws: CollectConfiguration.Invalid.self) { try CollectConfiguration.parse(Array("{".utf8), file: "c.json") }
        do {
            _ = try CollectConfiguration.parse(Array("[]".utf8), file: "c.json")
            Issue.record("an array was accepted")
        } catch {
            #expect(error.problems == ["c.json: the configuration must be a JSON object"])
        }
    }
}

extension FacilityMeterConfiguration.Connection {
    var ipmiTool: String {
        if case .ipmi(let c) = self { return c.tool }
        return ""
    }
}
