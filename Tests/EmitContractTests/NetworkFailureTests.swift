import Testing
@testable import EmitContract

/// The TLS library's failures as a person reads them (texts as swift-nio-ssl writes them).
@Suite struct NetworkFailureTests {
    @Test func tlsFailuresAreSaidAsTheirCause() {
        let boring = { (reason: String) in
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:\(reason) at /src/ssl/handshake.cc:320]))"
        }
        #expect(NetworkFailure.describe(Failure(boring("CERTIFICATE_VERIFY_FAILED"))).hasPrefix("TLS failed: the server's certificate is not signed by a trusted CA"))
        #expect(NetworkFailure.describe(Failure(boring("WRONG_VERSION_NUMBER"))) == "TLS failed: the server did not answer in TLS (is it plain HTTP? then use http://)")
        #expect(NetworkFailure.describe(Failure("NIOSSLExtraError.failedToValidateHostname: Couldn't find <none> in certificate from peer"))
                == "TLS failed: the server's certificate is not for this host name or address")
        #expect(NetworkFailure.describe(Failure(boring("TLSV1_ALERT_PROTOCOL_VERSION"))) == "TLS failed: tlsv1 alert protocol version")
        #expect(NetworkFailure.describe(Failure("handshakeFailed(somethingElse)")) == "TLS failed: the handshake failed; check the server's certificate and the CA file")
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
