import Foundation
import Model

// MARK: Upstreams and syncs (`Repo.upstream`, `/{org}/{repo}/upstream/syncs`)

/// `Repo.upstream`: the url, the kind of credential (never the secret) and the latest sync.
public struct RESTUpstream: Codable, Sendable, Equatable {
    public var url: String
    public var authKind: String?
    public var latestSync: RESTSync?

    public init(_ upstream: Upstream) {
        url = upstream.url
        authKind = upstream.authKind?.rawValue
        latestSync = upstream.latestSync.map(RESTSync.init)
    }

    public var upstream: Upstream {
        Upstream(url: url, authKind: authKind.flatMap(UpstreamAuthKind.init(rawValue:)), latestSync: try? latestSync?.sync())
    }

    enum CodingKeys: String, CodingKey { case url, authKind = "auth_kind", latestSync = "latest_sync" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(url, forKey: .url)
        try c.encode(authKind, forKey: .authKind)
        try c.encode(latestSync, forKey: .latestSync)
    }
}

/// `upstream.auth` in requests: `{kind: "token", token, token_username?}` or
/// `{kind: "username_password", username, password}`.
public struct RESTUpstreamAuth: Codable, Sendable, Equatable {
    public var kind: String
    public var token: String?
    public var tokenUsername: String?
    public var username: String?
    public var password: String?

    public init(_ auth: UpstreamAuth) {
        kind = auth.kind.rawValue
        switch auth {
        case .token(let token, let username): self.token = token; tokenUsername = username
        case .usernamePassword(let username, let password): self.username = username; self.password = password
        }
    }

    public func auth() throws(MesaError) -> UpstreamAuth {
        switch kind {
        case UpstreamAuthKind.token.rawValue:
            guard let token else { throw MesaError.invalid("'upstream.auth.token' is required when 'kind' is 'token'") }
            return .token(token, username: tokenUsername)
        case UpstreamAuthKind.usernamePassword.rawValue:
            guard let username, let password else {
                throw MesaError.invalid("'upstream.auth.username' and 'upstream.auth.password' are required when 'kind' is 'username_password'")
            }
            return .usernamePassword(username: username, password: password)
        default:
            throw MesaError.invalid("invalid 'upstream.auth.kind' '\(kind.prefix(40))': use 'token' or 'username_password'")
        }
    }

    enum CodingKeys: String, CodingKey { case kind, token, username, password, tokenUsername = "token_username" }
}

/// `upstream` in POST/PATCH repo bodies. `auth` is three-way on PATCH: absent keeps the
/// stored credential, `null` clears it, an object replaces it.
public struct RESTUpstreamInput: Codable, Sendable, Equatable {
    public var url: String
    public var auth: RESTUpstreamAuth?
    public var authGiven: Bool

    public init(url: String, auth: UpstreamAuth?, keepAuth: Bool = false) {
        self.url = url
        self.auth = auth.map(RESTUpstreamAuth.init)
        authGiven = !keepAuth
    }

    enum CodingKeys: String, CodingKey { case url, auth }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decode(String.self, forKey: .url)
        authGiven = c.contains(.auth)
        auth = try c.decodeIfPresent(RESTUpstreamAuth.self, forKey: .auth)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(url, forKey: .url)
        if authGiven { try c.encode(auth, forKey: .auth) }
    }

    public func settings() throws(MesaError) -> UpstreamSettings {
        UpstreamSettings(url: url, auth: try auth?.auth())
    }

    public func update() throws(MesaError) -> UpstreamUpdate {
        guard authGiven else { return .set(url: url, auth: .keep) }
        guard let auth else { return .set(url: url, auth: .clear) }
        return .set(url: url, auth: .replace(try auth.auth()))
    }
}

public struct RESTSyncRefGlobs: Codable, Sendable, Equatable {
    public var branches: String?
    public var tags: String?

    public init(branches: String?, tags: String?) {
        self.branches = branches
        self.tags = tags
    }
}

public struct RESTSyncStats: Codable, Sendable, Equatable {
    public var refs: [RESTSyncRef]
}

public struct RESTSyncRef: Codable, Sendable, Equatable {
    public var name: String
    public var before: String?
    public var after: String
    public var outcome: String

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(before, forKey: .before)
        try c.encode(after, forKey: .after)
        try c.encode(outcome, forKey: .outcome)
    }
}

/// A sync as the REST API shows it. Globs left out when it was created read `*`.
public struct RESTSync: Codable, Sendable, Equatable {
    public var id: String
    public var repoID: String
    public var direction: String
    public var status: String
    public var attempt: Int
    public var refGlobs: RESTSyncRefGlobs
    public var stats: RESTSyncStats?
    public var error: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(_ sync: Sync) {
        id = sync.id
        repoID = sync.repoID
        direction = sync.direction.rawValue
        status = sync.status.rawValue
        attempt = sync.attempt
        refGlobs = RESTSyncRefGlobs(branches: sync.refGlobs.branches ?? "*", tags: sync.refGlobs.tags ?? "*")
        stats = sync.refs.map { RESTSyncStats(refs: $0.map { RESTSyncRef(name: $0.name, before: $0.before, after: $0.after, outcome: $0.outcome.rawValue) }) }
        error = sync.error
        createdAt = sync.createdAt
        startedAt = sync.startedAt
        finishedAt = sync.finishedAt
    }

    public func sync() throws(MesaError) -> Sync {
        guard let direction = SyncDirection(rawValue: direction), let status = SyncStatus(rawValue: status) else {
            throw MesaError.internal("the server sent a sync with direction '\(direction)' and status '\(status)'")
        }
        let globs = SyncRefGlobs(branches: refGlobs.branches == "*" ? nil : refGlobs.branches, tags: refGlobs.tags == "*" ? nil : refGlobs.tags)
        let refs = stats?.refs.map {
            SyncRefStat(name: $0.name, before: $0.before, after: $0.after, outcome: SyncRefOutcome(rawValue: $0.outcome) ?? .rejected)
        }
        return Sync(id: id, repoID: repoID, direction: direction, status: status, attempt: attempt, refGlobs: globs, refs: refs,
                    error: error, createdAt: createdAt, startedAt: startedAt, finishedAt: finishedAt)
    }

    enum CodingKeys: String, CodingKey {
        case id, direction, status, attempt, stats, error
        case repoID = "repo_id", refGlobs = "ref_globs", createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(repoID, forKey: .repoID)
        try c.encode(direction, forKey: .direction)
        try c.encode(status, forKey: .status)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(refGlobs, forKey: .refGlobs)
        try c.encode(stats, forKey: .stats)
        try c.encode(error, forKey: .error)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(finishedAt, forKey: .finishedAt)
    }
}

extension RESTSync: RESTListed {
    public typealias Model = Sync
    public static let listKey = "syncs"
}

public typealias RESTSyncPage = RESTPage<RESTSync>

/// `POST /{org}/{repo}/upstream/syncs`
public struct RESTCreateSync: Codable, Sendable, Equatable {
    public var direction: String
    public var refGlobs: RESTSyncRefGlobs?

    public init(direction: SyncDirection, refGlobs: SyncRefGlobs) {
        self.direction = direction.rawValue
        self.refGlobs = refGlobs == SyncRefGlobs() ? nil : RESTSyncRefGlobs(branches: refGlobs.branches, tags: refGlobs.tags)
    }

    public func parsed() throws(MesaError) -> (SyncDirection, SyncRefGlobs) {
        guard let value = SyncDirection(rawValue: direction) else {
            throw MesaError.invalid("invalid 'direction' '\(direction.prefix(40))': use 'pull' or 'push'")
        }
        if let refGlobs, refGlobs.branches == nil && refGlobs.tags == nil {
            throw MesaError.invalid("'ref_globs' needs at least one of 'branches' and 'tags' (omit it to sync every ref)")
        }
        return (value, SyncRefGlobs(branches: refGlobs?.branches, tags: refGlobs?.tags))
    }

    enum CodingKeys: String, CodingKey { case direction, refGlobs = "ref_globs" }
}
