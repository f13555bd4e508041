// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "warden",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "warden", targets: ["WardenCLI"]),
        .library(name: "WardenCore", targets: ["WardenCore"]),
        .library(name: "WardenPolicy", targets: ["WardenPolicy"]),
        .library(name: "WardenAudit", targets: ["WardenAudit"]),
        .library(name: "WardenSandbox", targets: ["WardenSandbox"]),
        .library(name: "WardenGateway", targets: ["WardenGateway"]),
        .library(name: "WardenGuard", targets: ["WardenGuard"]),
        .library(name: "WardenRedTeam", targets: ["WardenRedTeam"]),
        .library(name: "WardenBench", targets: ["WardenBench"]),
        .library(name: "WardenServer", targets: ["WardenServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // The red team's model client (and the doors' upstream calls): SwiftNIO instead of libcurl, whose
        // thirty-odd shared libraries every start of the binary (supervisor and shim) would load.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // `warden serve`: the control-plane API and dashboard (Hummingbird 2 on SwiftNIO, its TLS through
        // NIOSSL; swift-configuration support left out), its metrics in Prometheus' text format.
        .package(
            url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Thin C shims for syscalls that have no glibc wrapper (Landlock, close_range) and for the
        // fork-into-cgroup spawn, which must run only async-signal-safe code between fork and exec.
        .target(name: "CWardenLinux"),
        .target(name: "WardenCore"),
        .target(name: "WardenPolicy", dependencies: ["WardenCore"]),
        .target(
            name: "WardenAudit",
            dependencies: [
                "WardenCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Events leave the sandbox module only through Core's EventSink; the CLI picks the store.
        .target(
            name: "WardenSandbox",
            dependencies: [
                "WardenCore",
                "CWardenLinux",
                .product(name: "SystemPackage", package: "swift-system"),
                // SHA-256 of watched files: the one implementation the audit chain uses too.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The mediated doors and the approvals broker they share.
        .target(
            name: "WardenGateway",
            dependencies: [
                "WardenCore", "WardenPolicy", "WardenGuard", "CWardenLinux",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // The validation layer: deterministic detectors on what crosses a door (findings, never decisions).
        // (The classifier finds OpenBLAS at run time, so warden starts on a machine without it.)
        .target(name: "WardenGuard", dependencies: ["WardenCore"]),
        .target(
            name: "WardenRedTeam",
            dependencies: [
                // The llm agent reaches its model through the model door (WardenGateway).
                "WardenCore", "WardenSandbox", "WardenGateway", "WardenPolicy", "WardenGuard", "CWardenLinux",
                // The scenarios' scorers compare files by SHA-256 (the exfiltrated chunks of the weights).
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The benchmarks behind `warden bench`, apart from the modules they measure.
        .target(
            name: "WardenBench",
            dependencies: [
                "WardenAudit", "WardenCore", "WardenGuard", "WardenPolicy", "WardenSandbox", "CWardenLinux",
                // `warden bench serve`: approvals held by the broker as a door holds them, a TLS client.
                "WardenGateway",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // `warden bench model`: a fast stand-in upstream and a streaming client.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // `warden serve`: the API, the live event stream, the dashboard (its files embedded in the binary) and
        // the metrics, over the registry, the approvals broker and the audit log the CLI uses.
        .target(
            name: "WardenServer",
            dependencies: [
                "WardenCore", "WardenSandbox", "WardenGateway", "WardenAudit", "CWardenLinux",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            resources: [
                .embedInCode("Dashboard/index.html"), .embedInCode("Dashboard/app.js"),
                .embedInCode("Dashboard/style.css"),
            ]
        ),
        .executableTarget(
            name: "WardenCLI",
            dependencies: [
                "WardenAudit",
                "WardenBench",
                "WardenGateway",
                "WardenGuard",
                "WardenRedTeam",
                "WardenCore",
                "WardenPolicy",
                "WardenSandbox",
                "WardenServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "WardenTesting",
            dependencies: ["WardenCore", "CWardenLinux", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "WardenCoreTests", dependencies: ["WardenCore"]),
        .testTarget(name: "WardenGuardTests", dependencies: ["WardenGuard"]),
        .testTarget(
            name: "WardenAuditTests",
            dependencies: [
                "WardenAudit", "WardenCore", "WardenTesting", .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "WardenPolicyTests", dependencies: ["WardenPolicy", "WardenBench", "WardenCore", "WardenTesting"],
            // The cedarpy peer is run by the differential tests from the source tree.
            exclude: ["Peers"]
        ),
        .testTarget(
            name: "WardenSandboxTests",
            dependencies: ["WardenSandbox", "WardenCore", "WardenTesting"],
            // The adversary programs are run from the source tree by the tests, not bundled.
            exclude: ["Adversaries"]
        ),
        .testTarget(
            name: "WardenRedTeamTests",
            dependencies: ["WardenRedTeam", "WardenAudit", "WardenSandbox", "WardenCore", "WardenTesting"],
            // The stand-in model server is run by the tests from the source tree.
            exclude: ["Peers"]
        ),
        .testTarget(
            name: "WardenGatewayTests",
            dependencies: ["WardenGateway", "WardenAudit", "WardenBench", "WardenCore", "WardenTesting"],
            // The loopback servers and the in-sandbox attack client are run from the source tree.
            exclude: ["Peers"]
        ),
        // `warden serve` through the real binary: its API on the Unix socket and over TLS, the dashboard in a
        // real headless Chromium (Peers/dashboard.py, Selenium), the daemon killed under live runs.
        .testTarget(
            name: "WardenServerTests",
            dependencies: [
                "WardenCore", "WardenTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Peers"]
        ),
        // The command line through the real binary: bad input, `warden policy`, `warden redteam` flags.
        .testTarget(
            name: "WardenCLITests",
            dependencies: ["WardenCLI", "WardenCore", "WardenRedTeam", "WardenTesting"]
        ),
    ]
)

for target in package.targets where target.type != .system && target.name != "CWardenLinux" {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [
            .enableUpcomingFeature("ExistentialAny"),
            .enableUpcomingFeature("MemberImportVisibility"),
        ]
}
