import Foundation
import Model

/// The webhook tables. Created with IF NOT EXISTS outside the numbered schema, so they
/// appear in any existing store without a version bump.
enum WebhookSchema {
    static func migrate(_ connection: SQLiteDatabase) throws {
        try connection.transaction {
            try connection.execute("""
            CREATE TABLE IF NOT EXISTS webhook_targets(
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                org_id TEXT NOT NULL REFERENCES orgs(id),
                name TEXT,
                url TEXT NOT NULL,
                events TEXT NOT NULL,
                repo_ids TEXT,
                secret TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS webhook_targets_by_org ON webhook_targets(org_id);
            -- The outbox: every event some target wants, once, written in the transaction of
            -- the change that caused it. No foreign key to repos: repo.deleted outlives its repo.
            CREATE TABLE IF NOT EXISTS webhook_events(
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                org_id TEXT NOT NULL,
                repo_id TEXT,
                repo_name TEXT,
                repo_seq INTEGER NOT NULL,
                type TEXT NOT NULL,
                occurred_at REAL NOT NULL,
                data TEXT NOT NULL);
            -- The last per-repo sequence number handed out ('' = events about no repo).
            CREATE TABLE IF NOT EXISTS webhook_sequences(
                repo_id TEXT PRIMARY KEY,
                last INTEGER NOT NULL);
            -- One row per (target, event it matched): pending until a 2xx or the last
            -- attempt; then kept as the target's delivery log. `lane` (repo id or '')
            -- orders deliveries: per target and lane strictly by event_seq.
            CREATE TABLE IF NOT EXISTS webhook_deliveries(
                target_id TEXT NOT NULL REFERENCES webhook_targets(id) ON DELETE CASCADE,
                event_seq INTEGER NOT NULL REFERENCES webhook_events(seq),
                lane TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                status_code INTEGER,
                error TEXT,
                next_attempt_at REAL NOT NULL,
                last_attempt_at REAL,
                finished_at REAL,
                PRIMARY KEY(target_id, event_seq));
            CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries(state, target_id, lane, event_seq);
            CREATE INDEX IF NOT EXISTS webhook_deliveries_by_event ON webhook_deliveries(event_seq);
            """)
        }
    }
}

extension Store {
    static let webhookColumns = "t.id, t.name, t.url, t.events, t.repo_ids, t.created_at, t.updated_at"

    /// Creates a target of an org; the answer carries its secret, which is never shown again.
    /// `events` nil = every event; `repoIDs` nil = every repo of the org.
    public func createWebhookTarget(org slug: String, name: String?, url: String, events: [WebhookEventType]?,
                                    repoIDs: [String]?) throws -> CreatedWebhookTarget {
        try Self.validateWebhook(name: name, url: url, events: events)
        let secret = "whsec_" + Self.randomHex(bytes: 32)
        let now = Self.now()
        let target = WebhookTarget(id: OpaqueID.make("wht"), name: name, url: url, events: events ?? WebhookEventType.allCases,
                                   repoIDs: repoIDs.map(Self.unique), createdAt: now, updatedAt: now)
        try withDatabase { db in
            try db.transaction {
                let orgID = try orgID(slug, db)
                try checkRepoIDs(target.repoIDs, orgID: orgID, db)
                try db.query("""
                    INSERT INTO webhook_targets(id, org_id, name, url, events, repo_ids, secret, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(target.id), .text(orgID), .optionalText(name), .text(url),
                          .text(JSONColumn.encode(target.events)), .optionalText(target.repoIDs.map(JSONColumn.encode)),
                          .text(secret), .double(now.timeIntervalSince1970), .double(now.timeIntervalSince1970)])
            }
        }
        logger.info("created webhook target", metadata: ["org": "\(slug)", "id": "\(target.id)"])
        return CreatedWebhookTarget(target: target, secret: secret)
    }

    public func webhookTarget(org slug: String, id: String) throws -> WebhookTarget {
        try withDatabase { db in try webhookTargetRow(org: slug, id: id, db) }
    }

    /// Targets of an org, oldest first.
    public func listWebhookTargets(org slug: String, cursor: String? = nil, limit: Int? = nil) throws -> Page<WebhookTarget> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        return try withDatabase { db in
            let orgID = try orgID(slug, db)
            let rows = try db.query("""
                SELECT t.seq, \(Self.webhookColumns) FROM webhook_targets t WHERE t.org_id = ? AND t.seq > ?
                ORDER BY t.seq LIMIT ?
                """, [.text(orgID), .int(position), .int(limit + 1)])
            let items = rows.prefix(limit).map { Self.webhookTarget(Self.dropFirst($0)) }
            let next = rows.count > limit ? Cursor.encode(rows[limit - 1].int(0)) : nil
            return Page(items: Array(items), nextCursor: next)
        }
    }

    /// Replaces the given fields. `name: .some(nil)` clears the name, `repoIDs: .some(nil)`
    /// makes the target org-wide; nil leaves a field as it is. New filters apply to events
    /// recorded from now on.
    public func updateWebhookTarget(org slug: String, id: String, name: String?? = nil, url: String? = nil,
                                    events: [WebhookEventType]? = nil, repoIDs: [String]?? = nil) throws -> WebhookTarget {
        try Self.validateWebhook(name: name ?? nil, url: url, events: events)
        return try withDatabase { db in
            try db.transaction {
                let current = try webhookTargetRow(org: slug, id: id, db)
                let orgID = try orgID(slug, db)
                let newRepoIDs = repoIDs.map { $0.map(Self.unique) } ?? current.repoIDs
                if repoIDs != nil { try checkRepoIDs(newRepoIDs, orgID: orgID, db) }
                try db.query("UPDATE webhook_targets SET name = ?, url = ?, events = ?, repo_ids = ?, updated_at = ? WHERE id = ?",
                             [.optionalText(name ?? current.name), .text(url ?? current.url),
                              .text(JSONColumn.encode(events ?? current.events)),
                              .optionalText(newRepoIDs.map(JSONColumn.encode)), .double(Self.now().timeIntervalSince1970),
                              .text(current.id)])
                return try webhookTargetRow(org: slug, id: id, db)
            }
        }
    }

    /// Deletes a target and its pending deliveries and log.
    public func deleteWebhookTarget(org slug: String, id: String) throws {
        try withDatabase { db in
            try db.transaction {
                let target = try webhookTargetRow(org: slug, id: id, db)
                try db.query("DELETE FROM webhook_targets WHERE id = ?", [.text(target.id)])
            }
        }
        logger.info("deleted webhook target", metadata: ["org": "\(slug)", "id": "\(id)"])
    }

    /// The delivery log of a target, newest event first (pending deliveries included).
    public func webhookDeliveries(org slug: String, targetID: String, cursor: String? = nil,
                                  limit: Int? = nil) throws -> Page<WebhookDelivery> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        return try withDatabase { db in
            let target = try webhookTargetRow(org: slug, id: targetID, db)
            let rows = try db.query("""
                SELECT d.event_seq, e.id, e.type, e.repo_id, e.occurred_at, d.state, d.attempts, d.status_code, d.error,
                       d.last_attempt_at, d.next_attempt_at, d.finished_at
                FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq
                WHERE d.target_id = ? AND (? = 0 OR d.event_seq < ?) ORDER BY d.event_seq DESC LIMIT ?
                """, [.text(target.id), .int(position), .int(position), .int(limit + 1)])
            let items = rows.prefix(limit).map { row in
                let state = WebhookDelivery.State(rawValue: row.string(5)) ?? .pending
                return WebhookDelivery(
                    eventID: row.string(1), eventType: WebhookEventType(rawValue: row.string(2)) ?? .push,
                    repoID: row.optionalString(3), occurredAt: Date(timeIntervalSince1970: row.double(4)), state: state,
                    attempts: row.int(6), statusCode: row.optionalDouble(7).map { Int($0) }, error: row.optionalString(8),
                    lastAttemptAt: row.optionalDouble(9).map(Date.init(timeIntervalSince1970:)),
                    nextAttemptAt: state == .pending ? Date(timeIntervalSince1970: row.double(10)) : nil,
                    finishedAt: row.optionalDouble(11).map(Date.init(timeIntervalSince1970:)))
            }
            let next = rows.count > limit ? Cursor.encode(rows[limit - 1].int(0)) : nil
            return Page(items: Array(items), nextCursor: next)
        }
    }

    // MARK: Internals

    static func webhookTarget(_ row: Row) -> WebhookTarget {
        WebhookTarget(id: row.string(0), name: row.optionalString(1), url: row.string(2),
                      events: JSONColumn.decode([WebhookEventType].self, row.string(3)) ?? [],
                      repoIDs: row.optionalString(4).flatMap { JSONColumn.decode([String].self, $0) },
                      createdAt: Date(timeIntervalSince1970: row.double(5)), updatedAt: Date(timeIntervalSince1970: row.double(6)))
    }

    func webhookTargetRow(org slug: String, id: String, _ db: SQLiteDatabase) throws -> WebhookTarget {
        guard let row = try db.queryOne("""
            SELECT \(Self.webhookColumns) FROM webhook_targets t JOIN orgs o ON o.id = t.org_id WHERE o.slug = ? AND t.id = ?
            """, [.text(slug), .text(id)]) else {
            throw MesaError.notFound("webhook target '\(id.clipped)' does not exist in '\(slug.clipped)'")
        }
        return Self.webhookTarget(row)
    }

    func orgID(_ slug: String, _ db: SQLiteDatabase) throws -> String {
        guard let row = try db.queryOne("SELECT id FROM orgs WHERE slug = ?", [.text(slug)]) else {
            throw MesaError.notFound("organization '\(slug.clipped)' does not exist")
        }
        return row.string(0)
    }

    /// Every id must name a repo of the org: a typo would silently filter out every event.
    private func checkRepoIDs(_ ids: [String]?, orgID: String, _ db: SQLiteDatabase) throws {
        for id in ids ?? [] where try db.queryOne("SELECT 1 FROM repos WHERE id = ? AND org_id = ?", [.text(id), .text(orgID)]) == nil {
            throw MesaError.invalid("'repo_ids' names '\(id.clipped)', which is not a repository id of this organization")
        }
    }

    static func unique(_ ids: [String]) -> [String] {
        var seen = Set<String>()
        return ids.filter { seen.insert($0).inserted }
    }

    /// http(s) URLs with a host only: anything else could never be delivered, or would
    /// point the server at a local file.
    static func validateWebhook(name: String?, url: String?, events: [WebhookEventType]?) throws {
        if let name, name.isEmpty || name.utf8.count > 100 {
            throw MesaError.invalid("'name' must be 1 to 100 characters, or null")
        }
        if let url {
            guard url.utf8.count <= 2048, let parsed = URLComponents(string: url),
                  let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = parsed.host, !host.isEmpty else {
                throw MesaError.invalid("'url' must be an absolute http:// or https:// URL with a host, got '\(url.clipped)'")
            }
            guard parsed.user == nil, parsed.password == nil else {
                throw MesaError.invalid("'url' must not carry credentials (user:password@); the signature authenticates deliveries")
            }
        }
        if let events, events.isEmpty {
            throw MesaError.invalid("'events' must name at least one event; omit it to receive every event")
        }
    }
}
