// swift-tools-version:6.0
// Hummingbird 2 applications served by SpindleHTTP on Spindle's workers. A package of its own,
// so that users of the core library never resolve Hummingbird or SwiftNIO.
import PackageDescription

let package = Package(
    name: "HummingbirdSpindle",
    products: [
        .library(name: "HummingbirdSpindle", targets: ["HummingbirdSpindle"]),
    ],
    dependencies: [
        // Named explicitly so the reference does not depend on the checkout's folder name.
        .package(name: "Spindle", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "HummingbirdSpindle",
            dependencies: [
                .product(name: "Spindle", package: "Spindle"),
                .product(name: "SpindleHTTP", package: "Spindle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HummingbirdSpindleTests",
            dependencies: [
                "HummingbirdSpindle",
                .product(name: "Spindle", package: "Spindle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Imports Spindle beside NIOCore, NIOPosix and Hummingbird and uses every public type
        // of Spindle's libraries unqualified: it compiles only while none collides.
        .testTarget(
            name: "CoexistenceTests",
            dependencies: [
                .product(name: "Spindle", package: "Spindle"),
                .product(name: "SpindleHTTP", package: "Spindle"),
                .product(name: "SpindleMetrics", package: "Spindle"),
                .product(name: "SpindleServiceLifecycle", package: "Spindle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
