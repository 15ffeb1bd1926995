import Foundation
import Model

/// The stored form of an upstream credential (`repos.upstream_secret`). Read only by
/// the sync that uses it; never returned, logged or cached with the repo row.
struct StoredUpstreamAuth: Codable {
    var kind: UpstreamAuthKind
    var username: String?
    var secret: String

    init(_ auth: UpstreamAuth) {
        kind = auth.kind
        switch auth {
        case .token(let token, let username): self.username = username; secret = token
        case .usernamePassword(let username, let password): self.username = username; secret = password
        }
    }

    var auth: UpstreamAuth {
        switch kind {
        case .token: .token(secret, username: username)
        case .usernamePassword: .usernamePassword(username: username ?? "", password: secret)
        }
    }
}

/// Internal view of a sync row.
struct SyncRow {
    static let columns = "id, repo_id, direction, status, attempt, ref_globs, refs, error, created_at, started_at, finished_at"

    let sync: Sync

    init(_ row: Row) {
        sync = Sync(id: row.string(0), repoID: row.string(1),
                    direction: SyncDirection(rawValue: row.string(2)) ?? .pull,
                    status: SyncStatus(rawValue: row.string(3)) ?? .failed, attempt: row.int(4),
                    refGlobs: JSONColumn.decode(SyncRefGlobs.self, row.string(5)) ?? SyncRefGlobs(),
                    refs: row.optionalString(6).flatMap { JSONColumn.decode([SyncRefStat].self, $0) },
                    error: row.optionalString(7), createdAt: Date(timeIntervalSince1970: row.double(8)),
                    startedAt: row.optionalDouble(9).map(Date.init(timeIntervalSince1970:)),
                    finishedAt: row.optionalDouble(10).map(Date.init(timeIntervalSince1970:)))
    }
}

extension Store {
    // MARK: Upstream settings

    static func validateUpstream(_ url: String, _ auth: UpstreamAuth?) throws {
        try Validation.upstreamURL(url)
        if let auth { try Validation.upstreamAuth(auth) }
    }

    /// Writes the upstream columns; `url` nil removes the upstream and its credential.
    func storeUpstream(repoID: String, url: String?, auth: UpstreamAuthChange, _ db: SQLiteDatabase) throws {
        repoCache.withLock { $0.removeAll() }
        try db.query("UPDATE repos SET upstream_url = ? WHERE id = ?", [SQLValue.optionalText(url), .text(repoID)])
        var change = auth
        if url == nil { change = .clear }
        switch change {
        case .keep: break
        case .clear:
            try db.query("UPDATE repos SET upstream_auth_kind = NULL, upstream_secret = NULL WHERE id = ?", [.text(repoID)])
        case .replace(let auth):
            try db.query("UPDATE repos SET upstream_auth_kind = ?, upstream_secret = ? WHERE id = ?",
                         [.text(auth.kind.rawValue), .text(JSONColumn.encode(StoredUpstreamAuth(auth))), .text(repoID)])
        }
    }

    /// The upstream url and credential a sync of this repo uses.
    func upstreamTarget(repoID: String) throws -> (url: String, auth: UpstreamAuth?) {
        try withDatabase { db in
            guard let row = try db.queryOne("SELECT upstream_url, upstream_secret FROM repos WHERE id = ?", [.text(repoID)]),
                  let url = row.optionalString(0) else {
                throw MesaError.invalid("the repository has no upstream; set one with PATCH /{org}/{repo} {\"upstream\": {\"url\": …}}")
            }
            return (url, row.optionalString(1).flatMap { JSONColumn.decode(StoredUpstreamAuth.self, $0)?.auth })
        }
    }

    // MARK: Syncs

    /// Queues a pull or push with the repo's upstream; the sync worker runs it.
    public func createSync(org slug: String, repo name: String, direction: SyncDirection,
                           refGlobs: SyncRefGlobs = SyncRefGlobs()) throws -> Sync {
        try Validation.syncGlob(refGlobs.branches, "branches")
        try Validation.syncGlob(refGlobs.tags, "tags")
        let now = Self.now()
        let sync = try withDatabase { db in
            try db.transaction { () -> Sync in
                let repo = try repoRow(org: slug, name: name, db)
                guard repo.upstreamURL != nil else {
                    throw MesaError.invalid("repository '\(slug.clipped)/\(name.clipped)' has no upstream; set one first (PATCH /{org}/{repo} with 'upstream', or create-repo --upstream)")
                }
                let sync = Sync(id: OpaqueID.make("sync"), repoID: repo.id, direction: direction, status: .queued, attempt: 0,
                                refGlobs: refGlobs, refs: nil, error: nil, createdAt: now, startedAt: nil, finishedAt: nil)
                try db.query("""
                    INSERT INTO syncs(id, repo_id, direction, status, attempt, ref_globs, created_at)
                    VALUES (?, ?, ?, ?, 0, ?, ?)
                    """, [.text(sync.id), .text(repo.id), .text(direction.rawValue), .text(SyncStatus.queued.rawValue),
                          .text(JSONColumn.encode(refGlobs)), .double(now.timeIntervalSince1970)])
                try recordSyncEvent(db, sync)
                return sync
            }
        }
        logger.info("queued sync", metadata: ["repo": "\(slug)/\(name)", "sync": "\(sync.id)", "direction": "\(direction.rawValue)"])
        syncStatusChanged(sync)
        syncWorkerWake()
        return sync
    }

    /// Syncs queued or running, in every repo (mesad's `stats`).
    public func syncsInFlight() throws -> Int {
        try withDatabase { db in
            try db.queryOne("SELECT count(*) FROM syncs WHERE status IN (?, ?)",
                            [.text(SyncStatus.queued.rawValue), .text(SyncStatus.inProgress.rawValue)])?.int(0) ?? 0
        }
    }

    /// Syncs of a repo, newest first.
    public func listSyncs(org slug: String, repo name: String, cursor: String? = nil, limit: Int? = nil) throws -> Page<Sync> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        return try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            let rows = try db.query("""
                SELECT seq, \(SyncRow.columns) FROM syncs WHERE repo_id = ? AND (? = 0 OR seq < ?) ORDER BY seq DESC LIMIT ?
                """, [.text(repo.id), .int(position), .int(position), .int(limit + 1)])
            let items = rows.prefix(limit).map { SyncRow(Self.dropFirst($0)).sync }
            return Page(items: Array(items), nextCursor: rows.count > limit ? Cursor.encode(rows[limit - 1].int(0)) : nil)
        }
    }

    public func sync(org slug: String, repo name: String, id: String) throws -> Sync {
        try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            guard let row = try db.queryOne("SELECT \(SyncRow.columns) FROM syncs WHERE repo_id = ? AND id = ?",
                                            [.text(repo.id), .text(id)]) else {
                throw MesaError.notFound("sync '\(id.clipped)' does not exist in '\(slug.clipped)/\(name.clipped)'")
            }
            return SyncRow(row).sync
        }
    }

    func latestSync(repoID: String, _ db: SQLiteDatabase) throws -> Sync? {
        try db.queryOne("SELECT \(SyncRow.columns) FROM syncs WHERE repo_id = ? ORDER BY seq DESC LIMIT 1",
                        [.text(repoID)]).map { SyncRow($0).sync }
    }

    func syncRow(id: String) throws -> Sync? {
        try withDatabase { db in
            try db.queryOne("SELECT \(SyncRow.columns) FROM syncs WHERE id = ?", [.text(id)]).map { SyncRow($0).sync }
        }
    }

    /// What a status transition writes besides the status.
    struct SyncUpdate {
        var status: SyncStatus
        var attempt: Int? = nil
        var refs: [SyncRefStat]?? = nil
        var error: String?? = nil
        var startedAt: Date? = nil
        var finishedAt: Date? = nil
        var notBefore: Date? = nil
    }

    /// Every sync status change goes through here, so one observer
    /// (`onSyncStatusChange`) sees each transition once: queued → in_progress →
    /// completed | failed (and back to queued for a retry or after a restart).
    @discardableResult
    /// With `from`, the change happens only if the sync still has that status (a claim).
    func transitionSync(id: String, _ update: SyncUpdate, from: SyncStatus? = nil) throws -> Sync? {
        let sync = try withDatabase { db -> Sync? in
            var sets = ["status = ?"]
            var arguments: [SQLValue] = [.text(update.status.rawValue)]
            if let attempt = update.attempt { sets.append("attempt = ?"); arguments.append(.int(attempt)) }
            if let refs = update.refs { sets.append("refs = ?"); arguments.append(.optionalText(refs.map(JSONColumn.encode))) }
            if let error = update.error { sets.append("error = ?"); arguments.append(.optionalText(error)) }
            if let started = update.startedAt { sets.append("started_at = ?"); arguments.append(.double(started.timeIntervalSince1970)) }
            if let finished = update.finishedAt { sets.append("finished_at = ?"); arguments.append(.double(finished.timeIntervalSince1970)) }
            if let notBefore = update.notBefore { sets.append("not_before = ?"); arguments.append(.double(notBefore.timeIntervalSince1970)) }
            var condition = "id = ?"
            arguments.append(.text(id))
            if let from { condition += " AND status = ?"; arguments.append(.text(from.rawValue)) }
            return try db.transaction { () -> Sync? in
                try db.query("UPDATE syncs SET \(sets.joined(separator: ", ")) WHERE \(condition)", arguments)
                guard db.changes == 1,
                      let sync = try db.queryOne("SELECT \(SyncRow.columns) FROM syncs WHERE id = ?", [.text(id)]).map({ SyncRow($0).sync })
                else { return nil }
                try recordSyncEvent(db, sync)
                return sync
            }
        }
        if let sync { syncStatusChanged(sync) }
        return sync
    }

    /// Calls the observer set with `onSyncStatusChange` (webhook events are recorded in
    /// the transition's own transaction, before this).
    func syncStatusChanged(_ sync: Sync) {
        let observer = syncState.withLock { $0.observer }
        observer?(sync)
    }

    /// Sets the one observer of sync status changes (queued, in_progress, completed,
    /// failed); it runs on the thread that changed the status and must not block long.
    public func onSyncStatusChange(_ observer: (@Sendable (Sync) -> Void)?) {
        syncState.withLock { $0.observer = observer }
    }
}
