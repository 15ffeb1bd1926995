// swift-tools-version:6.1
import PackageDescription

// Module layout (ARCHITECTURE.md): C shims at the bottom, the versioned
// Store above them, then the API types, transport, filesystem and executables.
let package = Package(
    name: "mesad",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mesad", targets: ["mesad"]),
        .executable(name: "mesa-client", targets: ["mesa-client"]),
        .executable(name: "mesa", targets: ["mesa"]),
        .executable(name: "mesa-server", targets: ["mesa-server"]),
        .executable(name: "mesa-multicall", targets: ["mesa-multicall"]),
        .executable(name: "store-bench", targets: ["store-bench"]),
        .executable(name: "rpc-bench", targets: ["rpc-bench"]),
        .executable(name: "json-bench", targets: ["json-bench"]),
        .library(name: "Store", targets: ["Store", "Model"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Server only. No default traits: the server reads no swift-configuration files.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        // Already in the graph through Hummingbird; named so the server can run blocking
        // store calls on an NIOThreadPool instead of an event loop.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // C shims: each wraps one system library and the macros / variadic
        // functions Swift cannot call directly.
        .target(name: "CGit2", linkerSettings: [.linkedLibrary("git2"), .linkedLibrary("z")]),
        .target(name: "CSQLite", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(name: "COpenSSL", linkerSettings: [.linkedLibrary("crypto")]),
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(name: "CFuse", linkerSettings: [.linkedLibrary("fuse3")]),

        // Backoff, a periodic worker, child processes, log escaping: swift-log only, so
        // every layer can use the one implementation.
        .target(name: "Infra", dependencies: [.product(name: "Logging", package: "swift-log")], exclude: ["README.md"]),
        // The domain values (ids, names, repos, changes, keys …) and MesaError: Foundation
        // only, so every layer, clients included, shares them without linking a library.
        .target(name: "Model", exclude: ["README.md"]),
        .target(
            name: "Store",
            dependencies: ["Infra", "Model", "CGit2", "CSQLite", "COpenSSL", .product(name: "Logging", package: "swift-log")],
            exclude: ["README.md"]
        ),
        .target(name: "MesaAPI", dependencies: ["Infra", "Model", "CCurl", "COpenSSL", .product(name: "Logging", package: "swift-log")],
                exclude: ["README.md"]),
        // `LocalBackend`: the `Backend` over the embedded Store (mesad, mesa-server).
        .target(name: "StoreBackend", dependencies: ["MesaAPI", "Model", "Store"]),
        .target(name: "RPC", dependencies: ["Model", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                                     .product(name: "NIOPosix", package: "swift-nio")], exclude: ["README.md"]),
        // The typed Mesa method catalogue: one type per JSON-RPC method.
        .target(name: "MesaProtocol", dependencies: ["Model", "RPC"], exclude: ["README.md"]),
        // gitignore-syntax matching of ephemeral paths (`.mesaignore`): no dependencies,
        // so the mesa CLI can print the default rules without linking the mount core.
        .target(name: "MesaIgnore"),
        .target(name: "Mount", dependencies: ["Infra", "CFuse", "MesaAPI", "Model", "MesaIgnore", .product(name: "Logging", package: "swift-log")],
                exclude: ["README.md"]),
        .target(
            name: "Client",
            dependencies: ["Infra", "RPC", "MesaProtocol", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            exclude: ["README.md"]
        ),
        .target(
            name: "APIServer",
            dependencies: ["MesaAPI", "Model", "Store", "StoreBackend", "Infra", "COpenSSL", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdCore", package: "hummingbird"),
                           .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")],
            exclude: ["README.md"]
        ),
        // The Model Context Protocol face of mesad (`mesad --mcp`), on RPC's JSON types.
        .target(name: "MesaMCP", dependencies: ["RPC", "MesaProtocol", "Client", .product(name: "Logging", package: "swift-log")]),

        // The daemon as a library (config, credentials, handlers, listeners), so tests
        // can drive it in process; `mesad` is its thin executable.
        .target(
            name: "MesaDaemon",
            dependencies: ["Infra", "RPC", "MesaProtocol", "Mount", "MesaAPI", "Model", "Store", "StoreBackend", .product(name: "TOMLKit", package: "TOMLKit"),
                           .product(name: "Logging", package: "swift-log")],
            exclude: ["README.md"]
        ),
        // The four commands as libraries, each with one public entry point
        // (`<Name>Program.main(arguments:)`): their executables below are one line each, and
        // the release bundle links all four into one multi-call binary (`mesa-multicall`).
        .target(
            name: "MesadCLI",
            dependencies: ["MesaDaemon", "Infra", "MesaMCP", "Mount", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "MesaClientCLI", dependencies: ["Client", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "MesaCLI", dependencies: ["Client", "MesaIgnore", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(
            name: "MesaServerCLI",
            dependencies: ["APIServer", "Infra", "MesaAPI", "Store", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(name: "mesad", dependencies: ["MesadCLI"]),
        .executableTarget(name: "mesa-client", dependencies: ["MesaClientCLI"]),
        .executableTarget(name: "mesa", dependencies: ["MesaCLI"]),
        .executableTarget(name: "mesa-server", dependencies: ["MesaServerCLI"]),
        // The release bundle's one executable: mesad, mesa, mesa-client and mesa-server are
        // links to it, and it runs the command its name (argv[0]) says. One copy of the
        // static Swift runtime, Foundation and ICU data instead of four.
        .executableTarget(name: "mesa-multicall", dependencies: ["MesadCLI", "MesaCLI", "MesaClientCLI", "MesaServerCLI"]),
        // Frames, JSON and names under libFuzzer (scripts/fuzz.sh); a normal build replays
        // fuzz/corpus, which DaemonTests does on every run.
        .executableTarget(name: "mesa-fuzz", dependencies: ["RPC", "MesaProtocol", "Model"], path: "fuzz/mesa-fuzz"),
        .executableTarget(name: "store-bench", dependencies: ["Model", "Store"], path: "bench/store-bench"),
        .executableTarget(name: "rpc-bench", dependencies: ["RPC", "MesaProtocol", "Client"], path: "bench/rpc-bench"),
        // jansson is measured, not shipped: the shim dlopens it, so nothing links it.
        .target(name: "CJanssonShim", path: "bench/json-bench-shim"),
        .executableTarget(name: "json-bench", dependencies: ["RPC", "MesaProtocol", "CJanssonShim"], path: "bench/json-bench"),

        // The one harness of the test targets: temporary directories, deadlines,
        // executables and child processes stopped by pid.
        .target(name: "TestSupport", dependencies: ["Infra"], path: "Tests/TestSupport", exclude: ["README.md"]),
        .testTarget(name: "InfraTests", dependencies: ["Infra", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ModelTests", dependencies: ["Model"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Model", "TestSupport"]),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "Model", "TestSupport"]),
        // Hook payloads, settings.json merging, the MCP server: no daemon, quick to build.
        .testTarget(name: "ClientTests", dependencies: ["Client", "MesaMCP", "RPC"]),
        .testTarget(name: "MountTests", dependencies: ["Mount", "MesaIgnore", "MesaAPI", "Model", "Store", "StoreBackend", "TestSupport"]),
        .testTarget(
            name: "APIServerTests",
            dependencies: ["APIServer", "MesaAPI", "Model", "Store", "StoreBackend", "Infra", "TestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        // The daemon in process (handlers, config, scopes) and as processes (mesad,
        // mesa-client): the executables are found next to the test bundle.
        .testTarget(
            name: "DaemonTests",
            dependencies: ["MesaDaemon", "MesaProtocol", "MesaMCP", "Client", "MesaAPI", "Model", "Store", "StoreBackend", "RPC", "TestSupport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The built executables against real mounts, as a user runs them (root and /dev/fuse).
        .testTarget(name: "E2ETests", dependencies: ["MesaProtocol", "Client", "RPC", "Model", "Store", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
