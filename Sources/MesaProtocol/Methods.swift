import Foundation
import Model

// One type per method. Each carries its wire name, parameters and result; the daemon
// registers handlers by type and clients call by type, so both agree at compile time.

// MARK: Lifecycle (LSP-style)

public enum Initialize: MesaMethod {
    public static let name = "initialize"
    public struct Params: Codable, Sendable {
        public var clientInfo: ClientInfo?
        public var processId: Int?
        public init(clientInfo: ClientInfo? = nil, processId: Int? = nil) {
            self.clientInfo = clientInfo
            self.processId = processId
        }
    }
    public struct ClientInfo: Codable, Sendable {
        public var name: String
        public var version: String?
        public init(name: String, version: String? = nil) {
            self.name = name
            self.version = version
        }
    }
    public struct Result: Codable, Sendable {
        public var serverInfo: ServerInfo
        public var protocolVersion: String
        public var capabilities: Capabilities
        public init(serverInfo: ServerInfo, protocolVersion: String, capabilities: Capabilities) {
            self.serverInfo = serverInfo
            self.protocolVersion = protocolVersion
            self.capabilities = capabilities
        }
    }
    public struct ServerInfo: Codable, Sendable {
        public var name: String
        public var version: String
        public init(name: String, version: String) {
            self.name = name
            self.version = version
        }
    }
    public struct Capabilities: Codable, Sendable {
        /// Every method this daemon answers.
        public var methods: [String]
        /// Notifications it may send.
        public var notifications: [String]
        public init(methods: [String], notifications: [String]) {
            self.methods = methods
            self.notifications = notifications
        }
    }
}

public enum Shutdown: MesaMethod {
    public static let name = "shutdown"
    public typealias Params = NoParams
    public typealias Result = OK
}

// MARK: Identity and orgs

public enum Whoami: MesaMethod {
    public static let name = "whoami"
    public typealias Params = OrgSelector
    public struct Result: Codable, Sendable {
        public var org: Org
        public var keyId: String?
        public var keyName: String?
        public var scopes: [String]
        public var repoIds: [String]?
        /// "embedded" or the REST base URL.
        public var backend: String
        public init(org: Org, keyId: String? = nil, keyName: String? = nil, scopes: [String], repoIds: [String]? = nil, backend: String) {
            self.org = org
            self.keyId = keyId
            self.keyName = keyName
            self.scopes = scopes
            self.repoIds = repoIds
            self.backend = backend
        }
    }
}

public enum ListOrgs: MesaMethod {
    public static let name = "listOrgs"
    public typealias Params = NoParams
    public struct Result: Codable, Sendable {
        public var orgs: [Org]
        public init(orgs: [Org]) {
            self.orgs = orgs
        }
    }
    public struct Org: Codable, Sendable {
        public var name: String
        public var mount: String
        public var backend: String
        /// `explicit` mode: the repos the tree shows (config.toml's and those opened);
        /// absent in `all` mode, where it is every repo the key can see.
        public var repos: [String]?
        public init(name: String, mount: String, backend: String, repos: [String]? = nil) {
            self.name = name
            self.mount = mount
            self.backend = backend
            self.repos = repos
        }
    }
}

// MARK: Repos

public enum ListRepos: MesaMethod {
    public static let name = "listRepos"
    public typealias Params = Paged<OrgSelector>
    public typealias Result = Listing<Repos>
    public struct Repos: Codable, Sendable {
        public var repos: [Repo]
        public init(repos: [Repo]) { self.repos = repos }
    }
}

public enum GetRepo: MesaMethod {
    public static let name = "getRepo"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var repo: String
        public init(org: String? = nil, repo: String) {
            self.org = org
            self.repo = repo
        }
    }
    public struct Result: Codable, Sendable {
        public var repo: Repo
        public init(repo: Repo) {
            self.repo = repo
        }
    }
}

public enum CreateRepo: MesaMethod {
    public static let name = "createRepo"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var name: String
        public var defaultBookmark: String?
        /// A git upstream to sync with (see `createSync`).
        public var upstream: UpstreamParams?
        public init(org: String? = nil, name: String, defaultBookmark: String? = nil, upstream: UpstreamParams? = nil) {
            self.org = org
            self.name = name
            self.defaultBookmark = defaultBookmark
            self.upstream = upstream
        }
    }
    public typealias Result = GetRepo.Result
}

public enum DeleteRepo: MesaMethod {
    public static let name = "deleteRepo"
    public typealias Params = GetRepo.Params
    public typealias Result = OK
}

// MARK: Keys

public enum CreateEphemeralKey: MesaMethod {
    public static let name = "createEphemeralKey"
    public static let defaultLifetime = 3600
    public struct Params: Codable, Sendable {
        public var org: String?
        public var name: String?
        /// Default: read, write.
        public var scopes: [String]?
        /// 100 … 31,536,000; default 3600.
        public var expiresInSeconds: Int?
        /// Repo names or ids; omitted = org-wide.
        public var repos: [String]?
        public init(org: String? = nil, name: String? = nil, scopes: [String]? = nil, expiresInSeconds: Int? = nil,
                    repos: [String]? = nil) {
            self.org = org
            self.name = name
            self.scopes = scopes
            self.expiresInSeconds = expiresInSeconds
            self.repos = repos
        }
    }
    public struct Result: Codable, Sendable {
        /// The secret: shown once, never again.
        public var key: String
        public var info: KeyInfo
        public init(key: String, info: KeyInfo) {
            self.key = key
            self.info = info
        }
    }
}

public enum ListKeys: MesaMethod {
    public static let name = "listKeys"
    public typealias Params = Paged<Filter>
    public struct Filter: Codable, Sendable, AllOptional {
        public var org: String?
        /// active, revoked, expired; omitted = all.
        public var status: String?
        public init(org: String? = nil, status: String? = nil) {
            self.org = org
            self.status = status
        }
        public init() {}
    }
    public typealias Result = Listing<Keys>
    public struct Keys: Codable, Sendable {
        public var keys: [KeyInfo]
        public init(keys: [KeyInfo]) { self.keys = keys }
    }
}

public enum RevokeKey: MesaMethod {
    public static let name = "revokeKey"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var id: String
        public init(org: String? = nil, id: String) {
            self.org = org
            self.id = id
        }
    }
    public typealias Result = OK
}
