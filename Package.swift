// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Spindle",
    products: [
        .library(name: "Spindle", targets: ["Spindle"]),
        .executable(name: "spindle-default-executor", targets: ["spindle-default-executor"]),
        .executable(name: "spindle-readme-examples", targets: ["spindle-readme-examples"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CURing",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        .target(name: "CSpindle", dependencies: ["CURing"]),
        .target(
            name: "Spindle",
            dependencies: ["CSpindle", "CURing", .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-default-executor",
            dependencies: ["Spindle"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "spindle-readme-examples",
            dependencies: ["Spindle"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SpindleTests",
            dependencies: [
                "Spindle", "spindle-default-executor", "spindle-readme-examples",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
