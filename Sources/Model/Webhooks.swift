import Foundation

/// The events a webhook target can subscribe to (Mesa's names, mesa-rest-api §9).
public enum WebhookEventType: String, CaseIterable, Sendable, Codable {
    case repoCreated = "repo.created"
    case repoUpdated = "repo.updated"
    case repoDeleted = "repo.deleted"
    case bookmarkCreated = "bookmark.created"
    case bookmarkDeleted = "bookmark.deleted"
    case bookmarkMoved = "bookmark.moved"
    case bookmarkMerged = "bookmark.merged"
    case changeCreated = "change.created"
    case changeEvolved = "change.evolved"
    case push
    case syncQueued = "sync.queued"
    case syncInProgress = "sync.in_progress"
    case syncCompleted = "sync.completed"
    case syncFailed = "sync.failed"
}

/// A URL that receives signed event deliveries. The secret is never part of it: it is
/// returned once, by create.
public struct WebhookTarget: Equatable, Sendable {
    public let id: String
    public let name: String?
    public let url: String
    public let events: [WebhookEventType]
    /// nil: every repo of the org.
    public let repoIDs: [String]?
    public let createdAt: Date
    public let updatedAt: Date

    public init(id: String, name: String?, url: String, events: [WebhookEventType], repoIDs: [String]?,
                createdAt: Date, updatedAt: Date) {
        self.id = id
        self.name = name
        self.url = url
        self.events = events
        self.repoIDs = repoIDs
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// True when an event of `type` about `repoID` (nil: not about a repo) goes to this target.
    public func matches(_ type: WebhookEventType, repoID: String?) -> Bool {
        guard events.contains(type) else { return false }
        guard let repoIDs else { return true }
        return repoID.map(repoIDs.contains) ?? false
    }
}

public struct CreatedWebhookTarget: Sendable {
    public let target: WebhookTarget
    /// `whsec_` + 64 hex characters: the HMAC key of the signatures; shown only here.
    public let secret: String

    public init(target: WebhookTarget, secret: String) {
        self.target = target
        self.secret = secret
    }
}

/// One event's delivery to one target: the delivery log's row.
public struct WebhookDelivery: Equatable, Sendable {
    public enum State: String, Sendable, Codable {
        /// Not yet answered with 2xx; retried with backoff.
        case pending
        case delivered
        /// Given up after the last allowed attempt.
        case failed
    }

    public let eventID: String
    public let eventType: WebhookEventType
    public let repoID: String?
    public let occurredAt: Date
    public let state: State
    public let attempts: Int
    /// The HTTP status of the last attempt; nil when it got no answer (or none was made).
    public let statusCode: Int?
    /// Why the last attempt failed; nil after a success.
    public let error: String?
    public let lastAttemptAt: Date?
    public let nextAttemptAt: Date?
    public let finishedAt: Date?

    public init(eventID: String, eventType: WebhookEventType, repoID: String?, occurredAt: Date, state: State,
                attempts: Int, statusCode: Int?, error: String?, lastAttemptAt: Date?, nextAttemptAt: Date?,
                finishedAt: Date?) {
        self.eventID = eventID
        self.eventType = eventType
        self.repoID = repoID
        self.occurredAt = occurredAt
        self.state = state
        self.attempts = attempts
        self.statusCode = statusCode
        self.error = error
        self.lastAttemptAt = lastAttemptAt
        self.nextAttemptAt = nextAttemptAt
        self.finishedAt = finishedAt
    }
}
