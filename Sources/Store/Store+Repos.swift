import Foundation
import Model

/// Internal handle on a repo row.
struct RepoRow {
    let id: String
    let orgID: String
    let orgSlug: String
    let name: String
    let defaultBookmark: String
    let tags: [String: String]
    let createdAt: Date
    let upstreamURL: String?
    let upstreamAuthKind: UpstreamAuthKind?

    static let columns = "r.id, r.org_id, o.slug, r.name, r.default_bookmark, r.tags, r.created_at, r.upstream_url, r.upstream_auth_kind"

    init(_ row: Row) {
        id = row.string(0)
        orgID = row.string(1)
        orgSlug = row.string(2)
        name = row.string(3)
        defaultBookmark = row.string(4)
        tags = JSONColumn.decode([String: String].self, row.string(5)) ?? [:]
        createdAt = Date(timeIntervalSince1970: row.double(6))
        upstreamURL = row.optionalString(7)
        upstreamAuthKind = row.optionalString(8).flatMap(UpstreamAuthKind.init(rawValue:))
    }
}

extension Store {
    // MARK: Orgs

    public func createOrg(slug: String, name: String? = nil) throws -> Org {
        try Validation.orgSlug(slug)
        let org = Org(id: OpaqueID.make("org"), slug: slug, name: name ?? slug, createdAt: Self.now())
        try withDatabase { db in
            try db.transaction {
                if try db.queryOne("SELECT 1 FROM orgs WHERE slug = ?", [.text(slug)]) != nil {
                    throw MesaError(.alreadyExists, "organization '\(slug.clipped)' already exists")
                }
                try db.query("INSERT INTO orgs(id, slug, name, created_at) VALUES (?, ?, ?, ?)",
                             [.text(org.id), .text(org.slug), .text(org.name), .double(org.createdAt.timeIntervalSince1970)])
            }
        }
        logger.info("created organization", metadata: ["org": "\(slug)"])
        return org
    }

    public func org(_ slug: String) throws -> Org {
        try withDatabase { db in
            guard let row = try db.queryOne("SELECT id, slug, name, created_at FROM orgs WHERE slug = ?", [.text(slug)]) else {
                throw MesaError.notFound("organization '\(slug.clipped)' does not exist")
            }
            return Self.org(row)
        }
    }

    public func listOrgs() throws -> [Org] {
        try withDatabase { db in
            try db.query("SELECT id, slug, name, created_at FROM orgs ORDER BY seq").map(Self.org)
        }
    }

    /// How many repos the org holds; with `only`, how many of those ids exist in it.
    public func repoCount(org slug: String, only: Set<String>? = nil) throws -> Int {
        try withDatabase { db in
            let count = try db.queryOne("SELECT count(*) FROM repos r JOIN orgs o ON o.id = r.org_id WHERE o.slug = ?",
                                        [.text(slug)])?.int(0) ?? 0
            guard let only else { return count }
            return try only.count { id in
                try db.queryOne("SELECT 1 FROM repos r JOIN orgs o ON o.id = r.org_id WHERE o.slug = ? AND r.id = ?",
                                [.text(slug), .text(id)]) != nil
            }
        }
    }

    static func org(_ row: Row) -> Org {
        Org(id: row.string(0), slug: row.string(1), name: row.string(2), createdAt: Date(timeIntervalSince1970: row.double(3)))
    }

    static func now() -> Date {
        // Whole milliseconds, so values round-trip exactly through SQLite and JSON.
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded() / 1000)
    }

    // MARK: Repos

    /// Creates a repository whose default bookmark points at the virtual root.
    /// With `upstream`, the repo remembers a git upstream (and its credential) to sync with.
    public func createRepo(org slug: String, name: String, defaultBookmark: String = "main",
                           tags: [String: String] = [:], upstream: (url: String, auth: UpstreamAuth?)? = nil) throws -> Repo {
        try Validation.repoName(name)
        if let upstream { try Self.validateUpstream(upstream.url, upstream.auth) }
        try Validation.bookmarkName(defaultBookmark)
        let tags = Self.lowercasedKeys(tags)
        try Self.validateTags(tags)
        let id = OpaqueID.make("repo")
        let created = Self.now()
        let repo = Repo(id: id, org: slug, name: name, defaultBookmark: defaultBookmark, headChangeID: .root,
                        createdAt: created, tags: tags,
                        upstream: upstream.map { Upstream(url: $0.url, authKind: $0.auth?.kind, latestSync: nil) })
        let path = repositories.path(for: id)
        let repository = try GitRepository.createBare(at: path)
        try repository.setHead("refs/heads/" + defaultBookmark)
        do {
            try withDatabase { db in
                try db.transaction {
                    guard let orgRow = try db.queryOne("SELECT id FROM orgs WHERE slug = ?", [.text(slug)]) else {
                        throw MesaError.notFound("organization '\(slug.clipped)' does not exist")
                    }
                    if try db.queryOne("SELECT 1 FROM repos WHERE org_id = ? AND name = ?",
                                       [.text(orgRow.string(0)), .text(name)]) != nil {
                        throw MesaError(.alreadyExists, "repository '\(slug.clipped)/\(name.clipped)' already exists")
                    }
                    try db.query("INSERT INTO repos(id, org_id, name, default_bookmark, tags, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                                 [.text(id), .text(orgRow.string(0)), .text(name), .text(defaultBookmark),
                                  .text(JSONColumn.encode(tags)), .double(created.timeIntervalSince1970)])
                    try db.query("INSERT INTO bookmarks(repo_id, name, change_id) VALUES (?, ?, ?)",
                                 [.text(id), .text(defaultBookmark), .text(ChangeID.root.rawValue)])
                    if let upstream {
                        try storeUpstream(repoID: id, url: upstream.url, auth: upstream.auth.map { .replace($0) } ?? .clear, db)
                    }
                    try recordEvent(db, orgID: orgRow.string(0), repoID: id, repoName: name, type: .repoCreated,
                                    data: WebhookPayload.RepoData(repo: .init(repo)))
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        logger.info("created repository", metadata: ["repo": "\(slug)/\(name)", "id": "\(id)"])
        return repo
    }

    public func repo(org slug: String, name: String) throws -> Repo {
        try withDatabase { db in try publicRepo(try repoRow(org: slug, name: name, db), db) }
    }

    public func repo(id: String) throws -> Repo {
        try withDatabase { db in
            guard let row = try db.queryOne("SELECT \(RepoRow.columns) FROM repos r JOIN orgs o ON o.id = r.org_id WHERE r.id = ?",
                                            [.text(id)]) else {
                throw MesaError.notFound("repository with id '\(id.clipped)' does not exist")
            }
            return try publicRepo(RepoRow(row), db)
        }
    }

    /// Lists repos of an org, oldest first. `only` restricts to a key's repo scope;
    /// `tags` keeps repos carrying every given tag, `filter` those matching it. Filters
    /// apply during the keyset scan, so a cursor stays valid across pages.
    public func listRepos(org slug: String, cursor: String? = nil, limit: Int? = nil,
                          only: Set<String>? = nil, tags: [String: String] = [:], filter: TagFilter? = nil) throws -> Page<Repo> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        return try withDatabase { db in
            guard try db.queryOne("SELECT 1 FROM orgs WHERE slug = ?", [.text(slug)]) != nil else {
                throw MesaError.notFound("organization '\(slug.clipped)' does not exist")
            }
            var items: [Repo] = []
            var last = position
            var more = false
            // Filters apply after the keyset scan, so keep reading until the page fills.
            scan: while true {
                let rows = try db.query("""
                    SELECT r.seq, \(RepoRow.columns) FROM repos r JOIN orgs o ON o.id = r.org_id
                    WHERE o.slug = ? AND r.seq > ? ORDER BY r.seq LIMIT 200
                    """, [.text(slug), .int(last)])
                if rows.isEmpty { break }
                for row in rows {
                    let repo = RepoRow(Self.dropFirst(row))
                    let seq = row.int(0)
                    if let only, !only.contains(repo.id) { last = seq; continue }
                    if !tags.allSatisfy({ repo.tags[$0.key.lowercased()] == $0.value }) { last = seq; continue }
                    if let filter, !filter.matches(repo.tags) { last = seq; continue }
                    if items.count == limit { more = true; break scan }
                    items.append(try publicRepo(repo, db))
                    last = seq
                }
            }
            return Page(items: items, nextCursor: more ? Cursor.encode(last) : nil)
        }
    }

    /// Renames, changes the default bookmark and patches tags (a nil value removes a tag).
    /// `upstream`: nil leaves it alone, `.remove` forgets it (and its credential).
    public func updateRepo(org slug: String, name: String, newName: String? = nil, defaultBookmark: String? = nil,
                           tags: [String: String?] = [:], upstream: UpstreamUpdate? = nil) throws -> Repo {
        if let newName { try Validation.repoName(newName) }
        if case .set(let url, let auth) = upstream {
            var given: UpstreamAuth?
            if case .replace(let replacement) = auth { given = replacement }
            try Self.validateUpstream(url, given)
        }
        try Self.validateTags(tags.compactMapValues { $0 })
        return try withDatabase { db in
            try db.transaction {
                let row = try repoRow(org: slug, name: name, db)
                if let newName, newName.lowercased() != row.name.lowercased(),
                   try db.queryOne("SELECT 1 FROM repos WHERE org_id = ? AND name = ?", [.text(row.orgID), .text(newName)]) != nil {
                    throw MesaError(.alreadyExists, "repository '\(slug.clipped)/\(newName.clipped)' already exists")
                }
                if let defaultBookmark {
                    guard try db.queryOne("SELECT 1 FROM bookmarks WHERE repo_id = ? AND name = ?",
                                          [.text(row.id), .text(defaultBookmark)]) != nil else {
                        throw MesaError.notFound("bookmark '\(defaultBookmark)' does not exist in '\(slug)/\(row.name)'; create it first")
                    }
                }
                var merged = row.tags
                for (key, value) in tags { merged[key.lowercased()] = value }
                repoCache.withLock { $0.removeAll() }
                try db.query("UPDATE repos SET name = ?, default_bookmark = ?, tags = ? WHERE id = ?",
                             [.text(newName ?? row.name), .text(defaultBookmark ?? row.defaultBookmark),
                              .text(JSONColumn.encode(merged)), .text(row.id)])
                if let defaultBookmark {
                    try repositories.with(row.id) { try $0.setHead("refs/heads/" + defaultBookmark) }
                }
                switch upstream {
                case .set(let url, let auth): try storeUpstream(repoID: row.id, url: url, auth: auth, db)
                case .remove: try storeUpstream(repoID: row.id, url: nil, auth: .clear, db)
                case nil: break
                }
                let updated = try publicRepo(try repoRow(id: row.id, db), db)
                try recordRepoUpdated(db, before: try publicRepo(row, db), after: updated)
                return updated
            }
        }
    }

    /// Sets or removes one tag on many repos of an org; returns how many repos changed.
    public func updateRepoTags(org slug: String, repoIDs: [String], key: String, value: String?) throws -> Int {
        let key = key.lowercased()
        try Self.validateTags([key: value ?? ""])
        return try withDatabase { db in
            try db.transaction {
                var updated = 0
                for id in repoIDs {
                    guard let row = try? repoRow(id: id, db), row.orgSlug.lowercased() == slug.lowercased() else { continue }
                    var tags = row.tags
                    if tags[key] == value { continue }
                    tags[key] = value
                    repoCache.withLock { $0.removeAll() }
                    let before = try publicRepo(row, db)
                    try db.query("UPDATE repos SET tags = ? WHERE id = ?", [.text(JSONColumn.encode(tags)), .text(id)])
                    try recordRepoUpdated(db, before: before, after: try publicRepo(try repoRow(id: id, db), db))
                    updated += 1
                }
                return updated
            }
        }
    }

    /// Deletes a repository permanently: metadata first, then its git directory.
    public func deleteRepo(org slug: String, name: String) throws {
        let id: String = try withDatabase { db in
            try db.transaction {
                let row = try repoRow(org: slug, name: name, db)
                let repo = try publicRepo(row, db)
                repoCache.withLock { $0.removeAll() }
                try db.query("DELETE FROM repos WHERE id = ?", [.text(row.id)])
                try recordRepoEvent(db, row, .repoDeleted, WebhookPayload.RepoData(repo: .init(repo)))
                return row.id
            }
        }
        repositories.evict(id)
        // A crash here leaves only an orphan directory, which `recover()` removes.
        try? FileManager.default.removeItem(atPath: repositories.path(for: id))
        logger.info("deleted repository", metadata: ["repo": "\(slug)/\(name)", "id": "\(id)"])
    }

    /// Where a repo's bare git repository lives (for `git clone`).
    public func gitDirectory(org slug: String, name: String) throws -> String {
        let repo = try repo(org: slug, name: name)
        return repositories.path(for: repo.id)
    }

    // MARK: Helpers

    func repoRow(org slug: String, name: String, _ db: SQLiteDatabase) throws -> RepoRow {
        // Every call resolves its repo; the hot read paths hit this cache instead of SQL.
        let key = slug.lowercased() + "/" + name.lowercased()
        if let cached = repoCache.withLock({ $0[key] }) { return cached }
        guard let row = try db.queryOne("SELECT \(RepoRow.columns) FROM repos r JOIN orgs o ON o.id = r.org_id WHERE o.slug = ? AND r.name = ?",
                                        [.text(slug), .text(name)]) else {
            throw MesaError.notFound("repository '\(slug.clipped)/\(name.clipped)' does not exist")
        }
        let repo = RepoRow(row)
        repoCache.withLock { $0[key] = repo }
        return repo
    }

    func repoRow(id: String, _ db: SQLiteDatabase) throws -> RepoRow {
        guard let row = try db.queryOne("SELECT \(RepoRow.columns) FROM repos r JOIN orgs o ON o.id = r.org_id WHERE r.id = ?",
                                        [.text(id)]) else {
            throw MesaError.notFound("repository with id '\(id.clipped)' does not exist")
        }
        return RepoRow(row)
    }

    func publicRepo(_ row: RepoRow, _ db: SQLiteDatabase) throws -> Repo {
        let head = try db.queryOne("SELECT change_id FROM bookmarks WHERE repo_id = ? AND name = ?",
                                   [.text(row.id), .text(row.defaultBookmark)]).map { ChangeID(unchecked: $0.string(0)) }
        let upstream = try row.upstreamURL.map { url in
            Upstream(url: url, authKind: row.upstreamAuthKind, latestSync: try latestSync(repoID: row.id, db))
        }
        return Repo(id: row.id, org: row.orgSlug, name: row.name, defaultBookmark: row.defaultBookmark,
                    headChangeID: head ?? .root, createdAt: row.createdAt, tags: row.tags, upstream: upstream)
    }

    static func dropFirst(_ row: Row) -> Row {
        var copy = row
        copy.removeFirstColumn()
        return copy
    }

    /// Tag keys are case-insensitive, stored lower-cased (as Mesa does).
    static func lowercasedKeys(_ tags: [String: String]) -> [String: String] {
        Dictionary(tags.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
    }

    static func validateTags(_ tags: [String: String]) throws {
        for (key, value) in tags {
            guard !key.isEmpty, key.utf8.count <= 64, !key.hasPrefix("$") else {
                throw MesaError.invalid("invalid tag key '\(key.prefix(80))': use 1 to 64 characters, not starting with '$'")
            }
            guard value.utf8.count <= 256 else {
                throw MesaError.invalid("invalid value for tag '\(key)': at most 256 characters")
            }
        }
    }
}
