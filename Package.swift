// swift-tools-version:6.0
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
                "WardenCore", "WardenSandbox", "WardenGateway", "WardenPolicy", "CWardenLinux",
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
                // `warden bench model`: a fast stand-in upstream and a streaming client.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
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
