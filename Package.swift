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
        // Physical meters, one folder per interface (RAPL, NVML, DCGM), behind `EnergyMeter`.
        .target(name: "EmitMeters", dependencies: ["EmitContract"]),
        // Run sessions: sampling on a monotonic clock, counter tracking, power integration,
        // window tiling, events through the builders.
        .target(name: "EmitSessions", dependencies: ["EmitMeters", "EmitContract"]),
        .executableTarget(
            name: "emit",
            dependencies: [
                "EmitContract",
                "EmitInvariants",
                "EmitMeters",
                "EmitSessions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Repository paths, temporary trees and process running shared by the test targets.
        .target(name: "EmitTestSupport", path: "Tests/EmitTestSupport"),
        // Benchmark: CPU time of one sample of every meter (Benchmarks/sampling/run.sh).
        .executableTarget(name: "emit-sample-bench", dependencies: ["EmitMeters"], path: "Benchmarks/sampling", exclude: ["raw_reads.c", "run.sh"]),
        .testTarget(name: "EmitContractTests", dependencies: ["EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitInvariantsTests", dependencies: ["EmitInvariants", "EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitMetersTests", dependencies: ["EmitMeters", "EmitContract", "EmitTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "EmitSessionsTests", dependencies: ["EmitSessions", "EmitMeters", "EmitContract", "EmitTestSupport"]),
        .testTarget(name: "EmitCLITests", dependencies: ["EmitContract", "EmitTestSupport"]),
    ]
)
