import COpenSSL
import Foundation
import Model

/// Who is calling, as established by `authenticate`.
public struct Principal: Equatable, Sendable {
    public let org: Org
    public let keyID: String
    public let keyName: String?
    public let scopes: [Scope]
    public let repoIDs: Set<String>?

    /// The highest scope held; lower ones are implied.
    public var level: Scope { scopes.max() ?? .read }

    public func has(_ scope: Scope) -> Bool { level >= scope }
}

/// What a caller wants to do; `authorize` decides in one place.
public enum Action: Sendable, Equatable {
    /// View repos, changes, content, diffs, bookmarks.
    case read
    /// Modify an existing repo: changes, bookmarks, merges, settings.
    case write
    /// Delete a repository and its whole history: needs `admin`, never the read+write
    /// keys handed to sandboxes.
    case deleteRepo
    /// Create a repository in the org (needs an org-wide key).
    case createRepo
    /// Manage API keys of the whole org: list and revoke them (needs an org-wide key).
    case admin
    /// Create a key no stronger than the caller's own (a repo-scoped admin key may mint
    /// keys for its repos; `createAPIKey(creator:)` enforces the subset).
    case createKey

    var requiredScope: Scope {
        switch self {
        case .read: .read
        case .write, .createRepo: .write
        case .admin, .createKey, .deleteRepo: .admin
        }
    }
}

extension Store {
    public static let minimumKeyLifetime = 100
    public static let maximumKeyLifetime = 31_536_000

    /// Creates an API key. Scopes default to read+write. With `creator`, the new key can
    /// hold no more than the creator: no higher scope, no repos outside its repo scope.
    public func createAPIKey(org slug: String, name: String? = nil, scopes: [Scope]? = nil, repoIDs: [String]? = nil,
                             expiresInSeconds: Int? = nil, tags: [String: String] = [:],
                             creator: Principal? = nil) throws -> CreatedAPIKey {
        let scopes = Array(Set(scopes ?? [.read, .write])).sorted()
        guard !scopes.isEmpty else { throw MesaError.invalid("scopes must name at least one of read, write, admin") }
        if let expiresInSeconds, !(Self.minimumKeyLifetime...Self.maximumKeyLifetime).contains(expiresInSeconds) {
            throw MesaError.invalid("invalid expiry \(expiresInSeconds) s: use \(Self.minimumKeyLifetime) to \(Self.maximumKeyLifetime) seconds (1 year)")
        }
        if let name, name.utf8.count > 200 { throw MesaError.invalid("key name is longer than 200 characters") }
        let normalizedTags = Dictionary(tags.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        try Self.validateTags(normalizedTags)
        if let repoIDs, repoIDs.isEmpty {
            throw MesaError.invalid("repoIds is empty: omit it for an org-wide key, or name at least one repo")
        }
        if let creator {
            guard creator.org.slug.lowercased() == slug.lowercased() else {
                throw MesaError.notFound("organization '\(slug.clipped)' does not exist or the calling key cannot see it")
            }
            if let above = scopes.first(where: { !creator.has($0) }) {
                throw MesaError(.forbidden, "cannot create a key with scope '\(above.rawValue)': the calling key only has \(creator.scopes.map(\.rawValue).joined(separator: ","))")
            }
            if let allowed = creator.repoIDs {
                guard let repoIDs, Set(repoIDs).isSubset(of: allowed) else {
                    throw MesaError(.forbidden, "the calling key is scoped to specific repos; the new key must name a subset of them")
                }
            }
        }
        let secret = "mesa_" + Self.randomHex(bytes: 32)
        let now = Self.now()
        let key = APIKey(id: OpaqueID.make("key"), org: slug, name: name, scopes: scopes, repoIDs: repoIDs.map { Array(Set($0)).sorted() },
                         tags: normalizedTags, createdAt: now,
                         expiresAt: expiresInSeconds.map { now.addingTimeInterval(TimeInterval($0)) }, revokedAt: nil, lastUsedAt: nil)
        try withDatabase { db in
            try db.transaction {
                guard let org = try db.queryOne("SELECT id FROM orgs WHERE slug = ?", [.text(slug)]) else {
                    throw MesaError.notFound("organization '\(slug.clipped)' does not exist")
                }
                for repoID in key.repoIDs ?? [] {
                    guard try db.queryOne("SELECT 1 FROM repos WHERE id = ? AND org_id = ?", [.text(repoID), .text(org.string(0))]) != nil else {
                        throw MesaError.notFound("repository with id '\(repoID)' does not exist in '\(slug.clipped)'")
                    }
                }
                try db.query("""
                    INSERT INTO api_keys(id, org_id, name, digest, scopes, repo_ids, tags, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(key.id), .text(org.string(0)), .optionalText(name), .blob(Self.digest(secret)),
                          .text(JSONColumn.encode(scopes)), .optionalText(key.repoIDs.map { JSONColumn.encode($0) }),
                          .text(JSONColumn.encode(normalizedTags)), .double(now.timeIntervalSince1970),
                          .optionalDouble(key.expiresAt?.timeIntervalSince1970)])
            }
        }
        logger.info("created API key", metadata: ["org": "\(slug)", "key": "\(key.id)", "scopes": "\(scopes.map(\.rawValue))"])
        return CreatedAPIKey(key: key, secret: secret)
    }

    /// Lists keys (never their secrets), newest first. Filters: `status`; `query`, a
    /// case-insensitive substring of the name; `scope`, keys holding exactly that scope in
    /// their list; `repoID`, keys scoped to that repo (org-wide keys are not listed).
    /// The cursor is the last key's sequence number, so it stays valid when keys are
    /// created or filtered out between pages.
    public func listAPIKeys(org slug: String, status: KeyStatus? = nil, query: String? = nil, scope: Scope? = nil,
                            repoID: String? = nil, cursor: String? = nil, limit: Int? = nil) throws -> Page<APIKey> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        let now = Date()
        let needle = query?.lowercased()
        return try withDatabase { db in
            guard try db.queryOne("SELECT 1 FROM orgs WHERE slug = ?", [.text(slug)]) != nil else {
                throw MesaError.notFound("organization '\(slug.clipped)' does not exist")
            }
            let rows = try db.query("""
                SELECT \(Self.keyColumns) FROM api_keys k JOIN orgs o ON o.id = k.org_id
                WHERE o.slug = ? AND (? = 0 OR k.seq < ?) ORDER BY k.seq DESC
                """, [.text(slug), .int(position), .int(position)])
            let matching = rows.lazy.filter { row in
                let key = Self.apiKey(row)
                if let status, key.status(at: now) != status { return false }
                if let needle, !(key.name?.lowercased().contains(needle) ?? false) { return false }
                if let scope, !key.scopes.contains(scope) { return false }
                if let repoID, !(key.repoIDs?.contains(repoID) ?? false) { return false }
                return true
            }
            let window = Array(matching.prefix(limit + 1))
            let items = window.prefix(limit).map(Self.apiKey)
            let next = window.count > limit ? Cursor.encode(window[limit - 1].int(10)) : nil
            return Page(items: items, nextCursor: next)
        }
    }

    public func apiKey(org slug: String, id: String) throws -> APIKey {
        try withDatabase { db in
            guard let row = try db.queryOne("SELECT \(Self.keyColumns) FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE o.slug = ? AND k.id = ?",
                                            [.text(slug), .text(id)]) else {
                throw MesaError.notFound("API key '\(id.clipped)' does not exist in '\(slug)'")
            }
            return Self.apiKey(row)
        }
    }

    /// Revokes a key; any later use of it fails with `keyRevoked`.
    public func revokeAPIKey(org slug: String, id: String) throws {
        try withDatabase { db in
            try db.transaction {
                try db.query("""
                    UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?)
                    WHERE id = ? AND org_id = (SELECT id FROM orgs WHERE slug = ?)
                    """, [.double(Date().timeIntervalSince1970), .text(id), .text(slug)])
                guard db.changes == 1 else { throw MesaError.notFound("API key '\(id.clipped)' does not exist in '\(slug)'") }
            }
        }
        logger.info("revoked API key", metadata: ["org": "\(slug)", "key": "\(id)"])
    }

    /// Patches a key's tags (nil removes one) and returns the resulting tags.
    public func updateAPIKeyTags(org slug: String, id: String, tags: [String: String?]) throws -> [String: String] {
        try withDatabase { db in
            try db.transaction {
                guard let row = try db.queryOne("SELECT \(Self.keyColumns) FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE o.slug = ? AND k.id = ?",
                                                [.text(slug), .text(id)]) else {
                    throw MesaError.notFound("API key '\(id.clipped)' does not exist in '\(slug)'")
                }
                var merged = Self.apiKey(row).tags
                for (key, value) in tags { merged[key.lowercased()] = value }
                try Self.validateTags(merged)
                try db.query("UPDATE api_keys SET tags = ? WHERE id = ?", [.text(JSONColumn.encode(merged)), .text(id)])
                return merged
            }
        }
    }

    /// Turns a secret into a principal, telling unknown, expired and revoked keys apart.
    public func authenticate(secret: String) throws -> Principal {
        guard secret.hasPrefix("mesa_"), secret.utf8.count <= 200 else {
            throw MesaError(.unauthenticated, "not a Mesa API key: keys start with 'mesa_'")
        }
        let digest = Self.digest(secret)
        let now = Date()
        return try withDatabase { db in
            guard let row = try db.queryOne("""
                SELECT \(Self.keyColumns), k.digest, o.id, o.name, o.created_at FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE k.digest = ?
                """, [.blob(digest)]), Self.constantTimeEqual(row.blob(11), digest) else {
                throw MesaError(.unauthenticated, "unknown API key: it was never issued by this server or its organization was deleted")
            }
            let key = Self.apiKey(row)
            switch key.status(at: now) {
            case .revoked:
                throw MesaError(.keyRevoked, "API key '\(key.name ?? key.id)' of org '\(key.org)' was revoked at \(Self.iso(key.revokedAt)); create a new key")
            case .expired:
                throw MesaError(.keyExpired, "API key '\(key.name ?? key.id)' of org '\(key.org)' expired at \(Self.iso(key.expiresAt)); create a new key")
            case .active:
                break
            }
            // Recording every use would cost a durable write per request; once a minute is enough.
            if (key.lastUsedAt.map { now.timeIntervalSince($0) > 60 } ?? true) {
                try? db.query("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [.double(now.timeIntervalSince1970), .text(key.id)])
            }
            let org = Org(id: row.string(12), slug: key.org, name: row.string(13), createdAt: Date(timeIntervalSince1970: row.double(14)))
            return Principal(org: org, keyID: key.id, keyName: key.name, scopes: key.scopes, repoIDs: key.repoIDs.map(Set.init))
        }
    }

    /// The scope checks of every API in one place. Repos outside a key's repo scope and
    /// other orgs are reported as not found, so their names do not leak.
    public func authorize(_ principal: Principal, _ action: Action, org slug: String, repoID: String? = nil) throws {
        guard principal.org.slug.lowercased() == slug.lowercased() else {
            throw MesaError.notFound("organization '\(slug.clipped)' does not exist or this key cannot see it")
        }
        if let repoID, let allowed = principal.repoIDs, !allowed.contains(repoID) {
            throw MesaError.notFound("repository does not exist or this key cannot see it")
        }
        let needed = action.requiredScope
        guard principal.has(needed) else {
            throw MesaError(.forbidden, "key '\(principal.keyName ?? principal.keyID)' has scopes \(principal.scopes.map(\.rawValue).joined(separator: ",")); this operation needs '\(needed.rawValue)'")
        }
        // Managing keys is org-wide: a repo-scoped key must not list or revoke keys of
        // repos it cannot see.
        if action == .admin, principal.repoIDs != nil {
            throw MesaError(.forbidden, "key '\(principal.keyName ?? principal.keyID)' is scoped to specific repos and cannot manage API keys; use an org-wide admin key")
        }
        if action == .createRepo, principal.repoIDs != nil {
            throw MesaError(.forbidden, "key '\(principal.keyName ?? principal.keyID)' is scoped to specific repos and cannot create repositories; use an org-wide key")
        }
    }

    // MARK: Internals

    static let keyColumns = "k.id, o.slug, k.name, k.scopes, k.repo_ids, k.tags, k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.seq"

    static func apiKey(_ row: Row) -> APIKey {
        APIKey(id: row.string(0), org: row.string(1), name: row.optionalString(2),
               scopes: (JSONColumn.decode([String].self, row.string(3)) ?? []).compactMap(Scope.init(rawValue:)),
               repoIDs: row.optionalString(4).flatMap { JSONColumn.decode([String].self, $0) },
               tags: JSONColumn.decode([String: String].self, row.string(5)) ?? [:],
               createdAt: Date(timeIntervalSince1970: row.double(6)),
               expiresAt: row.optionalDouble(7).map(Date.init(timeIntervalSince1970:)),
               revokedAt: row.optionalDouble(8).map(Date.init(timeIntervalSince1970:)),
               lastUsedAt: row.optionalDouble(9).map(Date.init(timeIntervalSince1970:)))
    }

    static func digest(_ secret: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let bytes = Array(secret.utf8)
        bytes.withUnsafeBytes { copenssl_sha256($0.baseAddress, $0.count, &out) }
        return out
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func iso(_ date: Date?) -> String {
        guard let date else { return "an unknown time" }
        return ISO8601DateFormatter().string(from: date)
    }
}
