import Foundation

/// Where mesad keeps things. Every default follows `$HOME` (sandboxes set it per user)
/// and the XDG variables, and each has an environment override.
public struct Paths: Sendable, Equatable {
    public var home: String
    public var configHome: String
    public var dataHome: String
    /// Socket, pid file and lock: `$MESA_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/mesa`, else `~/.local/share/mesa/run`.
    public var runtimeDirectory: String
    /// The embedded store: `$XDG_DATA_HOME/mesa/store`.
    public var storeDirectory: String
    /// `~/.local/share/mesa/secrets.plaintext.toml`: keys mesad generated itself.
    public var secretsFile: String

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        configHome = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config"
        dataHome = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.local/share"
        if let runtime = environment["MESA_RUNTIME_DIR"], !runtime.isEmpty {
            runtimeDirectory = runtime
        } else if let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty {
            runtimeDirectory = xdg + "/mesa"
        } else {
            runtimeDirectory = dataHome + "/mesa/run"
        }
        storeDirectory = dataHome + "/mesa/store"
        secretsFile = dataHome + "/mesa/secrets.plaintext.toml"
    }

    public var socketPath: String { runtimeDirectory + "/mesad.sock" }
    public var pidFile: String { runtimeDirectory + "/mesad.pid" }
    public var lockFile: String { runtimeDirectory + "/mesad.lock" }
    public var defaultMountPoint: String { dataHome + "/mesa/mnt" }
    public var defaultCacheDirectory: String { dataHome + "/mesa/cache" }
    /// Per-mount journals of writes not yet uploaded. Not under the cache directory:
    /// nothing here may be evicted.
    public var journalDirectory: String { dataHome + "/mesa/journal" }
    /// What was mounted, so a restarted daemon (even after kill -9) mounts it again.
    public var mountStateFile: String { dataHome + "/mesa/state/mounts.json" }
    /// Where `-y` writes a first-boot config.
    public var userConfigFile: String { home + "/.config/mesa/config.toml" }

    /// The config search path, first match wins.
    public var configCandidates: [String] {
        [configHome + "/mesa/config.toml", home + "/.config/mesa/config.toml", "/etc/mesa/config.toml"]
    }

    /// Expands a leading `~` to the home directory.
    public func expand(_ path: String) -> String {
        if path == "~" { return home }
        if path.hasPrefix("~/") { return home + path.dropFirst(1) }
        return path
    }
}

