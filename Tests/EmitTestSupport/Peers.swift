import Foundation
import Testing

/// The protocol peers of Tests/Peers/peers.sh (ipmi_sim, upsd, snmpsim, a Redfish mockup) on
/// 127.0.0.1. `.ci/run` starts them all; a test asks again (idempotent), so a test run on a
/// developer's machine starts what it needs.
public enum Peers {
    public static let script = Repository.path("Tests/Peers/peers.sh")

    private static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap(Int.init) ?? fallback
    }

    public static var state: String { ProcessInfo.processInfo.environment["EMIT_PEERS_STATE"] ?? "/tmp/emit-test-peers" }
    public static var ipmiPort: Int { setting("EMIT_PEER_IPMI_PORT", 19623) }
    public static var nutPort: Int { setting("EMIT_PEER_NUT_PORT", 13493) }
    public static var snmpPort: Int { setting("EMIT_PEER_SNMP_PORT", 11161) }
    public static var redfishPort: Int { setting("EMIT_PEER_REDFISH_PORT", 18002) }
    public static var dmtfPort: Int { setting("EMIT_PEER_DMTF_PORT", 18003) }

    /// BMC "b" (ipmiPort + 2) stays at 250 W; only the meter tests change BMC "a".
    public static var steadyIPMIPort: Int { ipmiPort + 2 }
    /// The file BMC "a"'s DCMI module reads the power from ("250", or "deactivated").
    public static var ipmiPowerFile: String { state + "/ipmi/a/power" }
    public static var ipmiPasswordFile: String { state + "/ipmi/password" }
    /// The OTLP peers' python (rotel and opentelemetry-proto installed): start("otlp") first.
    public static var otlpPython: String { state + "/otlp/venv/bin/python3" }
    /// dummy-ups data files (re-read by the driver when they change).
    public static func upsDataFile(_ ups: String) -> String { state + "/nut/\(ups).dev" }

    /// Starts `peer`; nil when it runs, else why it cannot (tools missing and not root, ...).
    public static func start(_ peer: String) -> String? {
        guard let result = try? Programs.run("/bin/bash", [script, "start", peer]) else { return "cannot run \(script)" }
        return result.status == 0 ? nil : "peer \(peer) unavailable: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
    }
}

/// Starts a peer for a test, or says why the test does not run: recorded as a failure under
/// EMIT_REQUIRE_PEERS=1 (CI), printed as a skip otherwise.
public func peerRunning(_ name: String) -> Bool {
    guard let problem = Peers.start(name) else { return true }
    if Programs.peersRequired { Issue.record("\(problem) (EMIT_REQUIRE_PEERS=1)") } else { print("skipped: \(problem)") }
    return false
}
