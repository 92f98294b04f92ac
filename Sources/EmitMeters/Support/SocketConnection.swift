#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A blocking socket with deadlines, for the meters' small request/answer protocols (NUT's
/// line protocol over TCP, SNMP over UDP). The sampler thread owns it, so blocking is the
/// simplest correct model: every call is bounded by `timeout`.
final class SocketConnection {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    enum Kind { case tcp, udp }

    private let descriptor: Int32
    private let timeout: Double
    private var buffered: [UInt8] = []
    let peer: String

    init(host: String, port: Int, kind: Kind, timeout: Double) throws(Failure) {
        self.timeout = timeout
        peer = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = kind == .tcp ? SOCK_STREAM : SOCK_DGRAM
        #else
        hints.ai_socktype = Int32(kind == .tcp ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            if Self.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, timeout: timeout, error: &lastError) {
                descriptor = fd
                return
            }
            close(fd)
        }
        throw Failure(description: "cannot connect to \(peer): \(lastError)")
    }

    deinit { close(descriptor) }

    private static func connect(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t,
                                timeout: Double, error: inout String) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        #if canImport(Darwin)
        let result = Darwin.connect(fd, address, length)
        #else
        let result = Glibc.connect(fd, address, length)
        #endif
        if result == 0 { return true }
        guard errno == EINPROGRESS else { error = String(cString: strerror(errno)); return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { error = "timed out after \(timeout) s"; return false }
        var code: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
        if code != 0 { error = String(cString: strerror(code)); return false }
        return true
    }

    func send(_ bytes: [UInt8]) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "sending to \(peer): \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// Waits until data arrives or `deadline` (monotonic seconds) passes; false on timeout.
    private func wait(until deadline: Double) throws(Failure) -> Bool {
        while true {
            let left = deadline - Self.now()
            if left <= 0 { return false }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, left * 1000)))
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { throw Failure(description: "waiting for \(peer): \(String(cString: strerror(errno)))") }
        }
    }

    /// One datagram (UDP), or nil when none arrived in time.
    func receiveDatagram(until deadline: Double) throws(Failure) -> [UInt8]? {
        guard try wait(until: deadline) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw Failure(description: "receiving from \(peer): \(String(cString: strerror(errno)))") }
        return Array(buffer[..<n])
    }

    /// One line (TCP), without its newline.
    func readLine() throws(Failure) -> String {
        let deadline = Self.now() + timeout
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                var line = buffered[..<newline]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                let text = String(decoding: line, as: UTF8.self)
                buffered.removeSubrange(...newline)
                return text
            }
            guard try wait(until: deadline) else { throw Failure(description: "\(peer) did not answer within \(timeout) s") }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if n == 0 { throw Failure(description: "\(peer) closed the connection") }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "reading from \(peer): \(String(cString: strerror(errno)))")
            }
            buffered += chunk[..<n]
        }
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
