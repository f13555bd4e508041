// swift-tools-version:6.0
// The libFuzzer target for Warden's Cedar parser and evaluator, kept out of the main package because it
// only links with `-sanitize=fuzzer` (libFuzzer provides `main`). Built and run by scripts/fuzz-policy.sh.
import PackageDescription

let package = Package(
    name: "warden-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "warden", path: "..")],
    targets: [
        .executableTarget(
            name: "WardenPolicyFuzz",
            dependencies: [.product(name: "WardenPolicy", package: "warden")]
        )
    ]
)
