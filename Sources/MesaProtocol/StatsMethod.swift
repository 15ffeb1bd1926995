/// `stats`: what the daemon holds right now, for `mesa stats`.
public enum DaemonStats: MesaMethod {
    public static let name = "stats"
    public typealias Params = NoParams

    public struct Result: Codable, Sendable {
        public var pid: Int32
        public var version: String
        public var uptimeSeconds: Int
        /// Every mount (`listMounts`), repo mounts with their upload counters.
        public var mounts: [Mount]
        /// The blob cache the mounts share; absent when mounting is unavailable.
        public var cache: Cache?
        /// Files written but not yet uploaded, over every repo mount.
        public var pendingUploads: Int
        /// Upstream syncs queued or running in the embedded store; absent with a remote
        /// backend (mesa-server runs those). Set through `Daemon.countSyncsInFlight(with:)`.
        public var syncsInFlight: Int?

        public init(pid: Int32, version: String, uptimeSeconds: Int, mounts: [Mount], cache: Cache?, pendingUploads: Int,
                    syncsInFlight: Int?) {
            self.pid = pid
            self.version = version
            self.uptimeSeconds = uptimeSeconds
            self.mounts = mounts
            self.cache = cache
            self.pendingUploads = pendingUploads
            self.syncsInFlight = syncsInFlight
        }
    }

    public struct Mount: Codable, Sendable {
        public var mountId: String
        public var path: String
        public var mode: String
        /// Repo mounts only (the tree itself holds no files).
        public var pendingUploads: Int?
        public var dirtyPaths: Int?
        public var lastError: String?

        public init(mountId: String, path: String, mode: String, pendingUploads: Int? = nil, dirtyPaths: Int? = nil, lastError: String? = nil) {
            self.mountId = mountId
            self.path = path
            self.mode = mode
            self.pendingUploads = pendingUploads
            self.dirtyPaths = dirtyPaths
            self.lastError = lastError
        }
    }

    public struct Cache: Codable, Sendable {
        public var path: String
        public var entries: Int
        public var usedBytes: UInt64
        public var maxBytes: UInt64
        /// Blobs the mounts needed that were cached / had to be downloaded, since start.
        public var hits: UInt64
        public var misses: UInt64
        /// hits / (hits + misses); absent before the first lookup.
        public var hitRate: Double?

        public init(path: String, entries: Int, usedBytes: UInt64, maxBytes: UInt64, hits: UInt64, misses: UInt64) {
            self.path = path
            self.entries = entries
            self.usedBytes = usedBytes
            self.maxBytes = maxBytes
            self.hits = hits
            self.misses = misses
            hitRate = hits + misses == 0 ? nil : Double(hits) / Double(hits + misses)
        }
    }
}
