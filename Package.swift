// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Spindle",
    products: [
        .library(name: "Spindle", targets: ["Spindle"]),
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
            dependencies: ["CSpindle", "CURing"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SpindleTests",
            dependencies: ["Spindle"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
