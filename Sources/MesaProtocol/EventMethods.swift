import Foundation

/// The notifications mesad sends to clients that subscribed: each is a JSON-RPC
/// notification named `mesa/<event>` whose params are a `MesaEvent`.
public enum MesaEvents {
    public static let filesChanged = "filesChanged"
    public static let changeAmended = "changeAmended"
    public static let checkpointMade = "checkpointMade"
    public static let bookmarkMoved = "bookmarkMoved"
    public static let uploadPending = "uploadPending"
    public static let uploadFailed = "uploadFailed"
    public static let uploadRecovered = "uploadRecovered"
    public static let mountLost = "mountLost"

    public static let all = [filesChanged, changeAmended, checkpointMade, bookmarkMoved, uploadPending, uploadFailed,
                             uploadRecovered, mountLost]

    /// The notification method of an event: `mesa/filesChanged`, …
    public static func method(_ event: String) -> String { "mesa/" + event }
    public static var methods: [String] { all.map(method) }
}

/// The params of every `mesa/*` notification. `event` repeats the method's last part,
/// so a log of params alone stays readable; fields that do not apply are absent.
public struct MesaEvent: Codable, Sendable, Equatable {
    public var event: String
    /// The mount it happened in (absent for a bookmark that no mount targets).
    public var mountId: String?
    public var mountPath: String?
    public var org: String?
    public var repo: String?
    /// filesChanged: repo-relative paths; uploadPending: the first 100 pending paths.
    public var paths: [String]?
    /// filesChanged: more paths changed than were recorded; re-read the whole mount.
    public var truncated: Bool?
    /// changeAmended / checkpointMade / bookmarkMoved: the change concerned.
    public var changeId: String?
    /// bookmarkMoved: where the bookmark was (absent when it was created).
    public var fromChangeId: String?
    /// checkpointMade / bookmarkMoved: the bookmark's name.
    public var bookmark: String?
    /// checkpointMade: whether there was new work to save.
    public var created: Bool?
    /// checkpointMade: the description given.
    public var message: String?
    public var pendingUploads: Int?
    /// uploadFailed: the backend's error.
    public var error: String?
    /// mountLost: why.
    public var reason: String?
    /// When mesad noticed it (ISO-8601).
    public var time: String

    public init(event: String, mountId: String? = nil, mountPath: String? = nil, org: String? = nil, repo: String? = nil,
                paths: [String]? = nil, truncated: Bool? = nil, changeId: String? = nil, fromChangeId: String? = nil,
                bookmark: String? = nil, created: Bool? = nil, message: String? = nil, pendingUploads: Int? = nil,
                error: String? = nil, reason: String? = nil, time: Date = Date()) {
        self.event = event
        self.mountId = mountId
        self.mountPath = mountPath
        self.org = org
        self.repo = repo
        self.paths = paths
        self.truncated = truncated
        self.changeId = changeId
        self.fromChangeId = fromChangeId
        self.bookmark = bookmark
        self.created = created
        self.message = message
        self.pendingUploads = pendingUploads
        self.error = error
        self.reason = reason
        self.time = Timestamp.string(time)
    }
}

public enum Subscribe: MesaMethod {
    public static let name = "subscribe"
    /// Only events of the selected mount (`mountId: "tree"`: every repo of the daemon tree).
    public typealias Params = Flat<MountSelector, Events>
    public struct Events: Codable, Sendable, AllOptional {
        /// Event names (`filesChanged`, …); omitted: all.
        public var events: [String]?
        public init(events: [String]? = nil) { self.events = events }
        public init() {}
    }
    public struct Result: Codable, Sendable {
        public var subscriptionId: Int
        public var mountId: String?
        public var events: [String]
        public init(subscriptionId: Int, mountId: String?, events: [String]) {
            self.subscriptionId = subscriptionId
            self.mountId = mountId
            self.events = events
        }
    }
}

public enum Unsubscribe: MesaMethod {
    public static let name = "unsubscribe"
    public struct Params: Codable, Sendable {
        /// Omitted: every subscription of this connection.
        public var subscriptionId: Int?
        public init(subscriptionId: Int? = nil) { self.subscriptionId = subscriptionId }
    }
    public struct Result: Codable, Sendable {
        public var removed: Int
        public init(removed: Int) { self.removed = removed }
    }
}

/// Uploads a mount's pending writes now (what a PostToolUse hook calls after an edit).
public enum Flush: MesaMethod {
    public static let name = "flush"
    public typealias Params = MountSelector
    public typealias Result = MountStatusInfo
}
