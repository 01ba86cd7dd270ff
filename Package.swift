// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Spindle",
    products: [
        .library(name: "Spindle", targets: ["Spindle"]),
        .library(name: "SpindleHTTP", targets: ["SpindleHTTP"]),
        .executable(name: "spindle-default-executor", targets: ["spindle-default-executor"]),
        .executable(name: "spindle-readme-examples", targets: ["spindle-readme-examples"]),
        .executable(name: "spindle-echo", targets: ["spindle-echo"]),
        .executable(name: "spindle-http", targets: ["spindle-http"]),
        .executable(name: "spindle-stress", targets: ["spindle-stress"]),
        .library(name: "SpindleServiceLifecycle", targets: ["SpindleServiceLifecycle"]),
        .library(name: "SpindleMetrics", targets: ["SpindleMetrics"]),
        .executable(name: "spindle-service-example", targets: ["spindle-service-example"]),
        .executable(name: "spindle-http-parse", targets: ["spindle-http-parse"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // Plugin only (`swift package generate-documentation`): nothing links it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CURing",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        .target(name: "CSpindle", dependencies: ["CURing"]),
        // Test support only (no product): counts heap allocations (AllocationTests).
        .target(name: "CAllocationCounter"),
        .target(
            name: "Spindle",
            dependencies: ["CSpindle", "CURing", .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "SpindleHTTP",
            dependencies: [
                "Spindle", .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-http-parse",
            dependencies: ["SpindleHTTP"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-default-executor",
            dependencies: ["Spindle"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-readme-examples",
            dependencies: [
                "Spindle", "SpindleServiceLifecycle", "SpindleMetrics", "SpindleHTTP",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "ExampleSupport",
            dependencies: ["Spindle", "CSpindle", .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-echo",
            dependencies: ["Spindle", "ExampleSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-http",
            dependencies: [
                "Spindle", "SpindleHTTP", "ExampleSupport", .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-stress",
            dependencies: ["Spindle", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "SpindleServiceLifecycle",
            dependencies: [
                "Spindle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "SpindleMetrics",
            dependencies: ["Spindle", .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-service-example",
            dependencies: [
                "Spindle", "SpindleServiceLifecycle",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SpindleTests",
            dependencies: [
                "Spindle", "spindle-default-executor", "spindle-readme-examples", "spindle-echo", "spindle-http",
                "spindle-stress",
                .product(name: "Logging", package: "swift-log"),
                "SpindleServiceLifecycle", "SpindleMetrics", "spindle-service-example",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                "CAllocationCounter",
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SpindleHTTPTests",
            dependencies: [
                "Spindle", "SpindleHTTP", .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
