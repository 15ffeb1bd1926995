import Foundation

/// Key scopes, hierarchical: `read` ⊂ `write` ⊂ `admin`.
public enum Scope: String, Sendable, Codable, CaseIterable, Comparable {
    case read, write, admin

    var rank: Int {
        switch self {
        case .read: 0
        case .write: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.rank < rhs.rank }

    public static func parse(_ text: String) throws(MesaError) -> Scope {
        guard let scope = Scope(rawValue: text) else {
            throw MesaError.invalid("invalid scope '\(text.prefix(40))': use read, write or admin")
        }
        return scope
    }
}

public enum KeyStatus: String, Sendable, Codable {
    case active, revoked, expired
}

public struct APIKey: Equatable, Sendable {
    public let id: String
    public let org: String
    public let name: String?
    public let scopes: [Scope]
    /// nil = every repo of the org.
    public let repoIDs: [String]?
    public let tags: [String: String]
    public let createdAt: Date
    public let expiresAt: Date?
    public let revokedAt: Date?
    public let lastUsedAt: Date?

    public func status(at now: Date = Date()) -> KeyStatus {
        if revokedAt != nil { return .revoked }
        if let expiresAt, expiresAt <= now { return .expired }
        return .active
    }

    public init(id: String, org: String, name: String?, scopes: [Scope], repoIDs: [String]?, tags: [String: String], createdAt: Date, expiresAt: Date?, revokedAt: Date?, lastUsedAt: Date?) {
        self.id = id
        self.org = org
        self.name = name
        self.scopes = scopes
        self.repoIDs = repoIDs
        self.tags = tags
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}

/// A key together with its secret: returned once, at creation.
public struct CreatedAPIKey: Sendable {
    public let key: APIKey
    public let secret: String

    public init(key: APIKey, secret: String) {
        self.key = key
        self.secret = secret
    }
}
