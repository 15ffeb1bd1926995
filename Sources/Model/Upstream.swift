import Foundation

/// The credential a repo uses to reach its git upstream. Stored by the store and never
/// returned, logged or described beyond its kind.
public enum UpstreamAuth: Sendable, Equatable {
    /// Sent as HTTP basic auth: `username` (default `x-access-token`, GitHub's convention) and the token.
    case token(String, username: String?)
    case usernamePassword(username: String, password: String)

    public var kind: UpstreamAuthKind {
        switch self {
        case .token: .token
        case .usernamePassword: .usernamePassword
        }
    }

    /// The pair libgit2 offers as plaintext userpass.
    public var userpass: (username: String, password: String) {
        switch self {
        case .token(let token, let username): (username.flatMap { $0.isEmpty ? nil : $0 } ?? "x-access-token", token)
        case .usernamePassword(let username, let password): (username, password)
        }
    }
}

public enum UpstreamAuthKind: String, Sendable, Codable, Equatable {
    case token
    case usernamePassword = "username_password"
}

/// A repo's git upstream as clients see it: no secret, only its kind.
public struct Upstream: Sendable, Equatable {
    public let url: String
    public let authKind: UpstreamAuthKind?
    public let latestSync: Sync?

    public init(url: String, authKind: UpstreamAuthKind?, latestSync: Sync?) {
        self.url = url
        self.authKind = authKind
        self.latestSync = latestSync
    }
}

/// How `updateRepo` treats the upstream.
public enum UpstreamUpdate: Sendable, Equatable {
    /// Set the url; `auth` nil keeps the stored credential.
    case set(url: String, auth: UpstreamAuthChange)
    case remove
}

public enum UpstreamAuthChange: Sendable, Equatable {
    case keep
    case clear
    case replace(UpstreamAuth)
}

public enum SyncDirection: String, Sendable, Codable, Equatable, CaseIterable {
    case pull, push
}

public enum SyncStatus: String, Sendable, Codable, Equatable {
    case queued
    case inProgress = "in_progress"
    case completed, failed

    public var isFinished: Bool { self == .completed || self == .failed }
}

/// `fnmatch` patterns for branch (bookmark) and tag names; nil means every name.
public struct SyncRefGlobs: Sendable, Equatable, Codable {
    public var branches: String?
    public var tags: String?

    public init(branches: String? = nil, tags: String? = nil) {
        self.branches = branches
        self.tags = tags
    }
}

public enum SyncRefOutcome: String, Sendable, Codable, Equatable {
    case updated, unchanged, filtered, rejected
}

/// What a sync did to one ref (`refs/heads/…` or `refs/tags/…`): commit ids before and after.
public struct SyncRefStat: Sendable, Equatable, Codable {
    public var name: String
    public var before: String?
    public var after: String
    public var outcome: SyncRefOutcome

    public init(name: String, before: String?, after: String, outcome: SyncRefOutcome) {
        self.name = name
        self.before = before
        self.after = after
        self.outcome = outcome
    }
}

/// One pull or push between a repo and its upstream.
public struct Sync: Sendable, Equatable {
    public let id: String
    public let repoID: String
    public let direction: SyncDirection
    public let status: SyncStatus
    public let attempt: Int
    public let refGlobs: SyncRefGlobs
    /// nil until the sync has looked at the refs.
    public let refs: [SyncRefStat]?
    public let error: String?
    public let createdAt: Date
    public let startedAt: Date?
    public let finishedAt: Date?

    public init(id: String, repoID: String, direction: SyncDirection, status: SyncStatus, attempt: Int,
                refGlobs: SyncRefGlobs, refs: [SyncRefStat]?, error: String?, createdAt: Date,
                startedAt: Date?, finishedAt: Date?) {
        self.id = id
        self.repoID = repoID
        self.direction = direction
        self.status = status
        self.attempt = attempt
        self.refGlobs = refGlobs
        self.refs = refs
        self.error = error
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// JSON-RPC's shape: camelCase keys, times as `WireTime` strings.
extension Sync: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, repoId, direction, status, attempt, refGlobs, refs, error, createdAt, startedAt, finishedAt
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func time(_ key: CodingKeys) throws -> Date? {
            try c.decodeIfPresent(String.self, forKey: key) == nil ? nil : try WireTime.decode(c, key)
        }
        self.init(id: try c.decode(String.self, forKey: .id), repoID: try c.decode(String.self, forKey: .repoId),
                  direction: try c.decode(SyncDirection.self, forKey: .direction),
                  status: try c.decode(SyncStatus.self, forKey: .status), attempt: try c.decode(Int.self, forKey: .attempt),
                  refGlobs: try c.decodeIfPresent(SyncRefGlobs.self, forKey: .refGlobs) ?? SyncRefGlobs(),
                  refs: try c.decodeIfPresent([SyncRefStat].self, forKey: .refs),
                  error: try c.decodeIfPresent(String.self, forKey: .error), createdAt: try WireTime.decode(c, .createdAt),
                  startedAt: try time(.startedAt), finishedAt: try time(.finishedAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(repoID, forKey: .repoId)
        try c.encode(direction, forKey: .direction)
        try c.encode(status, forKey: .status)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(refGlobs, forKey: .refGlobs)
        try c.encode(refs, forKey: .refs)
        try c.encode(error, forKey: .error)
        try c.encode(WireTime.string(createdAt), forKey: .createdAt)
        try c.encode(startedAt.map(WireTime.string), forKey: .startedAt)
        try c.encode(finishedAt.map(WireTime.string), forKey: .finishedAt)
    }
}

/// JSON-RPC's shape of `Upstream`.
extension Upstream: Codable {
    private enum CodingKeys: String, CodingKey { case url, authKind, latestSync }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(url: try c.decode(String.self, forKey: .url),
                  authKind: try c.decodeIfPresent(UpstreamAuthKind.self, forKey: .authKind),
                  latestSync: try c.decodeIfPresent(Sync.self, forKey: .latestSync))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(url, forKey: .url)
        try c.encode(authKind, forKey: .authKind)
        try c.encode(latestSync, forKey: .latestSync)
    }
}

extension Validation {
    /// Upstream URLs libgit2 can reach: http(s)://, git://, ssh://, file://, scp-like
    /// `user@host:path`, or an absolute local path. At most 2,048 bytes, no control characters.
    public static func upstreamURL(_ url: String) throws(MesaError) {
        let bad = url.isEmpty || url.utf8.count > 2048
            || url.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == " " })
        if !bad {
            let lower = url.lowercased()
            for scheme in ["http://", "https://", "git://", "ssh://", "file://"] where lower.hasPrefix(scheme) {
                let rest = url.dropFirst(scheme.count)
                // A password in the url would be stored and shown with it: it belongs in 'auth'.
                let authority = rest.prefix { $0 != "/" }
                if let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") { break }
                // file:// needs a path; the network schemes need a host.
                if scheme == "file://" ? rest.hasPrefix("/") : (!rest.isEmpty && !rest.hasPrefix("/")) { return }
            }
            if url.hasPrefix("/") { return }
            // scp-like: [user@]host:path (no scheme, a colon before any slash).
            if !url.contains("://"), let colon = url.firstIndex(of: ":"),
               !url[..<colon].contains("/"), url.distance(from: url.startIndex, to: colon) > 0,
               url.index(after: colon) < url.endIndex {
                return
            }
        }
        throw MesaError.invalid("invalid upstream url '\(url.prefix(200))': use https://, http://, git://, ssh://, file:// or an absolute path (credentials go in 'auth', not the url)")
    }

    /// Upstream credentials: non-empty, no NUL or newline, at most 4 KiB each.
    public static func upstreamAuth(_ auth: UpstreamAuth) throws(MesaError) {
        let (username, password) = auth.userpass
        for (field, value) in [("username", username), ("secret", password)] {
            guard !value.isEmpty, value.utf8.count <= 4096, !value.contains("\0"), !value.contains("\n") else {
                throw MesaError.invalid("invalid upstream credential: the \(field) must be 1 to 4096 characters without NUL or newline")
            }
        }
    }

    /// Sync ref globs: `fnmatch` patterns of at most 256 bytes.
    public static func syncGlob(_ glob: String?, _ field: String) throws(MesaError) {
        guard let glob else { return }
        guard !glob.isEmpty, glob.utf8.count <= 256, !glob.contains("\0") else {
            throw MesaError.invalid("invalid ref_globs.\(field) '\(glob.prefix(80))': use a glob of 1 to 256 characters, such as 'main' or 'release/*'")
        }
    }
}

/// An upstream as a repo is created with: where, and the credential (nil: public).
public struct UpstreamSettings: Sendable, Equatable {
    public var url: String
    public var auth: UpstreamAuth?

    public init(url: String, auth: UpstreamAuth? = nil) {
        self.url = url
        self.auth = auth
    }
}
