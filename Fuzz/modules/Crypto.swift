// The one piece of swift-crypto that EmitContract uses (SHA-256 of an event's identity), for
// the fuzz builds only: swift-crypto's BoringSSL is too large to rebuild with the sanitizers,
// so the same digest comes from the system's OpenSSL (libcrypto), a real SHA-256 all the same.
@_silgen_name("SHA256")
private func openSSLSHA256(_ data: UnsafePointer<UInt8>?, _ count: Int, _ digest: UnsafeMutablePointer<UInt8>?) -> UnsafeMutablePointer<UInt8>?

public enum SHA256 {
    public static func hash(data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBufferPointer { bytes in
            digest.withUnsafeMutableBufferPointer { out in _ = openSSLSHA256(bytes.baseAddress, bytes.count, out.baseAddress) }
        }
        return digest
    }
}
