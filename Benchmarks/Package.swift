// swift-tools-version:6.0
// Benchmarks for Spindle, kept as a package of its own so that the library's users never
// resolve SwiftNIO, swift-async-algorithms, swift-argument-parser or Hummingbird (nor the
// HummingbirdSpindle integration, Integrations/HummingbirdSpindle).
import PackageDescription

let package = Package(
    name: "SpindleBenchmarks",
    products: [
        .executable(name: "spindle-bench", targets: ["spindle-bench"]),
    ],
    dependencies: [
        // Named explicitly so the reference below does not depend on the checkout's folder name.
        .package(name: "Spindle", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(name: "HummingbirdSpindle", path: "../Integrations/HummingbirdSpindle"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // W9's load client, in C on epoll so that it runs on none of the runtimes it loads.
        .target(name: "EchoLoad"),
        .executableTarget(
            name: "spindle-bench",
            dependencies: [
                "EchoLoad",
                .product(name: "Spindle", package: "Spindle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "SpindleHTTP", package: "Spindle"),
                .product(name: "HummingbirdSpindle", package: "HummingbirdSpindle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
