import Foundation
import Model

/// An event waiting for one target: what the delivery worker sends next on a lane.
public struct PendingWebhookDelivery: Sendable {
    public let targetID: String
    public let url: String
    public let secret: String
    public let eventSeq: Int
    public let eventID: String
    public let type: WebhookEventType
    public let occurredAt: Date
    public let org: Org
    public let repoID: String?
    /// The repo's name when the event happened (a deleted repo has no row any more).
    public let repoName: String?
    /// The event's `data` object, JSON text.
    public let data: String
    /// Attempts made before this one.
    public let attempts: Int
}

extension Store {
    /// Records an event in the outbox, in its own transaction, for code outside the store's
    /// own write paths (e.g. sync progress). `data` is the envelope's `data` object;
    /// `repoID` nil for an org-level event.
    public func recordEvent(org slug: String, repoID: String?, type: WebhookEventType, data: some Encodable) throws {
        try withDatabase { db in
            try db.transaction {
                let orgID = try orgID(slug, db)
                let repo = try repoID.map { try repoRow(id: $0, db) }
                try recordEvent(db, orgID: orgID, repoID: repo?.id, repoName: repo?.name, type: type, data: data)
            }
        }
    }

    /// Records an event inside the caller's transaction, so it exists exactly when the
    /// change that caused it does, and queues a delivery for every target it matches.
    /// An event no target wants is not written at all (mesad's embedded store, which
    /// delivers nothing, keeps no outbox).
    func recordEvent(_ db: SQLiteDatabase, orgID: String, repoID: String?, repoName: String?, type: WebhookEventType,
                     data: some Encodable) throws {
        let targets = try db.query("SELECT \(Self.webhookColumns) FROM webhook_targets t WHERE t.org_id = ?", [.text(orgID)])
            .map(Self.webhookTarget).filter { $0.matches(type, repoID: repoID) }
        guard !targets.isEmpty else { return }
        let lane = repoID ?? ""
        let sequence = (try db.queryOne("SELECT last FROM webhook_sequences WHERE repo_id = ?", [.text(lane)])?.int(0) ?? 0) + 1
        try db.query("INSERT OR REPLACE INTO webhook_sequences(repo_id, last) VALUES (?, ?)", [.text(lane), .int(sequence)])
        let now = Self.now().timeIntervalSince1970
        try db.query("""
            INSERT INTO webhook_events(id, org_id, repo_id, repo_name, repo_seq, type, occurred_at, data)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(OpaqueID.make("evt")), .text(orgID), .optionalText(repoID), .optionalText(repoName), .int(sequence),
                  .text(type.rawValue), .double(now), .text(WebhookPayload.json(data))])
        let seq = try db.queryOne("SELECT last_insert_rowid()")?.int(0) ?? 0
        for target in targets {
            try db.query("INSERT INTO webhook_deliveries(target_id, event_seq, lane, next_attempt_at) VALUES (?, ?, ?, ?)",
                         [.text(target.id), .int(seq), .text(lane), .double(now)])
        }
    }

    /// The oldest pending delivery of every (target, lane) whose next attempt is due at
    /// `now`; a lane whose head waits for a retry offers nothing, so order holds.
    /// Also returns when the earliest not-yet-due head is due (nil: none is waiting).
    public func dueWebhookDeliveries(now: Date = Date(), limit: Int = 64) throws -> (due: [PendingWebhookDelivery], nextDue: Date?) {
        try withDatabase { db in
            let heads = try db.query("""
                SELECT d.target_id, d.event_seq, d.attempts, d.next_attempt_at, t.url, t.secret,
                       e.id, e.type, e.occurred_at, e.repo_id, e.repo_name, e.data, o.id, o.slug, o.name, o.created_at
                FROM (SELECT target_id, lane, MIN(event_seq) AS head FROM webhook_deliveries WHERE state = 'pending'
                      GROUP BY target_id, lane) h
                JOIN webhook_deliveries d ON d.target_id = h.target_id AND d.event_seq = h.head
                JOIN webhook_targets t ON t.id = d.target_id
                JOIN webhook_events e ON e.seq = d.event_seq
                JOIN orgs o ON o.id = e.org_id
                ORDER BY d.next_attempt_at
                """)
            var due: [PendingWebhookDelivery] = []
            var nextDue: Date?
            for row in heads {
                let at = Date(timeIntervalSince1970: row.double(3))
                if at > now {
                    nextDue = min(nextDue ?? at, at)
                    continue
                }
                guard due.count < limit else { nextDue = now; break }
                due.append(PendingWebhookDelivery(
                    targetID: row.string(0), url: row.string(4), secret: row.string(5), eventSeq: row.int(1),
                    eventID: row.string(6), type: WebhookEventType(rawValue: row.string(7)) ?? .push,
                    occurredAt: Date(timeIntervalSince1970: row.double(8)),
                    org: Org(id: row.string(12), slug: row.string(13), name: row.string(14),
                             createdAt: Date(timeIntervalSince1970: row.double(15))),
                    repoID: row.optionalString(9), repoName: row.optionalString(10), data: row.string(11),
                    attempts: row.int(2)))
            }
            return (due, nextDue)
        }
    }

    /// True while the delivery is pending with exactly `attempts` attempts recorded: a
    /// lane head read before another attempt finished is stale and must not be sent again.
    public func isWebhookDeliveryCurrent(targetID: String, eventSeq: Int, attempts: Int) throws -> Bool {
        try withDatabase { db in
            try db.queryOne("""
                SELECT 1 FROM webhook_deliveries WHERE target_id = ? AND event_seq = ? AND state = 'pending' AND attempts = ?
                """, [.text(targetID), .int(eventSeq), .int(attempts)]) != nil
        }
    }

    /// What one attempt came to.
    public enum WebhookAttemptOutcome: Sendable {
        case delivered(statusCode: Int)
        /// `retryAt` nil: the last attempt, give up.
        case failed(statusCode: Int?, error: String, retryAt: Date?)
    }

    /// Writes an attempt into the delivery log. A delivery whose target was deleted
    /// meanwhile is simply gone.
    public func recordWebhookAttempt(targetID: String, eventSeq: Int, at time: Date = Date(), _ outcome: WebhookAttemptOutcome) throws {
        let now = time.timeIntervalSince1970
        try withDatabase { db in
            switch outcome {
            case .delivered(let status):
                try db.query("""
                    UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, status_code = ?, error = NULL,
                    last_attempt_at = ?, finished_at = ? WHERE target_id = ? AND event_seq = ? AND state = 'pending'
                    """, [.int(status), .double(now), .double(now), .text(targetID), .int(eventSeq)])
            case .failed(let status, let error, let retryAt):
                try db.query("""
                    UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, status_code = ?, error = ?,
                    last_attempt_at = ?, next_attempt_at = ?, finished_at = ? WHERE target_id = ? AND event_seq = ? AND state = 'pending'
                    """, [.text(retryAt == nil ? "failed" : "pending"), status.map { .int($0) } ?? .null, .text(String(error.prefix(500))),
                          .double(now), .double(retryAt?.timeIntervalSince1970 ?? now),
                          retryAt == nil ? .double(now) : .null, .text(targetID), .int(eventSeq)])
            }
        }
    }

    /// Forgets finished deliveries older than `before` and events no delivery needs any
    /// more. Pending deliveries and their events always stay.
    public func pruneWebhookLog(before: Date) throws {
        try withDatabase { db in
            try db.transaction {
                try db.query("DELETE FROM webhook_deliveries WHERE state != 'pending' AND finished_at < ?",
                             [.double(before.timeIntervalSince1970)])
                try db.query("""
                    DELETE FROM webhook_events WHERE occurred_at < ?
                    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = webhook_events.seq)
                    """, [.double(before.timeIntervalSince1970)])
            }
        }
    }
}
