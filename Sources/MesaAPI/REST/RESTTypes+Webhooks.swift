import Foundation
import Model

// MARK: Webhook targets (`/{org}/webhook-targets`, scope admin)

/// `{id, name|null, url, events, repo_ids|null, created_at, updated_at}`; create adds `secret`.
public struct RESTWebhookTarget: Codable, Sendable, Equatable {
    public var id: String
    public var name: String?
    public var url: String
    public var events: [String]
    public var repoIDs: [String]?
    public var createdAt: Date
    public var updatedAt: Date
    /// Only in the answer to create: shown once.
    public var secret: String?

    public init(_ target: WebhookTarget, secret: String? = nil) {
        id = target.id
        name = target.name
        url = target.url
        events = target.events.map(\.rawValue)
        repoIDs = target.repoIDs
        createdAt = target.createdAt
        updatedAt = target.updatedAt
        self.secret = secret
    }

    enum CodingKeys: String, CodingKey {
        case id, name, url, events, secret, repoIDs = "repo_ids", createdAt = "created_at", updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)  // null, not absent
        try c.encode(url, forKey: .url)
        try c.encode(events, forKey: .events)
        try c.encode(repoIDs, forKey: .repoIDs)  // null = every repo
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encodeIfPresent(secret, forKey: .secret)
    }
}

extension RESTWebhookTarget: RESTListed {
    public init(_ model: WebhookTarget) { self.init(model, secret: nil) }
    public static let listKey = "webhook_targets"
}

public typealias RESTWebhookTargetPage = RESTPage<RESTWebhookTarget>

/// `{url, name?, events?, repo_ids?}`
public struct RESTCreateWebhookTarget: Codable, Sendable, Equatable {
    public var url: String
    public var name: String?
    public var events: [String]?
    public var repoIDs: [String]?

    public init(url: String, name: String? = nil, events: [String]? = nil, repoIDs: [String]? = nil) {
        self.url = url
        self.name = name
        self.events = events
        self.repoIDs = repoIDs
    }

    enum CodingKeys: String, CodingKey { case url, name, events, repoIDs = "repo_ids" }
}

/// `{name?: str|null, url?, events?, repo_ids?: [str]|null}`: a given field replaces, an
/// absent one stays; `null` clears the name or makes the target org-wide.
public struct RESTUpdateWebhookTarget: Codable, Sendable, Equatable {
    public var name: String??
    public var url: String?
    public var events: [String]?
    public var repoIDs: [String]??

    public init(name: String?? = nil, url: String? = nil, events: [String]? = nil, repoIDs: [String]?? = nil) {
        self.name = name
        self.url = url
        self.events = events
        self.repoIDs = repoIDs
    }

    enum CodingKeys: String, CodingKey { case name, url, events, repoIDs = "repo_ids" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.name) { name = .some(try c.decodeNil(forKey: .name) ? nil : try c.decode(String.self, forKey: .name)) }
        url = try c.decodeIfPresent(String.self, forKey: .url)
        events = try c.decodeIfPresent([String].self, forKey: .events)
        if c.contains(.repoIDs) {
            repoIDs = .some(try c.decodeNil(forKey: .repoIDs) ? nil : try c.decode([String].self, forKey: .repoIDs))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let name { try c.encode(name, forKey: .name) }
        try c.encodeIfPresent(url, forKey: .url)
        try c.encodeIfPresent(events, forKey: .events)
        if let repoIDs { try c.encode(repoIDs, forKey: .repoIDs) }
    }
}

/// Event names as sent, checked against the known ones.
public func webhookEventTypes(_ names: [String]?) throws(MesaError) -> [WebhookEventType]? {
    guard let names else { return nil }
    var types: [WebhookEventType] = []
    for name in names {
        guard let type = WebhookEventType(rawValue: name) else {
            throw .invalid("unknown event '\(name.clipped)' in 'events'; known events: \(WebhookEventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if !types.contains(type) { types.append(type) }
    }
    return types
}

/// One row of `GET /{org}/webhook-targets/{id}/deliveries` (a mesa-server extension).
public struct RESTWebhookDelivery: Codable, Sendable, Equatable {
    public var eventID: String
    public var eventType: String
    public var repoID: String?
    public var occurredAt: Date
    /// pending | delivered | failed
    public var state: String
    public var attempts: Int
    public var statusCode: Int?
    public var error: String?
    public var lastAttemptAt: Date?
    public var nextAttemptAt: Date?
    public var finishedAt: Date?

    public init(_ delivery: WebhookDelivery) {
        eventID = delivery.eventID
        eventType = delivery.eventType.rawValue
        repoID = delivery.repoID
        occurredAt = delivery.occurredAt
        state = delivery.state.rawValue
        attempts = delivery.attempts
        statusCode = delivery.statusCode
        error = delivery.error
        lastAttemptAt = delivery.lastAttemptAt
        nextAttemptAt = delivery.nextAttemptAt
        finishedAt = delivery.finishedAt
    }

    enum CodingKeys: String, CodingKey {
        case state, attempts, error
        case eventID = "event_id", eventType = "event_type", repoID = "repo_id", occurredAt = "occurred_at"
        case statusCode = "status_code", lastAttemptAt = "last_attempt_at", nextAttemptAt = "next_attempt_at"
        case finishedAt = "finished_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(eventID, forKey: .eventID)
        try c.encode(eventType, forKey: .eventType)
        try c.encode(repoID, forKey: .repoID)
        try c.encode(occurredAt, forKey: .occurredAt)
        try c.encode(state, forKey: .state)
        try c.encode(attempts, forKey: .attempts)
        try c.encode(statusCode, forKey: .statusCode)
        try c.encode(error, forKey: .error)
        try c.encode(lastAttemptAt, forKey: .lastAttemptAt)
        try c.encode(nextAttemptAt, forKey: .nextAttemptAt)
        try c.encode(finishedAt, forKey: .finishedAt)
    }
}

extension RESTWebhookDelivery: RESTListed {
    public static let listKey = "deliveries"
}

public typealias RESTWebhookDeliveryPage = RESTPage<RESTWebhookDelivery>
