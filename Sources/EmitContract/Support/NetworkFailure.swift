import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Network failures in the words a person reads, translated once where they are caught: the
/// HTTP client's error descriptions carry its internal types and errno numbers
/// ("connection reset (error set): Connection refused (errno: 111)").
public enum NetworkFailure {
    public static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        let lowered = text.lowercased()
        if lowered.contains("connection refused") || lowered.contains("errno: 111") { return "connection refused" }
        if lowered.contains("connecttimeout") || lowered.contains("connect timeout") { return "no connection within the connect timeout" }
        if lowered.contains("readtimeout") || lowered.contains("deadlineexceeded") || lowered.contains("timed out") { return "no answer within the request timeout" }
        if lowered.contains("no such host") || lowered.contains("unknown host") || lowered.contains("name or service not known") || lowered.contains("getaddrinfo") {
            return "the host name cannot be resolved"
        }
        if lowered.contains("network is unreachable") || lowered.contains("errno: 101") { return "network unreachable" }
        if lowered.contains("no route to host") || lowered.contains("errno: 113") { return "no route to host" }
        if lowered.contains("certificate") || lowered.contains("handshake") || lowered.contains("ssl") { return "TLS failed: " + tls(text) }
        if lowered.contains("remoteconnectionclosed") || lowered.contains("connection reset") { return "the connection was closed by the other side" }
        return text
    }

    /// A TLS library's failure ("handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435581
    /// error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …]))") as its cause.
    static func tls(_ text: String) -> String {
        let lowered = text.lowercased()
        if lowered.contains("wrong_version_number") || lowered.contains("http_request") {
            return "the server did not answer in TLS (is it plain HTTP? then use http://)"
        }
        if lowered.contains("certificate_verify_failed") || lowered.contains("self signed") || lowered.contains("unable to get local issuer") {
            return "the server's certificate is not signed by a trusted CA; give the CA that signed it (--ca-file; for a BMC --redfish-ca-file, or ca_file in a facility configuration)"
        }
        if lowered.contains("failedtovalidatehostname") { return "the server's certificate is not for this host name or address" }
        if lowered.contains("certificate_expired") || lowered.contains("has expired") { return "the server's certificate has expired" }
        // Otherwise BoringSSL's reason, the word after "OPENSSL_internal:", without the rest.
        if let marker = text.range(of: "OPENSSL_internal:") {
            let reason = text[marker.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !reason.isEmpty { return reason.lowercased().replacingOccurrences(of: "_", with: " ") }
        }
        return "the handshake failed; check the server's certificate and the CA file"
    }

    /// A plain TCP connect to HOST:PORT within `timeout` seconds: nil when it connects, else
    /// why not ("connection refused" at once where nothing listens). Lets a client fail at
    /// once where its HTTP library would keep retrying a refused connection until its deadline.
    public static func probe(host: String, port: Int, timeout: Double) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else { return "the host name cannot be resolved" }
        defer { freeaddrinfo(found) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue), first.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 { return nil }
        guard errno == EINPROGRESS else { return reason(errno) }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) > 0 else { return "no connection within \(String(format: "%g", timeout)) s" }
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return code == 0 ? nil : reason(code)
    }

    private static func reason(_ code: Int32) -> String {
        switch code {
        case ECONNREFUSED: return "connection refused"
        case ENETUNREACH: return "network unreachable"
        case EHOSTUNREACH: return "no route to host"
        case ETIMEDOUT: return "no connection within the connect timeout"
        default: return String(cString: strerror(code))
        }
    }
}
