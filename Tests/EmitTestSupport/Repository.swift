import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Paths in this repository, found from this source file so tests run from any directory.
public enum Repository {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    public static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }
}

/// A fresh temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "emit-test") throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let full = file(name)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
        return full
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The result of running a program to completion.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs programs the way a user does: real processes, real exit codes.
public enum Programs {
    /// The `emit` binary SwiftPM built beside the test bundle.
    public static var emit: String {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [products.appendingPathComponent("emit").path,
                          products.deletingLastPathComponent().appendingPathComponent("emit").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    public static func run(_ executable: String, _ arguments: [String], stdin: String? = nil, cwd: String? = nil,
                           environment: [String: String] = [:]) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
        let errData = ReadAll(err.fileHandleForReading)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData.wait(), as: UTF8.self))
    }

    /// Looks a program up on PATH.
    public static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Whether tests that need an external tool must fail rather than skip (CI sets it).
    public static var peersRequired: Bool { ProcessInfo.processInfo.environment["EMIT_REQUIRE_PEERS"] == "1" }
}

/// Drains a pipe on a background thread.
final class ReadAll: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}

/// A powercap class folder laid out as Linux does: the class folder lists every zone flat, as
/// links into nested zone folders under devices/virtual/powercap.
public struct PowercapTree: Sendable {
    public let root: String          // the class folder: what EMIT_POWERCAP_ROOT points at
    public let devices: String

    public struct Zone: Sendable {
        public let entry: String     // intel-rapl:0:1
        public let name: String      // dram
        public let energy: UInt64
        public let range: UInt64
        public init(_ entry: String, _ name: String, energy: UInt64, range: UInt64 = 262_143_328_850) {
            self.entry = entry
            self.name = name
            self.energy = energy
            self.range = range
        }
    }

    public init(in dir: TemporaryDirectory, zones: [Zone]) throws {
        root = dir.file("sys/class/powercap")
        devices = dir.file("sys/devices/virtual/powercap")
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        for zone in zones {
            let control = zone.entry.hasPrefix("intel-rapl-mmio") ? "intel-rapl-mmio" : "intel-rapl"
            let parts = zone.entry.split(separator: ":")
            let nested = parts.count == 3 ? "\(parts[0]):\(parts[1])/\(zone.entry)" : zone.entry
            let folder = "\(devices)/\(control)/\(nested)"
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "\(zone.name)\n".write(toFile: "\(folder)/name", atomically: true, encoding: .utf8)
            try "\(zone.energy)\n".write(toFile: "\(folder)/energy_uj", atomically: true, encoding: .utf8)
            try "\(zone.range)\n".write(toFile: "\(folder)/max_energy_range_uj", atomically: true, encoding: .utf8)
            try "0\n".write(toFile: "\(folder)/constraint_0_power_limit_uw", atomically: true, encoding: .utf8)
            try fm.createSymbolicLink(atPath: "\(root)/\(zone.entry)", withDestinationPath: "../../devices/virtual/powercap/\(control)/\(nested)")
        }
    }

    /// The energy_uj file of a zone, through the class folder's link. Change it from a test's
    /// script with `Shell.replace`, never `echo N >`: a meter that reads between the shell's
    /// truncation and its write sees an empty file, a failed read that sysfs never gives.
    public func energyFile(_ entry: String) -> String { "\(root)/\(entry)/energy_uj" }
}

public enum Shell {
    /// A shell command that replaces `path`'s contents with `value` at once (a new file renamed
    /// over it), as a counter file reads: never empty, never half written.
    public static func replace(_ path: String, with value: some CustomStringConvertible) -> String {
        "printf '%s\\n' '\(value)' > '\(path).new' && mv -f '\(path).new' '\(path)'"
    }
}

/// A stand-in libnvidia-ml.so.1 compiled from `Tests/EmitMetersTests/Fixtures/fake_nvml.c` with
/// the toolchain's C compiler, loaded by emit through the real dlopen path.
public struct FakeNVML: Sendable {
    public let library: String
    public let state: TemporaryDirectory

    public struct GPU: Sendable {
        public var uuid: String
        public var name: String
        public var energyMillijoules: UInt64?
        public var powerMilliwatts: UInt64?
        public init(uuid: String, name: String = "Test Accelerator 80GB", energyMillijoules: UInt64? = nil, powerMilliwatts: UInt64? = nil) {
            self.uuid = uuid
            self.name = name
            self.energyMillijoules = energyMillijoules
            self.powerMilliwatts = powerMilliwatts
        }
    }

    public enum BuildError: Error { case noCompiler, failed(String) }

    public init(gpus: [GPU]) throws {
        state = try TemporaryDirectory("fake-nvml")
        guard let cc = Programs.which("cc") ?? Programs.which("clang") ?? Programs.which("gcc") else { throw BuildError.noCompiler }
        let lib = state.file("lib/libnvidia-ml.so.1")
        try FileManager.default.createDirectory(atPath: state.file("lib"), withIntermediateDirectories: true)
        let result = try Programs.run(cc, ["-shared", "-fPIC", "-O1", "-o", lib, Repository.path("Tests/EmitMetersTests/Fixtures/fake_nvml.c")])
        guard result.status == 0 else { throw BuildError.failed(result.stderr) }
        library = lib
        try state.write("count", "\(gpus.count)\n")
        for (i, gpu) in gpus.enumerated() {
            try state.write("gpu\(i)/uuid", gpu.uuid)
            try state.write("gpu\(i)/name", gpu.name)
            if let e = gpu.energyMillijoules { try state.write("gpu\(i)/energy_mj", "\(e)\n") }
            if let p = gpu.powerMilliwatts { try state.write("gpu\(i)/power_mw", "\(p)\n") }
        }
    }

    public func file(_ name: String) -> String { state.file(name) }
    public var environment: [String: String] { ["EMIT_NVML_LIBRARY": library, "FAKE_NVML_DIR": state.path] }
}

/// Serves files over HTTP on 127.0.0.1 with python3's http.server (a real peer on a real socket).
public final class StaticHTTPServer: @unchecked Sendable {
    public let port: Int
    private let process: Process
    private let root: TemporaryDirectory

    public enum StartError: Error { case noPython, notReady(String) }

    public init(files: [String: String]) throws {
        root = try TemporaryDirectory("http-root")
        for (name, text) in files { try root.write(name, text) }
        guard let python = Programs.which("python3") else { throw StartError.noPython }
        port = try Self.freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", root.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.canConnect(port: port) { return }
            usleep(50_000)
        }
        kill(process.processIdentifier, SIGKILL)
        throw StartError.notReady("python3 http.server did not listen on \(port)")
    }

    public func url(_ path: String) -> URL {
        URL(string: "http://127.0.0.1:\(port)/\(path)") ?? URL(fileURLWithPath: "/")
    }

    /// SIGKILL: a child of the test runner may inherit a mask that blocks SIGTERM.
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        root.remove()
    }

    /// A port the kernel hands out for 127.0.0.1 right now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// A long-running child process (a receiver, a proxy) for tests, killed with SIGKILL on stop.
public final class BackgroundProcess: @unchecked Sendable {
    public let process = Process()
    public let log: String

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: String) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }

    /// Waits until something accepts connections on `port` (or the process died).
    public func waitForPort(_ port: Int, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if StaticHTTPServer.canConnect(port: port) { return true }
            if !process.isRunning { return false }
            usleep(50_000)
        }
        return false
    }

    public func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Sends `signal` and waits up to `seconds` for the process to end; false if it did not.
    public func stop(with signal: Int32 = SIGTERM, seconds: Double = 30) -> Bool {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }

    /// `Tests/EmitTransportTests/Fixtures/fault_proxy.py` on a free port in front of `upstream`,
    /// playing `faults` (its usage says which) on successive POSTs; nil without python3.
    public static func faultProxy(upstream: Int, faults: String, log: String) throws -> (proxy: BackgroundProcess, port: Int)? {
        guard let python = Programs.which("python3") else { return nil }
        let port = try StaticHTTPServer.freePort()
        let proxy = try BackgroundProcess(python, [Repository.path("Tests/EmitTransportTests/Fixtures/fault_proxy.py"), String(port), String(upstream), faults], log: log)
        return proxy.waitForPort(port) ? (proxy, port) : nil
    }

    /// Waits up to `seconds` until the log has `count` lines containing `text`.
    public func waitForOutput(_ text: String, count: Int = 1, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.components(separatedBy: "\n").filter({ $0.contains(text) }).count >= count { return true }
            usleep(20_000)
        }
        return false
    }

    public var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// A blocking HTTP request for tests (URLSession on its own delegate queue).
public enum HTTP {
    public struct Reply: Sendable {
        public let status: Int
        public let body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public static func request(_ url: String, method: String = "GET", headers: [String: String] = [:], body: Data? = nil) -> Reply {
        guard let target = URL(string: url) else { return Reply(status: -1, body: Data()) }
        var request = URLRequest(url: target, timeoutInterval: 30)
        request.httpMethod = method
        request.httpBody = body
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let box = ReplyBox()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            box.set(Reply(status: (response as? HTTPURLResponse)?.statusCode ?? -1, body: data ?? Data()))
            done.signal()
        }.resume()
        done.wait()
        return box.get()
    }

    private final class ReplyBox: @unchecked Sendable {
        private let lock = NSLock()
        private var reply = Reply(status: -1, body: Data())
        func set(_ r: Reply) { lock.lock(); reply = r; lock.unlock() }
        func get() -> Reply { lock.lock(); defer { lock.unlock() }; return reply }
    }
}
