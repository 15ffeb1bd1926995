import Foundation
import Mount

public enum OrgMountMode: String, Sendable, Equatable {
    /// Every repo the org's key can see, including repos created later.
    case all
    /// Only the repos listed in the config or opened with `mesa repo open`.
    case explicit
}

/// A pinned revision for one repo (`rev = { bookmark = "main" }` or `{ change-id = "…" }`).
public enum RevisionPin: Sendable, Equatable {
    case bookmark(String)
    case changeID(String)
}

public struct RepoConfig: Sendable, Equatable {
    public var name: String
    public var rev: RevisionPin?
}

public struct OrgConfig: Sendable, Equatable {
    public var name: String
    public var apiKey: String?
    public var mount: OrgMountMode
    public var repos: [RepoConfig]

    public init(name: String, apiKey: String? = nil, mount: OrgMountMode = .all, repos: [RepoConfig] = []) {
        self.name = name
        self.apiKey = apiKey
        self.mount = mount
        self.repos = repos
    }
}

/// The daemon's configuration: defaults, then `config.toml`, then the environment.
public struct DaemonConfig: Sendable {
    public var paths: Paths
    /// The file the config was read from, if any.
    public var configFile: String?
    public var mountPoint: String
    /// A mesa-server (or any server speaking Mesa's REST contract); nil = embedded store.
    public var apiURL: String?
    public var organizations: [OrgConfig]
    public var cacheDirectory: String
    public var cacheMaxBytes: Int
    /// What each mount fetches in the background when it opens (`[cache] prefetch`).
    public var prefetch: PrefetchMode
    public var logLevel: String?
    public var logFile: String?
    public var maxFrameBytes: Int
    /// Socket clients served at once; the next one is answered with an error and closed.
    public var maxConnections = 16_384
    public var flushDebounceMilliseconds: Int
    /// How often clean mounts of a bookmark look whether someone else moved it; 0 = never.
    public var followIntervalMilliseconds: Int
    /// What `close` promises on a mount: `fsync` (journaled at close, synced at fsync,
    /// as local filesystems do) or `close` (synced at every close).
    public var durability: Durability = .fsync
    /// `[daemon] allow-other`: other local users may reach the mounts (FUSE allow_other).
    public var allowOther = false
    /// Problems that do not stop the daemon (unknown keys), reported in the log.
    public var warnings: [String] = []

    public struct LoadOptions: Sendable {
        public var configPath: String?
        public var environment: [String: String]

        public init(configPath: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.configPath = configPath
            self.environment = environment
        }
    }

    public init(paths: Paths) {
        self.paths = paths
        mountPoint = paths.defaultMountPoint
        organizations = []
        cacheDirectory = paths.defaultCacheDirectory
        cacheMaxBytes = 10 << 30
        // Directory listings only: a few small metadata calls per directory, and a
        // visit to any directory is then answered from memory; content could fill
        // the cache with files nobody reads.
        prefetch = .layout
        maxFrameBytes = 64 << 20
        flushDebounceMilliseconds = 1000
        followIntervalMilliseconds = 2000
    }

    public static func load(_ options: LoadOptions = LoadOptions()) throws -> DaemonConfig {
        let environment = options.environment
        var config = DaemonConfig(paths: Paths(environment: environment))
        let skipFile = environment["MESA_NO_CONFIG_FILE"].map { !$0.isEmpty && $0 != "0" && $0.lowercased() != "false" } ?? false
        if let path = options.configPath {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigError("config file \(path) (from --config-path) does not exist")
            }
            try config.apply(file: path)
        } else if !skipFile, let path = config.paths.configCandidates.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            try config.apply(file: path)
        }
        try config.apply(environment: environment)
        return config
    }

    // MARK: config.toml

    static let knownTopLevel: Set<String> = Set(ConfigFile.CodingKeys.allCases.map(\.rawValue))
        .union(["service-domain", "uid", "gid", "secrets", "telemetry"])

    mutating func apply(file path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("cannot read config file \(path): \(error.localizedDescription)")
        }
        try apply(toml: text, source: path)
        configFile = path
    }

    mutating func apply(toml text: String, source: String) throws {
        let (file, keys) = try ConfigFile.decode(text, source: source)
        for key in keys where !Self.knownTopLevel.contains(key) {
            warnings.append("\(source): unknown key '\(key)' ignored")
        }
        if let value = file.mountPoint { mountPoint = paths.expand(value) }
        if let value = file.apiURL { apiURL = value }
        if let cache = file.cache {
            if let value = cache.path { cacheDirectory = paths.expand(value) }
            if let value = cache.maxSize { cacheMaxBytes = try Self.byteSize(value, "cache.max-size", source) }
            if let value = cache.prefetch { prefetch = try Self.prefetchMode(value, "\(source): cache.prefetch") }
        }
        if let daemon = file.daemon {
            if let value = daemon.logLevel { logLevel = value }
            if let value = daemon.logFile { logFile = paths.expand(value) }
            if let value = daemon.maxFrameSize { maxFrameBytes = try Self.byteSize(value, "daemon.max-frame-size", source) }
            if let value = daemon.maxConnections {
                guard (1...1_000_000).contains(value) else {
                    throw ConfigError("\(source): daemon.max-connections must be \(ConfigFile.maxConnectionsRange)")
                }
                maxConnections = value
            }
            if let value = daemon.flushDebounceMilliseconds {
                guard (0...60_000).contains(value) else {
                    throw ConfigError("\(source): daemon.flush-debounce-ms must be \(ConfigFile.flushDebounceRange)")
                }
                flushDebounceMilliseconds = value
            }
            if let value = daemon.followIntervalMilliseconds {
                followIntervalMilliseconds = try Self.followInterval(value, "daemon.follow-interval-ms", source)
            }
            if let value = daemon.durability { durability = try Self.durability(value, "daemon.durability", source) }
            if let value = daemon.allowOther { allowOther = value }
        }
        for (name, body) in (file.organizations ?? [:]).sorted(by: { $0.key < $1.key }) {
            try applyOrganization(name: name, body, source)
        }
    }

    private mutating func applyOrganization(name: String, _ org: ConfigFile.Organization, _ source: String) throws {
        var config = OrgConfig(name: name, apiKey: org.apiKey)
        for (repo, body) in (org.repos ?? [:]).sorted(by: { $0.key < $1.key }) {
            var pin: RevisionPin?
            if let rev = body.rev {
                if let bookmark = rev.bookmark {
                    pin = .bookmark(bookmark)
                } else if let change = rev.changeID {
                    pin = .changeID(change)
                } else {
                    throw ConfigError("\(source): organizations.\(name).repos.\(repo).rev needs 'bookmark' or 'change-id'")
                }
            }
            config.repos.append(RepoConfig(name: repo, rev: pin))
        }
        // Mesa's rule: without `mount`, listing repos implies explicit mode.
        config.mount = config.repos.isEmpty ? .all : .explicit
        if let text = org.mount {
            guard let parsed = OrgMountMode(rawValue: text) else {
                throw ConfigError("\(source): organizations.\(name).mount must be \"all\" or \"explicit\", not \"\(text)\"")
            }
            config.mount = parsed
        }
        upsert(config)
    }

    static func prefetchMode(_ text: String, _ name: String) throws -> PrefetchMode {
        guard let mode = PrefetchMode(rawValue: text) else {
            throw ConfigError("\(name) must be \"layout\", \"content\" or \"off\", not \"\(text.prefix(40))\"")
        }
        return mode
    }

    // MARK: Environment

    mutating func apply(environment: [String: String]) throws {
        if let value = environment["MESA_MOUNT_POINT"], !value.isEmpty { mountPoint = paths.expand(value) }
        if let value = environment["MESA_API_URL"], !value.isEmpty { apiURL = value }
        if let value = environment["MESA_CACHE_PATH"], !value.isEmpty { cacheDirectory = paths.expand(value) }
        if let value = environment["MESA_CACHE_MAX_SIZE"], !value.isEmpty {
            cacheMaxBytes = try Self.byteSize(.text(value), "MESA_CACHE_MAX_SIZE", "environment")
        }
        if let value = environment["MESA_CACHE_PREFETCH"], !value.isEmpty {
            prefetch = try Self.prefetchMode(value, "MESA_CACHE_PREFETCH")
        }
        if let value = environment["MESA_DAEMON_LOG_FILE"], !value.isEmpty { logFile = paths.expand(value) }
        if let value = environment["MESA_LOG"], !value.isEmpty { logLevel = value }
        if let value = environment["MESA_DAEMON_FOLLOW_INTERVAL_MS"], !value.isEmpty {
            followIntervalMilliseconds = try Self.followInterval(Int(value) ?? -1, "MESA_DAEMON_FOLLOW_INTERVAL_MS", "environment")
        }
        if let value = environment["MESA_DURABILITY"], !value.isEmpty {
            durability = try Self.durability(value, "MESA_DURABILITY", "environment")
        }
        if let orgs = environment["MESA_ORGS"], !orgs.isEmpty {
            for entry in orgs.split(separator: ",") {
                let parts = entry.split(separator: ":", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ConfigError("MESA_ORGS entry '\(entry.prefix(40))…' is not org:key; use MESA_ORGS=org:key[,org:key…]")
                }
                try upsertKey(org: parts[0], key: parts[1])
            }
        }
        if let org = environment["MESA_ORG"], !org.isEmpty {
            guard let key = environment["MESA_API_KEY"], !key.isEmpty else {
                if organizations.contains(where: { $0.name == org }) { return }
                throw ConfigError("MESA_ORG=\(org) is set but MESA_API_KEY is not; set both, or use MESA_ORGS=\(org):<key>")
            }
            try upsertKey(org: org, key: key)
        }
    }

    private mutating func upsertKey(org: String, key: String) throws {
        if var existing = organizations.first(where: { $0.name == org }) {
            existing.apiKey = key
            upsert(existing)
        } else {
            upsert(OrgConfig(name: org, apiKey: key))
        }
    }

    private mutating func upsert(_ org: OrgConfig) {
        if let index = organizations.firstIndex(where: { $0.name == org.name }) {
            organizations[index] = org
        } else {
            organizations.append(org)
        }
    }

    // MARK: First boot

    /// The config `-y` writes on first boot: the orgs (and keys) from the environment.
    public func firstBootTOML() throws -> String {
        let file = ConfigFile(mountPoint: mountPoint, apiURL: apiURL, organizations: Dictionary(
            organizations.map { ($0.name, ConfigFile.Organization(apiKey: $0.apiKey, mount: $0.mount.rawValue)) }) { $1 })
        return try file.toml(header: "# Written by mesad on first boot (-y). Edit freely; see README.md.")
    }

    /// Writes `~/.config/mesa/config.toml` (0600) when no config file exists yet.
    /// Returns the path written, or nil when a config already existed.
    @discardableResult
    public func writeFirstBootConfigIfMissing() throws -> String? {
        guard configFile == nil, !FileManager.default.fileExists(atPath: paths.userConfigFile) else { return nil }
        try writePrivateFile(paths.userConfigFile, try firstBootTOML())
        return paths.userConfigFile
    }

    // MARK: Value helpers

    static func durability(_ text: String, _ key: String, _ source: String) throws -> Durability {
        guard let value = Durability(rawValue: text) else {
            throw ConfigError("\(source): \(key) must be \"fsync\" (sync on fsync, the default) or \"close\" (sync on every close), not \"\(text.prefix(40))\"")
        }
        return value
    }

    static func followInterval(_ number: Int, _ key: String, _ source: String) throws -> Int {
        guard (0...3_600_000).contains(number) else {
            throw ConfigError("\(source): \(key) must be \(ConfigFile.followIntervalRange)")
        }
        return number
    }

    /// Parses "10GB", "512MiB", "1024" and friends.
    static func byteSize(_ value: ConfigFile.ByteSize, _ key: String, _ source: String) throws -> Int {
        if case .bytes(let number) = value, number > 0 { return number }
        guard case .text(let written) = value, case let text = written.trimmingCharacters(in: .whitespaces).uppercased(),
              !text.isEmpty else {
            throw ConfigError("\(source): \(key) must be a size such as \"10GB\" or \"512MB\"")
        }
        let units: [(String, Int)] = [("TIB", 1 << 40), ("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10),
                                      ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            if let amount = Double(number), amount > 0 { return Int(amount * Double(factor)) }
        }
        if let amount = Int(text), amount > 0 { return amount }
        throw ConfigError("\(source): \(key) = \"\(text)\" is not a size; use a number with KB, MB, GB (or KiB, MiB, GiB)")
    }
}
