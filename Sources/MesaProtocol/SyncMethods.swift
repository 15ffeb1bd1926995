import Model

// MARK: Upstreams and syncs

/// A repo's git upstream in params: the url and, for a private one, a token or a
/// username and password. The secret goes to the backend, which stores it and never
/// returns it.
public struct UpstreamParams: Codable, Sendable {
    public var url: String
    public var token: String?
    /// Sent with the token as the basic-auth user; default `x-access-token`.
    public var tokenUsername: String?
    public var username: String?
    public var password: String?

    public init(url: String, token: String? = nil, tokenUsername: String? = nil, username: String? = nil, password: String? = nil) {
        self.url = url
        self.token = token
        self.tokenUsername = tokenUsername
        self.username = username
        self.password = password
    }

    public func settings() throws(MesaError) -> UpstreamSettings {
        switch (token, username, password) {
        case (nil, nil, nil): return UpstreamSettings(url: url)
        case (let token?, nil, nil): return UpstreamSettings(url: url, auth: .token(token, username: tokenUsername))
        case (nil, let username?, let password?):
            return UpstreamSettings(url: url, auth: .usernamePassword(username: username, password: password))
        default:
            throw MesaError.invalid("give the upstream either a token or a username and password, not both or half of one")
        }
    }
}

public enum CreateSync: MesaMethod {
    public static let name = "createSync"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var repo: String
        /// `pull` or `push`.
        public var direction: SyncDirection
        /// Globs of branch / tag names to sync; omitted = every one.
        public var branches: String?
        public var tags: String?
        public init(org: String? = nil, repo: String, direction: SyncDirection, branches: String? = nil, tags: String? = nil) {
            self.org = org
            self.repo = repo
            self.direction = direction
            self.branches = branches
            self.tags = tags
        }
    }
    public struct Result: Codable, Sendable {
        public var sync: Sync
        public init(sync: Sync) { self.sync = sync }
    }
}

public enum ListSyncs: MesaMethod {
    public static let name = "listSyncs"
    public typealias Params = Paged<GetRepo.Params>
    public typealias Result = Listing<Syncs>
    public struct Syncs: Codable, Sendable {
        public var syncs: [Sync]
        public init(syncs: [Sync]) { self.syncs = syncs }
    }
}

public enum GetSync: MesaMethod {
    public static let name = "getSync"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var repo: String
        public var id: String
        public init(org: String? = nil, repo: String, id: String) {
            self.org = org
            self.repo = repo
            self.id = id
        }
    }
    public typealias Result = CreateSync.Result
}

public enum SetUpstream: MesaMethod {
    public static let name = "setUpstream"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var repo: String
        /// nil removes the upstream (and its credential).
        public var upstream: UpstreamParams?
        /// With an upstream and no credential in it: keep the stored credential (default) or drop it.
        public var clearAuth: Bool?
        public init(org: String? = nil, repo: String, upstream: UpstreamParams?, clearAuth: Bool? = nil) {
            self.org = org
            self.repo = repo
            self.upstream = upstream
            self.clearAuth = clearAuth
        }
    }
    public typealias Result = GetRepo.Result
}
