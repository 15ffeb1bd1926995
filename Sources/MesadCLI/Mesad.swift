// mesad: the Mesa daemon. All logic lives in MesaDaemon; this file parses arguments,
// sets up logging and signals, and picks stdio or socket mode. Run by the `mesad`
// executable and by the multi-call binary (`mesa-multicall`) through `MesadProgram`.
import ArgumentParser
import Foundation
import Infra
import Logging
import MesaDaemon
import MesaMCP
import Mount

/// The mesad command's one entry point.
public enum MesadProgram {
    /// Parses `arguments` (without the program name) and runs mesad.
    public static func main(arguments: [String]) async { await Mesad.main(arguments) }
}

struct Mesad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesad",
        abstract: "The Mesa daemon: JSON-RPC 2.0 over stdio or a Unix socket, versioned FUSE mounts.",
        discussion: """
        Without options mesad listens on $MESA_RUNTIME_DIR/mesad.sock (default $XDG_RUNTIME_DIR/mesa,
        else ~/.local/share/mesa/run). With no api-url configured it serves the embedded store
        (~/.local/share/mesa/store), creating org 'local' and an admin key on first boot.
        Environment: MESA_ORGS=org:key[,…], MESA_ORG + MESA_API_KEY, MESA_API_URL, MESA_MOUNT_POINT,
        MESA_RUNTIME_DIR, MESA_CACHE_PATH, MESA_NO_CONFIG_FILE, MESA_LOG (trace|debug|info|notice|warning|error).
        """,
        version: Daemon.version)

    @Flag(name: .long, help: "Serve one session on stdin/stdout; exit when stdin closes.")
    var stdio = false

    @Flag(name: .shortAndLong, help: "Run in the background; return once the daemon answers on its socket.")
    var daemonize = false

    @Option(name: [.customShort("c"), .customLong("config-path")], help: "Read this config.toml instead of searching.")
    var configPath: String?

    @Flag(name: [.customShort("y"), .customLong("non-interactive")],
          help: "Never prompt; on first boot write ~/.config/mesa/config.toml from the environment.")
    var nonInteractive = false

    @Flag(name: .long, help: "Mount the daemon tree at the mount point (default ~/.local/share/mesa/mnt) on start.")
    var mount = false

    @Flag(name: .long, help: ArgumentHelp(
        "Serve the Model Context Protocol on stdin/stdout (newline-delimited JSON-RPC) for agents.",
        discussion: "Tools are forwarded to the daemon on the socket, which is started (mesad -d -y) when none runs."))
    var mcp = false

    func run() async throws {
        // glibc gives each of the dozens of FUSE, flusher and dispatch threads its own
        // malloc arena, each keeping what it freed: two arenas keep mesad's RSS close to
        // what it uses.
        MountSession.limitMallocArenas(2)
        let config: DaemonConfig
        do { config = try DaemonConfig.load(.init(configPath: configPath)) } catch {
            throw fail("\(error)", code: 2)
        }
        LoggingSystem.bootstrap { label in
            var handler = SafeLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = Logger.Level(rawValue: config.logLevel?.lowercased() ?? "info") ?? .info
            return handler
        }
        let logger = Logger(label: "mesad")
        config.warnings.forEach { logger.warning("\($0)") }

        if mcp {
            if stdio || daemonize { throw fail("--mcp cannot be combined with --stdio or --daemonize", code: 2) }
            await MCPMode.run(version: Daemon.version, logger: logger)
            return
        }
        if daemonize {
            if stdio { throw fail("--daemonize and --stdio cannot be combined", code: 2) }
            try startInBackground(config)
            return
        }
        if nonInteractive, let written = try? config.writeFirstBootConfigIfMissing() {
            logger.info("wrote first-boot config", metadata: ["path": "\(written)"])
        }
        // Socket mode: refuse a second daemon before touching the store.
        var lock: RuntimeLock?
        if !stdio {
            do { lock = try RuntimeLock(paths: config.paths) } catch { throw fail("\(error)", code: 1) }
        }
        defer { lock?.release() }
        // A socket daemon of the same backend owns the store and the mounts: relay this
        // stdio session to it. One of another backend is not ours to answer for.
        if stdio, StdioRelay.runningBackend(socketPath: config.paths.socketPath) == (config.apiURL ?? "embedded"),
           StdioRelay.run(socketPath: config.paths.socketPath) {
            return
        }
        let orgs: OrgBackends
        do {
            if let apiURL = config.apiURL {
                orgs = try CredentialResolver.remote(config, apiURL: apiURL, logger: logger)
            } else {
                orgs = try CredentialResolver.embedded(config, logger: logger)
            }
        } catch {
            throw fail("\(error)", code: 1)
        }
        let daemon = Daemon(config: config, orgs: orgs, logger: logger)
        let signals = SignalHandlers { signal in
            logger.info("received signal \(signal); stopping")
            daemon.requestStop()
        }
        defer { signals.cancel() }
        if !stdio {
            // Remount what was mounted before (after a crash too); journals replay.
            daemon.mounts?.restore(forceTree: mount)
        }
        do {
            if stdio { try await daemon.serveStdio() } else { try await daemon.serveSocket() }
        } catch {
            daemon.mounts?.shutdownAll()
            throw fail("\(error)", code: 1)
        }
        let failures = daemon.mounts?.shutdownAll() ?? []
        for failure in failures { logger.error("not uploaded yet (kept in the journal): \(failure)") }
    }

    private func startInBackground(_ config: DaemonConfig) throws {
        var arguments: [String] = []
        if let configPath { arguments += ["--config-path", configPath] }
        if nonInteractive { arguments.append("-y") }
        if mount { arguments.append("--mount") }
        let logFile = config.logFile ?? config.paths.runtimeDirectory + "/mesad.log"
        do {
            try FileManager.default.createDirectory(atPath: config.paths.runtimeDirectory, withIntermediateDirectories: true)
            chmod(config.paths.runtimeDirectory, 0o700)
            // argv[0] names mesad: in the bundle this executable is the multi-call binary
            // (its file is `mesa`), which runs the command its argv[0] names.
            let executable = Self.executablePath
            let pid = try Daemonizer.start(executable: executable, argv0: (executable as NSString).deletingLastPathComponent + "/mesad",
                                           arguments: arguments, logFile: logFile,
                                           socketPath: config.paths.socketPath, pidFile: config.paths.pidFile)
            print("mesad running (pid \(pid)), socket \(config.paths.socketPath), log \(logFile)")
        } catch {
            throw fail("mesad failed to start:\n\(error)", code: 1)
        }
    }

    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    private func fail(_ message: String, code: Int32) -> ExitCode {
        FileHandle.standardError.write(Data("mesad: \(message)\n".utf8))
        return ExitCode(code)
    }
}
