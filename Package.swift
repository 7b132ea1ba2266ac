// swift-tools-version:6.0
import Foundation
import PackageDescription

// libtorch is installed by scripts/setup.sh into .deps/site/torch, or found at LIBTORCH_DIR.
let libtorch: String = {
    if let dir = ProcessInfo.processInfo.environment["LIBTORCH_DIR"], !dir.isEmpty { return dir }
    return Context.packageDirectory + "/.deps/site/torch"
}()
let libtorchLib = libtorch + "/lib"

let package = Package(
    name: "Tokenwise",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tokenwise", targets: ["TokenwiseCLI"]),
        .executable(name: "tokenwise-fuzz", targets: ["TokenwiseFuzz"]),
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "Credit", targets: ["Credit"]),
        .library(name: "Rewards", targets: ["Rewards"]),
        .library(name: "Objectives", targets: ["Objectives"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Rollout", targets: ["Rollout"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Environments", targets: ["Environments"]),
        .library(name: "Serve", targets: ["Serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        .target(
            name: "CTorch",
            cxxSettings: [
                // Declarations of the gloo names c10d's ProcessGroupGloo.hpp mentions (distributed.cpp).
                .headerSearchPath("gloo_decl"),
                .unsafeFlags([
                    "-isystem", libtorch + "/include",
                    "-isystem", libtorch + "/include/torch/csrc/api/include",
                    "-D_GLIBCXX_USE_CXX11_ABI=1",
                    "-Wno-deprecated-declarations",
                    // Always optimised: the shim is thin, and the FMA peak probe is meaningless at -O0.
                    "-O2",
                ]),
            ],
            linkerSettings: [
                .unsafeFlags([
                    "-L", libtorchLib,
                    // The shim pulls in libtorch_cpu/libc10 only; CUDA is dlopen'd on demand.
                    "-Xlinker", "--no-as-needed",
                    "-ltorch_cpu", "-lc10",
                    "-Xlinker", "-rpath", "-Xlinker", libtorchLib,
                ]),
                .linkedLibrary("stdc++"),
                .linkedLibrary("dl"),
            ]
        ),
        .target(name: "Torch", dependencies: ["CTorch"]),
        // Pure Swift: no libtorch, testable in milliseconds.
        .target(name: "Credit"),
        // A minimal blocking HTTP/1.1 client (remote rollouts, HTTP rewards, the server's tests).
        .target(name: "HTTP"),
        // Pure Swift as well: verifiable rewards and their composition.
        .target(name: "Rewards", dependencies: ["HTTP"]),
        // Pure Swift too: multi-turn environments (FrozenLake, Sokoban, external JSON-lines processes).
        .target(name: "Environments", dependencies: ["Rewards"]),
        .target(name: "Objectives", dependencies: ["Torch", "Credit"]),
        .target(name: "Models", dependencies: ["Torch", "CTorch"]),
        .target(name: "Rollout", dependencies: ["Torch", "Models"]),
        .target(name: "Training", dependencies: ["Torch", "Models", "Rollout", "Credit", "Objectives", "Rewards", "Environments", "HTTP", "Yams"]),
        // The OpenAI-compatible HTTP server over the batch engine (`tokenwise serve`).
        .target(name: "Serve", dependencies: ["Torch", "Models", "Rollout", .product(name: "Hummingbird", package: "hummingbird"),
                                            .product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(
            name: "TokenwiseCLI",
            dependencies: [
                "Serve",
                "Torch",
                "Credit",
                "Objectives",
                "Models",
                "Rollout",
                "Training",
                "HTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Seeded in-process mutation fuzzing of every parser a user's file reaches (scripts/fuzz.sh).
        .target(name: "Fuzz", dependencies: ["Torch", "Models", "Credit", "Objectives", "Rewards", "Rollout", "Training"]),
        .executableTarget(name: "TokenwiseFuzz", dependencies: ["Fuzz", "Torch"]),
        .testTarget(name: "FuzzTests", dependencies: ["Fuzz", "Models"]),
        .testTarget(name: "TorchTests", dependencies: ["Torch"]),
        .testTarget(name: "ObjectivesTests", dependencies: ["Objectives", "Torch", "Credit"], exclude: ["Fixtures"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Torch"], exclude: ["Fixtures"]),
        .testTarget(name: "RewardsTests", dependencies: ["Rewards", "HTTP"]),
        .testTarget(name: "EnvironmentsTests", dependencies: ["Environments"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "Torch", "Credit", "Objectives", "Rewards", "Rollout", "Environments", "Serve"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "RolloutTests", dependencies: ["Rollout", "Models", "Torch"]),
        .testTarget(name: "ServeTests", dependencies: ["Serve", "Rollout", "Models", "Torch", "HTTP"]),
        // Runs the built `tokenwise` binary; the dependency makes `swift test` build it first.
        .testTarget(name: "TokenwiseCLITests", dependencies: ["TokenwiseCLI"]),
        .testTarget(
            name: "CreditTests",
            dependencies: ["Credit", .product(name: "PropertyBased", package: "swift-property-based")],
            exclude: ["Fixtures"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
