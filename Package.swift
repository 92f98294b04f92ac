// swift-tools-version:6.0
import PackageDescription

// One module per concern; the folder names are the map (see README "Architecture").
let package = Package(
    name: "emit",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "emit", targets: ["emit"]),
        .library(name: "EmitContract", targets: ["EmitContract"]),
    ],
    dependencies: [
        // Command-line parsing and help text written for people.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 for event ids: a reviewed implementation (BoringSSL on Linux, CryptoKit on Apple).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // The outbox and the receiver's store: SQLite in WAL mode with a tested concurrency model.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // Delivery: HTTP/1.1 and TLS with a private CA per client (URLSession cannot on Linux).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.30.0"),
        // The reference receiver: an HTTP server on swift-nio, with TLS.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // gzip request bodies on both sides.
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.0.0"),
        // The agent's control socket: swift-nio's HTTP/1.1 codec on one event loop (already built
        // for the HTTP client and server).
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // OTLP's protobuf messages (generated once and committed: scripts/generate-otlp.sh).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        // BER for SNMP messages (already built for the TLS stack, so it costs no build time).
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
        // The daemons (agent, receiver, following flush) composed as services with graceful
        // shutdown on SIGTERM/SIGINT (already built for Hummingbird, so it costs no build time).
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        // The Logger those services and the HTTP server take (already built with them).
        .package(url: "https://github.com/apple/swift-log.git", from: "1.5.0"),
    ],
    targets: [
        // The v1 event contract: types, vocabularies, strict JSON, RFC 8785, validator, builders,
        // coefficient table. Foundation plus a hashing library only.
        .target(
            name: "EmitContract",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // The invariant suite behind `emit check`: fixture expectations, brand and
        // observation-only scans.
        .target(name: "EmitInvariants", dependencies: ["EmitContract"]),
        // Physical meters, one folder per interface (RAPL, NVML, DCGM, IPMI, Redfish, NUT, SNMP),
        // behind `EnergyMeter`.
        .target(name: "EmitMeters", dependencies: [
            "EmitContract",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        // Run sessions: sampling on a monotonic clock, counter tracking, power integration,
        // window tiling, events through the builders.
        .target(name: "EmitSessions", dependencies: ["EmitMeters", "EmitContract"]),
        // The Campus Pack (campus:facility_energy): operator exports, live facility meters, proration.
        .target(name: "EmitCampus", dependencies: ["EmitContract", "EmitMeters", "EmitSessions"]),
        // OpenTelemetry's protocol: events as OTLP log records, device energy as OTLP metrics,
        // the collectors' answers read back (protobuf and JSON encodings).
        .target(
            name: "EmitOTLP",
            dependencies: [
                "EmitContract", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // Requests are written straight into the buffer the HTTP client sends.
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Generated/SOURCE.md"]
        ),
        // Transport: the durable outbox, delivery to an ingest endpoint, the reference receiver.
        .target(
            name: "EmitTransport",
            dependencies: [
                "EmitContract",
                "EmitOTLP",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The SQLite C API beside GRDB, for the per-event insert statements.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The node agent: one continuous sampler for every open run, its control API on a Unix
        // socket (swift-nio's HTTP/1.1 codec), checkpoints that survive restarts, /metrics and OTLP metrics.
        .target(
            name: "EmitAgent",
            dependencies: [
                "EmitContract", "EmitMeters", "EmitSessions", "EmitOTLP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // /metrics for Prometheus.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // --gzip for the OTLP metrics pushes, as the transport's flush has it.
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "emit",
            dependencies: [
                "EmitContract",
                "EmitInvariants",
                "EmitMeters",
                "EmitSessions",
                "EmitTransport",
                "EmitOTLP",
                "EmitCampus",
                "EmitAgent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Repository paths, temporary trees and process running shared by the test targets.
        .target(name: "EmitTestSupport", dependencies: ["EmitContract"], path: "Tests/EmitTestSupport"),
        // Benchmark: CPU time of one sample of every meter (Benchmarks/sampling/run.sh).
        .executableTarget(name: "emit-sample-bench", dependencies: ["EmitMeters"], path: "Benchmarks/sampling", exclude: ["raw_reads.c", "run.sh", "footprint.sh"]),
        // Benchmark: the OTLP encoding alone, beside the emit protocol's body (Benchmarks/otlp/run.sh).
        .executableTarget(name: "emit-otlp-bench", dependencies: ["EmitOTLP", .product(name: "NIOCore", package: "swift-nio")],
                          path: "Benchmarks/otlp", exclude: ["run.sh"]),
        .testTarget(name: "EmitContractTests", dependencies: ["EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitInvariantsTests", dependencies: ["EmitInvariants", "EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitMetersTests", dependencies: ["EmitMeters", "EmitContract", "EmitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "EmitSessionsTests", dependencies: ["EmitSessions", "EmitMeters", "EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitTransportTests", dependencies: ["EmitTransport", "EmitContract", "EmitTestSupport", .product(name: "GRDB", package: "GRDB.swift")], exclude: ["Fixtures"]),
        .testTarget(name: "EmitCampusTests", dependencies: ["EmitCampus", "EmitContract", "EmitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "EmitOTLPTests", dependencies: ["EmitOTLP", "EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitAgentTests", dependencies: ["EmitAgent", "EmitSessions", "EmitMeters", "EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitCLITests", dependencies: ["EmitContract", "EmitTestSupport"]),
    ]
)
