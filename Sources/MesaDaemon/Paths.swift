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

/// Creates a directory (and parents) with `mode`, and tightens the mode if it exists.
func makePrivateDirectory(_ path: String, mode: mode_t = 0o700) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    guard chmod(path, mode) == 0 else {
        throw ConfigError("cannot set permissions of \(path): \(String(cString: strerror(errno)))")
    }
}

/// Writes a file atomically with mode 0600 (config and secrets hold keys).
func writePrivateFile(_ path: String, _ text: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let temporary = path + ".tmp-\(getpid())"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))") }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let result = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if result < 0 && errno == EINTR { continue }
        guard result > 0 else {
            close(descriptor)
            throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        written += result
    }
    fsync(descriptor)
    close(descriptor)
    guard rename(temporary, path) == 0 else { throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))") }
}

/// A configuration problem the user must fix; the message says where and how.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
