import Foundation

public struct KeyInfo: Codable, Sendable, Equatable {
    public var id: String
    public var org: String
    public var name: String?
    public var scopes: [String]
    /// nil = every repo of the org.
    public var repoIds: [String]?
    public var status: String
    public var tags: [String: String]
    public var createdAt: String
    public var expiresAt: String?
    public var revokedAt: String?
    public var lastUsedAt: String?

    public init(id: String, org: String, name: String?, scopes: [String], repoIds: [String]?, status: String,
                tags: [String: String], createdAt: String, expiresAt: String?, revokedAt: String?, lastUsedAt: String?) {
        self.id = id
        self.org = org
        self.name = name
        self.scopes = scopes
        self.repoIds = repoIds
        self.status = status
        self.tags = tags
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}
