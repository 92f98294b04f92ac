import EmitContract
import EmitTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `emit agent` as root and its clients as other users (`nobody` through setpriv), the way a
/// shared node runs them: a powercap tree whose counters are 0400 root, a stand-in NVML whose
/// GPU draws a known power (FAKE_NVML_WATTS: its counter goes on while no agent watches).
@Suite(.serialized) struct AgentCLITests {
    static let watts = 250.0

    /// Root is needed to run the agent on 0400 counters and its clients as other users.
    func rootOrSkip() -> Bool {
        if getuid() == 0 { return true }
        if Programs.peersRequired { Issue.record("the agent tests need root (EMIT_REQUIRE_PEERS=1)") } else { print("skipped: the agent tests need root") }
        return false
    }

    struct Node {
        let dir: TemporaryDirectory
        let fake: FakeNVML
        let tree: PowercapTree
        let socket: String
        var environment: [String: String] {
            fake.environment.merging(["EMIT_POWERCAP_ROOT": tree.root, "EMIT_HOME": dir.file("home"), "EMIT_NODE_ID": "node-shared",
                                      "FAKE_NVML_WATTS": String(Int(AgentCLITests.watts)), "EMIT_AGENT_SOCKET": socket]) { $1 }
        }

        init() throws {
            dir = try TemporaryDirectory()
            fake = try FakeNVML(gpus: [FakeNVML.GPU(uuid: "GPU-aaaa", energyMillijoules: 0), FakeNVML.GPU(uuid: "GPU-bbbb", energyMillijoules: 0)])
            tree = try PowercapTree(in: dir, zones: [.init("intel-rapl:0", "package-0", energy: 5_000_000)])
            chmod(tree.energyFile("intel-rapl:0"), 0o400)
            socket = dir.file("run/agent.sock")
        }

        func startAgent(_ extra: [String] = []) throws -> BackgroundProcess {
            let agent = try BackgroundProcess(Programs.emit, ["agent", "--socket", socket, "--socket-group", "nogroup", "--interval", "100ms"] + extra,
                                              environment: environment, log: dir.file("agent-\(UUID().uuidString).log"))
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, agent.process.isRunning {
                if FileManager.default.fileExists(atPath: socket), (try? emit(["agent", "status"]))?.status == 0 { return agent }
                usleep(50_000)
            }
            Issue.record("the agent did not start: \(agent.output)")
            return agent
        }

        func emit(_ arguments: [String], as user: String? = nil) throws -> ProcessResult {
            guard let user else { return try Programs.run(Programs.emit, arguments, environment: environment) }
            return try Programs.run("/usr/bin/setpriv", ["--reuid=\(user)", "--regid=nogroup", "--clear-groups", Programs.emit] + arguments,
                                    environment: environment.merging(["HOME": "/nonexistent"]) { $1 })
        }

        /// Keeps the package counter moving as a working CPU's does (10 W, updated every
        /// millisecond), replaced atomically and kept 0400 root; returns a stop function giving
        /// the first and last values (in µJ). One process at a raised priority: a shell loop
        /// forking `mv` held still for a tenth of a second at a time on a loaded machine, and
        /// the agent rightly took the held-then-jumping counter for a stale one and withheld it.
        func movePackage() throws -> () -> (Double, Double) {
            let file = tree.energyFile("intel-rapl:0")
            let script = """
            import os, sys, time
            path, start = sys.argv[1], time.monotonic()
            while True:
                with open(path + '.new', 'w') as out: out.write('%d\\n' % (5000000 + int((time.monotonic() - start) * 10000000)))
                os.chmod(path + '.new', 0o400)
                os.rename(path + '.new', path)
                time.sleep(0.001)
            """
            let writer = try BackgroundProcess("/usr/bin/nice", ["-n", "-10", "python3", "-c", script, file], log: dir.file("writer.log"))
            // Replaced by rename, the file always holds a whole value (root reads it).
            let value = { Double((try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 }
            // Moving before the job starts: on a loaded machine the interpreter can take longer
            // to start than the job runs, and a counter that never moved is rightly withheld.
            let deadline = Date().addingTimeInterval(20)
            while value() <= 5_000_000, Date() < deadline { usleep(10_000) }
            return {
                writer.kill9()
                return (5_000_000, value())
            }
        }
    }

    func events(_ stdout: String) throws -> [EnergyEvent] {
        try stdout.split(separator: "\n").filter { $0.hasPrefix("{") }.map { try EnergyEvent(validating: try JSONParser.parse(String($0))) }
    }

    @Test func anUnprivilegedUserMetersACommandThroughTheAgent() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let agent = try node.startAgent()
        defer { agent.kill9() }
        let stopWriter = try node.movePackage()
        // nobody cannot read the counters itself...
        let direct = try Programs.run("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", node.tree.energyFile("intel-rapl:0")])
        #expect(direct.status != 0, "the counter must be root-only for this test to mean anything")
        // ...yet metering a command through the agent gives it RAPL and its GPU's energy.
        let run = try node.emit(["run", "--run-id", "job-42", "--out", "-", "--", "sleep", "1"], as: "nobody")
        let (first, last) = stopWriter()
        #expect(run.status == 0, "\(run.stderr)")
        let byDevice = Dictionary(uniqueKeysWithValues: try events(run.stdout).map { ($0.deviceID ?? "", $0) })
        let package = try #require(byDevice["package-0"], "\(run.stdout)\(run.stderr)")
        #expect(package.json["measurement"]?["method"] == .string("counter_delta"))
        #expect(package.energyJoules > 0 && package.energyJoules <= (last - first) / 1e6, "\(package.energyJoules) J; the counter moved \((last - first) / 1e6) J")
        // The GPU's counter grows by exactly 250 W × time: its delta is the window's energy.
        for id in ["GPU-aaaa", "GPU-bbbb"] {
            let gpu = try #require(byDevice[id])
            #expect(abs(gpu.energyJoules / gpu.window.seconds - Self.watts) < Self.watts * 0.02, "\(gpu.energyJoules) J in \(gpu.window.seconds) s")
            #expect(gpu.json["producer"]?["node_id"] == .string("node-shared"))
        }
        #expect(run.stderr.contains("through the node agent"))
        // Without the agent the same user gets nothing from the root-only counter, and is told why.
        let local = try node.emit(["run", "--run-id", "job-43", "--no-agent", "--source", "rapl", "--out", "-", "--", "true"], as: "nobody")
        #expect(local.stdout.isEmpty)
        #expect(local.stderr.contains("permission denied"), "\(local.stderr)")
    }

    @Test func aJobSeesOnlyItsGPUs() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let agent = try node.startAgent()
        defer { agent.kill9() }
        var environment = node.environment
        environment["CUDA_VISIBLE_DEVICES"] = "1"
        let run = try Programs.run("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", Programs.emit,
                                                        "run", "--run-id", "gpu1-job", "--source", "nvml", "--out", "-", "--", "sleep", "0.4"],
                                   environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try events(run.stdout).map(\.deviceID) == ["GPU-bbbb"])
    }

    @Test func aKilledAgentRestartsAndTheRunIsStillExact() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        var agent = try node.startAgent()
        let began = try node.emit(["agent", "begin", "--run-id", "slurm-77", "--devices", "0", "--label", "partition=gpu"], as: "nobody")
        #expect(began.status == 0, "\(began.stderr)")
        usleep(400_000)
        agent.kill9()
        usleep(700_000)  // the GPU works on while no agent watches
        agent = try node.startAgent()
        defer { agent.kill9() }
        usleep(300_000)
        let ended = try node.emit(["agent", "end", "--run-id", "slurm-77", "--out", "-"], as: "nobody")
        #expect(ended.status == 0, "\(ended.stderr)")
        let event = try #require(try events(ended.stdout).first { $0.deviceID == "GPU-aaaa" }, "\(ended.stdout)\(ended.stderr)")
        #expect(event.window.seconds > 1.3)
        #expect(abs(event.energyJoules / event.window.seconds - Self.watts) < Self.watts * 0.02, "\(event.energyJoules) J in \(event.window.seconds) s")
        #expect(event.json["measurement"]?["counter_resets"] == .number(0))
        #expect((event.json["measurement"]?["coverage"]?.numberValue ?? 0) > 0.98, "the counter's delta covers the downtime")
        #expect(event.json["labels"]?["partition"] == .string("gpu"))
    }

    /// SIGTERM (systemd's stop) stops the agent as its help says: a last checkpoint after the
    /// signal, the socket removed, exit 0; the open run survives and ends exactly after a restart.
    @Test func aTerminatedAgentCheckpointsLastRemovesItsSocketAndItsRunSurvives() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        // Checkpoints 2 s apart: the last periodic one is long before the signal.
        var agent = try node.startAgent(["--interval", "2s"])
        defer { agent.kill9() }
        #expect(try node.emit(["agent", "begin", "--run-id", "across-a-stop", "--devices", "0"], as: "nobody").status == 0)
        usleep(400_000)
        let signalled = Date().timeIntervalSince1970
        #expect(agent.stop(with: SIGTERM), "the agent did not stop: \(agent.output)")
        #expect(agent.process.terminationReason == .exit && agent.process.terminationStatus == 0, "\(agent.output)")
        #expect(!FileManager.default.fileExists(atPath: node.socket), "the socket is removed")
        // Killed by the signal, nothing would be written after it. (A file's time is the
        // kernel's coarse clock, a tick behind: 20 ms of slack.)
        let written = ["1", "2"].compactMap { name -> Double? in
            var info = stat()
            guard stat(node.dir.file("home/agent-sampler.\(name)"), &info) == 0 else { return nil }
            return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        }
        #expect((written.max() ?? 0) >= signalled - 0.02, "a checkpoint written after the signal: \(written) against \(signalled)")
        usleep(500_000)  // the GPU works on while no agent watches
        agent = try node.startAgent()
        let ended = try node.emit(["agent", "end", "--run-id", "across-a-stop", "--out", "-"], as: "nobody")
        #expect(ended.status == 0, "\(ended.stderr)")
        let event = try #require(try events(ended.stdout).first { $0.deviceID == "GPU-aaaa" }, "\(ended.stdout)\(ended.stderr)")
        #expect(abs(event.energyJoules / event.window.seconds - Self.watts) < Self.watts * 0.02, "\(event.energyJoules) J in \(event.window.seconds) s")
        #expect(event.json["measurement"]?["counter_resets"] == .number(0))
    }

    /// Delivery that stops for good (a receiver refusing the token) is said, and the agent
    /// meters on: its events stay in the outbox for a flush with the right token.
    @Test func refusedDeliveryStopsDeliveryNotMetering() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let port = try StaticHTTPServer.freePort()
        let token = try node.dir.write("token", "the-token\n"), wrong = try node.dir.write("wrong", "not-the-token\n")
        let receiver = try BackgroundProcess(Programs.emit, ["receive", "--listen", "127.0.0.1:\(port)", "--db", node.dir.file("received.sqlite"), "--token-file", token],
                                             log: node.dir.file("receiver.log"))
        defer { receiver.kill9() }
        #expect(receiver.waitForPort(port), "\(receiver.output)")
        let agent = try node.startAgent(["--to", "http://127.0.0.1:\(port)", "--token-file", wrong])
        defer { agent.kill9() }
        #expect(try node.emit(["agent", "begin", "--run-id", "refused", "--devices", "0"], as: "nobody").status == 0)
        usleep(300_000)
        #expect(try node.emit(["agent", "end", "--run-id", "refused"], as: "nobody").status == 0)
        #expect(agent.waitForOutput("(delivery): stopped:"), "\(agent.output)")
        #expect(agent.output.contains("401") && agent.output.contains("metering goes on"), "\(agent.output)")
        let status = try node.emit(["agent", "status"])
        #expect(status.stdout.contains("delivery: stopped:") && status.stdout.contains("401"), "status keeps saying it: \(status.stdout)")
        // Still serving and metering.
        #expect(try node.emit(["agent", "begin", "--run-id", "after", "--devices", "0"], as: "nobody").status == 0)
        usleep(300_000)
        let after = try node.emit(["agent", "end", "--run-id", "after", "--out", "-"], as: "nobody")
        #expect(after.status == 0, "\(after.stderr)")
        #expect(try events(after.stdout).contains { $0.deviceID == "GPU-aaaa" }, "\(after.stdout)")
        let flushed = try node.emit(["outbox", "flush", "--outbox", node.dir.file("home/outbox.sqlite"), "--to", "http://127.0.0.1:\(port)", "--token-file", token])
        #expect(flushed.status == 0 && !flushed.stderr.contains(" 0 delivered"), "the refused run's events were kept: \(flushed.stderr)")
    }

    /// An agent whose disk fills cannot mark what it delivered: delivery pauses and its status
    /// says why, metering goes on, and delivery resumes once there is room, nothing lost.
    @Test func aFullDiskPausesTheAgentsDeliveryAndItResumes() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let home = node.dir.file("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        #expect(try Programs.run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", home]).status == 0)
        defer { _ = try? Programs.run("/bin/umount", ["-l", home]) }
        let port = try StaticHTTPServer.freePort()
        let token = try node.dir.write("token", "the-token\n")
        // No receiver yet: the run's events wait in the agent's outbox.
        let agent = try node.startAgent(["--to", "http://127.0.0.1:\(port)", "--token-file", token])
        defer { agent.kill9() }
        #expect(try node.emit(["agent", "begin", "--run-id", "full-disk", "--devices", "0"], as: "nobody").status == 0)
        usleep(300_000)
        #expect(try node.emit(["agent", "end", "--run-id", "full-disk"], as: "nobody").status == 0)
        #expect(agent.waitForOutput("connection refused"), "\(agent.output)")
        _ = try Programs.run("/bin/sh", ["-c", "head -c 9000000 /dev/zero > '\(home)/filler'"])
        let receiver = try BackgroundProcess(Programs.emit, ["receive", "--listen", "127.0.0.1:\(port)", "--db", node.dir.file("received.sqlite"), "--token-file", token],
                                             log: node.dir.file("receiver.log"))
        defer { receiver.kill9() }
        #expect(agent.waitForOutput("delivery waits and tries again"), "\(agent.output)")
        let paused = try node.emit(["agent", "status"])
        #expect(paused.stdout.contains("delivery: paused:") && paused.stdout.contains("the disk is full"), "\(paused.stdout)")
        try FileManager.default.removeItem(atPath: "\(home)/filler")
        let pending = { () -> JSONValue? in
            (try? node.emit(["outbox", "status", "--json", "--outbox", "\(home)/outbox.sqlite"])).flatMap { try? JSONParser.parse($0.stdout.trimmingCharacters(in: .newlines)) }?["pending"]
        }
        var status = ""
        for _ in 0..<100 {
            status = (try? node.emit(["agent", "status"]))?.stdout ?? ""
            if status.contains("delivery: to http://127.0.0.1:\(port)"), pending() == .number(0) { break }
            usleep(100_000)
        }
        #expect(status.contains("delivery: to http://127.0.0.1:\(port)"), "delivery resumed: \(status)")
        #expect(pending() == .number(0))
        let held = HTTP.request("http://127.0.0.1:\(port)/v1/events", headers: ["Authorization": "Bearer the-token"]).text
        #expect(held.contains("\"compute_assignment_run_id\":\"full-disk\""), "\(held)")
        #expect(agent.process.isRunning, "the agent outlived its full disk: \(agent.output)")
    }

    @Test func anotherUserIsRefusedAndEndingWithoutOutStoresInTheAgentsOutbox() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let agent = try node.startAgent()
        defer { agent.kill9() }
        #expect(try node.emit(["agent", "begin", "--run-id", "mine"], as: "nobody").status == 0)
        let other = try node.emit(["agent", "end", "--run-id", "mine", "--out", "-"], as: "daemon")
        #expect(other.status == 2)
        #expect(other.stderr.contains("belongs to uid 65534; only it or root may read or end it"), "\(other.stderr)")
        let status = try node.emit(["agent", "status", "--json"], as: "daemon")
        #expect(!status.stdout.contains("\"mine\""), "another user's runs are not listed")
        usleep(300_000)
        let stored = try node.emit(["agent", "end", "--run-id", "mine"], as: "nobody")
        #expect(stored.status == 0, "\(stored.stderr)")
        #expect(stored.stderr.contains("stored in the agent's outbox"), "\(stored.stderr)")
        let pending = try node.emit(["outbox", "status", "--outbox", node.dir.file("home/outbox.sqlite")])
        #expect(pending.stdout.contains("pending") && !pending.stdout.contains("pending 0"), "\(pending.stdout)")
    }

    @Test func malformedRequestsHangUpsAndABusySocket() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let agent = try node.startAgent()
        defer { agent.kill9() }
        func exchange(_ request: String, closeEarly: Bool = false) -> String {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, byte) in node.socket.utf8.enumerated() { raw[i] = byte } }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
            }
            guard connected else { return "not connected" }
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            if closeEarly { return "" }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
        }
        func post(_ body: String) -> String {
            exchange("POST /v1/runs HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        }
        let notJSON = post("{run_id: 1")
        #expect(notJSON.hasPrefix("HTTP/1.1 400") && notJSON.contains("\"field\":\"body\""), "\(notJSON)")
        let wrongType = post(#"{"run_id": 5}"#)
        #expect(wrongType.hasPrefix("HTTP/1.1 400") && wrongType.contains("\"field\":\"run_id\""), "\(wrongType)")
        let badDevice = post(#"{"run_id": "r", "devices": ["9"]}"#)
        #expect(badDevice.hasPrefix("HTTP/1.1 400") && badDevice.contains("no GPU with index 9"), "\(badDevice)")
        // A client that promises a body and hangs up, and one that sends garbage.
        _ = exchange("POST /v1/runs HTTP/1.1\r\nHost: agent\r\nContent-Length: 500\r\n\r\n{\"run_id\"", closeEarly: true)
        _ = exchange("\u{0}\u{1}GARBAGE\r\n\r\n")
        #expect(try node.emit(["agent", "status"]).status == 0, "the agent survives them")
        // A second agent refuses the socket the first listens on.
        let second = try node.emit(["agent", "--socket", node.socket, "--interval", "100ms"])
        #expect(second.status == 2)
        #expect(second.stderr.contains("is in use: another agent listens on it"), "\(second.stderr)")
    }

    @Test func anOutboxTheAgentCannotOpenStopsItBeforeItServes() throws {
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        // Where the outbox's file should be, a folder stands.
        try FileManager.default.createDirectory(atPath: node.dir.file("home/outbox.sqlite"), withIntermediateDirectories: true)
        let agent = try node.emit(["agent", "--socket", node.socket, "--interval", "100ms"])
        #expect(agent.status == 2)
        #expect(agent.stderr.contains("agent: outbox: cannot open") && agent.stderr.contains("outbox.sqlite"), "\(agent.stderr)")
        #expect(!FileManager.default.fileExists(atPath: node.socket), "nothing serves runs whose events could not be stored")
    }

    /// `--config FILE`: its members act as the flags (a flag given on the command line wins), and
    /// a bad file is refused whole with every problem named by file and member, secrets included.
    @Test func aConfigFileSetsTheFlagsAndABadOneIsRefusedWhole() throws {
        guard rootOrSkip() else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let bad = try node.dir.write("bad.json", #"{"interval": 5, "token": "s3cret", "metrics_allow_remote": "yes", "sockett": "/tmp/x", "source": "rapl"}"#)
        let refused = try node.emit(["agent", "--socket", node.socket, "--config", bad])
        #expect(refused.status == 2)
        for problem in ["\(bad): interval: must be a non-empty string", "\(bad): token: secrets are named by file (token_file)",
                        "\(bad): metrics_allow_remote: must be true or false", "\(bad): sockett: unknown member", "4 problem(s)"] {
            #expect(refused.stderr.contains(problem), "\(problem): \(refused.stderr)")
        }
        #expect(!refused.stderr.contains("s3cret"), "a secret is never printed")
        #expect(!FileManager.default.fileExists(atPath: node.socket), "nothing started")
        // A good file: its members apply; the command line's --interval (100ms) wins over its own.
        let good = try node.dir.write("agent.json", #"{"interval": "2s", "source": "rapl", "metrics_listen": "127.0.0.1:0"}"#)
        let agent = try node.startAgent(["--config", good])
        defer { agent.kill9() }
        #expect(agent.output.contains("metering 1 device(s) every 100ms"), "only the package, every 100 ms: \(agent.output)")
        #expect(agent.output.contains("metrics on http://127.0.0.1:"), "\(agent.output)")
    }

    /// A --metrics-listen port another process holds, or an address beyond loopback not said in
    /// words, is refused before anything is metered or served (a held port was NIO's errno
    /// text, after the agent had started).
    @Test func metricsListenProblemsStopTheAgentBeforeItStarts() throws {
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let holder = try StaticHTTPServer(files: ["x": "x"])
        defer { holder.stop() }
        let agent = try node.emit(["agent", "--socket", node.socket, "--interval", "100ms", "--metrics-listen", "127.0.0.1:\(holder.port)"])
        #expect(agent.status == 2)
        #expect(agent.stderr.contains("--metrics-listen: 127.0.0.1:\(holder.port) is already in use"), "\(agent.stderr)")
        #expect(!agent.stderr.contains("errno") && !agent.stderr.contains("metering"), "\(agent.stderr)")
        #expect(!FileManager.default.fileExists(atPath: node.socket))
        // The metrics carry no token: beyond loopback only when said in words.
        let remote = try node.emit(["agent", "--socket", node.socket, "--metrics-listen", "0.0.0.0:0"])
        #expect(remote.status == 2 && remote.stderr.contains("0.0.0.0 is not a loopback address; say --metrics-allow-remote"), "\(remote.stderr)")
    }

    @Test func prometheusScrapesTheAgent() throws {
        guard rootOrSkip() else { return }
        guard let prometheus = Programs.which("prometheus"), let promtool = Programs.which("promtool") else {
            if Programs.peersRequired { Issue.record("prometheus and promtool are required (EMIT_REQUIRE_PEERS=1; apt-get install prometheus)") }
            return
        }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let agent = try node.startAgent(["--metrics-listen", "127.0.0.1:0"])
        defer { agent.kill9() }
        let port = try #require(agent.output.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "metrics on http://127.0.0.1:") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.first, "\(agent.output)")
        let scrape = HTTP.request("http://127.0.0.1:\(port)/metrics")
        #expect(scrape.status == 200)
        let text = String(decoding: scrape.body, as: UTF8.self)
        #expect(text.contains(#"hw_energy_joules_total{hw_id="GPU-aaaa",hw_type="gpu",hw_name="Test Accelerator 80GB",emit_source="nvml",emit_provenance="measured"}"#), "\(text)")
        #expect(text.contains("emit_agent_samples_total ") && text.contains("emit_agent_open_runs 0") && text.contains("emit_agent_outbox_pending 0"))
        let lint = try Programs.run(promtool, ["check", "metrics"], stdin: text)
        #expect(lint.status == 0, "\(lint.stdout)\(lint.stderr)")
        // A real Prometheus server scrapes it every 250 ms and can query the counter.
        let web = 19090 + Int(getpid() % 500)
        let config = try node.dir.write("prometheus.yml", """
            global: {scrape_interval: 250ms}
            scrape_configs:
              - job_name: emit-agent
                static_configs: [{targets: ["127.0.0.1:\(port)"]}]
            """)
        let server = try BackgroundProcess(prometheus, ["--config.file", config, "--storage.tsdb.path", node.dir.file("tsdb"),
                                                        "--web.listen-address", "127.0.0.1:\(web)"], log: node.dir.file("prometheus.log"))
        defer { server.kill9() }
        #expect(server.waitForPort(web), "\(server.output)")
        var series = 0
        for _ in 0..<60 where series < 3 {
            usleep(250_000)
            let answer = HTTP.request("http://127.0.0.1:\(web)/api/v1/query?query=hw_energy_joules_total")
            if case .array(let result)? = (try? JSONParser.parse(Array(answer.body)))?["data"]?["result"] { series = result.count }
        }
        #expect(series == 3, "two GPUs and one package: \(server.output.suffix(500))")
    }

    /// `--otlp-metrics-to`: each device's cumulative energy pushed as OpenTelemetry `hw.energy`,
    /// read back by a sink that decodes with the official opentelemetry-proto package.
    @Test func theAgentPushesOTLPEnergyMetrics() throws {
        guard rootOrSkip(), peerRunning("otlp") else { return }
        let node = try Node()
        defer { node.dir.remove(); node.fake.state.remove() }
        let port = try StaticHTTPServer.freePort()
        let out = node.dir.file("metrics.jsonl")
        let sink = try BackgroundProcess(Peers.otlpPython, [Repository.path("Tests/EmitTransportTests/Fixtures/otlp_sink.py"), String(port), out],
                                         log: node.dir.file("sink.log"))
        defer { sink.kill9() }
        #expect(sink.waitForPort(port), "\(sink.output)")
        let agent = try node.startAgent(["--otlp-metrics-to", "http://127.0.0.1:\(port)", "--otlp-metrics-interval", "200ms", "--otlp-encoding", "json",
                                         "--to", "http://127.0.0.1:\(port)", "--protocol", "otlp", "--gzip"])
        defer { agent.kill9() }
        // A run ended without --out goes to the agent's outbox and on, as OTLP logs.
        #expect(try node.emit(["agent", "begin", "--run-id", "otlp-run", "--devices", "0"], as: "nobody").status == 0)
        usleep(300_000)
        #expect(try node.emit(["agent", "end", "--run-id", "otlp-run"], as: "nobody").status == 0)
        var points: [JSONValue] = []
        for _ in 0..<100 {
            usleep(100_000)
            points = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
            if points.filter({ $0["attributes"]?["hw.id"] == .string("GPU-aaaa") }).count >= 4 { break }
        }
        let gpu = points.filter { $0["attributes"]?["hw.id"] == .string("GPU-aaaa") }
        #expect(gpu.count >= 4, "\(agent.output)")
        for point in gpu {
            #expect(point["name"] == .string("hw.energy") && point["unit"] == .string("J"))
            #expect(point["temporality"] == .number(2) && point["monotonic"] == .bool(true), "cumulative and monotonic: \(point)")
            #expect(point["attributes"]?["hw.type"] == .string("gpu") && point["attributes"]?["hw.name"] == .string("Test Accelerator 80GB"))
            #expect(point["attributes"]?["emit.energy_source"] == .string("nvml") && point["attributes"]?["emit.energy_provenance"] == .string("measured"))
            #expect(point["resource"]?["host.name"] == .string("node-shared") && point["resource"]?["service.name"] == .string("emit"))
            #expect(point["gzip"] == .bool(true), "--gzip compresses the metrics pushes too")
        }
        let values = gpu.compactMap { $0["value"]?.numberValue }
        #expect(values == values.sorted() && (values.last ?? 0) > (values.first ?? 0), "a GPU drawing \(Self.watts) W: \(values)")
        #expect(Set(gpu.compactMap { $0["start_time_unix_nano"]?.numberValue }).count == 1, "one start while the agent runs")
        #expect(points.contains { $0["attributes"]?["hw.type"] == .string("cpu") }, "the package too")
        var records: [JSONValue] = []
        for _ in 0..<50 where records.isEmpty {
            usleep(100_000)
            records = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
                .filter { $0["event_name"] == .string("emit.energy_meter_recorded") }
        }
        #expect(!records.isEmpty && records.allSatisfy { $0["attributes"]?["emit.compute_assignment_run_id"] == .string("otlp-run") },
                "the run's events delivered as OTLP log records: \(agent.output)")
        #expect(records.contains { $0["body"]?["device"]?["id"] == .string("GPU-aaaa") && $0["encoding"] == .string("json") })
        #expect(records.allSatisfy { $0["gzip"] == .bool(true) }, "the agent's delivery honours --gzip")
        // Stopped, the agent pushes its final totals once more.
        let signalled = Date().timeIntervalSince1970 * 1e9
        #expect(agent.stop(with: SIGTERM), "\(agent.output)")
        #expect(agent.process.terminationReason == .exit && agent.process.terminationStatus == 0, "\(agent.output)")
        let last = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
            .filter { $0["name"] == .string("hw.energy") }.compactMap { $0["time_unix_nano"]?.numberValue }.max() ?? 0
        #expect(last >= signalled, "a push after the signal: \(last) against \(signalled)")
        // Metrics need a receiver: the flags alone are refused before anything starts.
        let orphan = try node.emit(["agent", "--socket", node.dir.file("other.sock"), "--otlp-metrics-interval", "1s"])
        #expect(orphan.status == 2 && orphan.stderr.contains("--otlp-metrics-interval is for --otlp-metrics-to"), "\(orphan.stderr)")
        let lonelyGzip = try node.emit(["agent", "--socket", node.dir.file("other.sock"), "--gzip"])
        #expect(lonelyGzip.status == 2 && lonelyGzip.stderr.contains("--gzip are for --to or --otlp-metrics-to"), "\(lonelyGzip.stderr)")
    }
}
