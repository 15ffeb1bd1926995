import Foundation
import Model

// Wire types of the Mesa REST API (reference: mesa-rest-api.md, API-key era, 0.47.3).
// Every type spells its snake_case keys explicitly (no key strategy, so tag
// dictionaries keep their keys) and is Codable in both directions: mesa-server
// encodes them, the HTTP backend decodes them.

/// Encoders and decoders for REST bodies: ISO-8601 dates, sorted keys.
public enum RESTCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

// MARK: Errors

/// `{"error": {"code", "message", "details"?}}`
public struct RESTErrorEnvelope: Codable, Sendable, Equatable {
    public struct Body: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public var details: RESTErrorDetails?

        public init(code: String, message: String, details: RESTErrorDetails? = nil) {
            self.code = code
            self.message = message
            self.details = details
        }
    }

    public var error: Body

    public init(code: String, message: String, details: RESTErrorDetails? = nil) {
        error = Body(code: code, message: message, details: details)
    }

    public init(_ error: MesaError) {
        self.init(code: error.name, message: error.message,
                  details: error.paths.isEmpty ? nil : RESTErrorDetails(conflictPaths: error.paths))
    }
}

/// The known members of `details`; free-form on the wire.
public struct RESTErrorDetails: Codable, Sendable, Equatable {
    public var conflictPaths: [String]?

    public init(conflictPaths: [String]? = nil) { self.conflictPaths = conflictPaths }

    enum CodingKeys: String, CodingKey { case conflictPaths = "conflict_paths" }
}

/// `{"success": true}`
public struct RESTSuccess: Codable, Sendable, Equatable {
    public var success: Bool
    public init(success: Bool = true) { self.success = success }
}

// MARK: Identity and org

public struct RESTOrgRef: Codable, Sendable, Equatable {
    public var id: String
    public var slug: String
    public var name: String
    public init(id: String, slug: String, name: String) {
        self.id = id
        self.slug = slug
        self.name = name
    }
}

/// `GET /whoami`
public struct RESTWhoami: Codable, Sendable, Equatable {
    public var org: RESTOrgRef
    public var keyID: String?
    public var keyName: String?
    public var scopes: [String]
    public var repoIDs: [String]?

    public init(org: RESTOrgRef, keyID: String?, keyName: String?, scopes: [String], repoIDs: [String]?) {
        self.org = org
        self.keyID = keyID
        self.keyName = keyName
        self.scopes = scopes
        self.repoIDs = repoIDs
    }

    public init(_ identity: Identity) {
        self.init(org: RESTOrgRef(id: identity.org.id, slug: identity.org.slug, name: identity.org.name),
                  keyID: identity.keyID, keyName: identity.keyName, scopes: identity.scopes.map(\.rawValue),
                  repoIDs: identity.repoIDs)
    }

    /// The identity (the REST shape has no org creation time; unknown scopes are dropped).
    public var identity: Identity {
        Identity(org: Org(id: org.id, slug: org.slug, name: org.name, createdAt: Date(timeIntervalSince1970: 0)),
                 keyID: keyID, keyName: keyName, scopes: scopes.compactMap(Scope.init(rawValue:)), repoIDs: repoIDs)
    }

    enum CodingKeys: String, CodingKey {
        case org, scopes
        case keyID = "key_id", keyName = "key_name", repoIDs = "repo_ids"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(org, forKey: .org)
        try c.encode(keyID, forKey: .keyID)  // null, not absent
        try c.encode(keyName, forKey: .keyName)
        try c.encode(scopes, forKey: .scopes)
        try c.encodeIfPresent(repoIDs, forKey: .repoIDs)
    }
}

/// `GET /{org}`
public struct RESTOrgInfo: Codable, Sendable, Equatable {
    public var createdAt: Date
    public var numRepos: Int
    public init(createdAt: Date, numRepos: Int) {
        self.createdAt = createdAt
        self.numRepos = numRepos
    }
    enum CodingKeys: String, CodingKey { case createdAt = "created_at", numRepos = "num_repos" }
}

// MARK: Repos

public struct RESTRepo: Codable, Sendable, Equatable {
    public var id: String
    public var org: String
    public var name: String
    public var defaultBookmark: String
    public var headChangeID: String
    public var upstream: RESTUpstream?
    public var createdAt: Date
    public var tags: [String: String]

    public init(id: String, org: String, name: String, defaultBookmark: String, headChangeID: String,
                upstream: RESTUpstream? = nil, createdAt: Date, tags: [String: String]) {
        self.id = id
        self.org = org
        self.name = name
        self.defaultBookmark = defaultBookmark
        self.headChangeID = headChangeID
        self.upstream = upstream
        self.createdAt = createdAt
        self.tags = tags
    }

    public init(_ repo: Repo) {
        self.init(id: repo.id, org: repo.org, name: repo.name, defaultBookmark: repo.defaultBookmark,
                  headChangeID: repo.headChangeID.description, upstream: repo.upstream.map(RESTUpstream.init),
                  createdAt: repo.createdAt, tags: repo.tags)
    }

    public func repo() throws(MesaError) -> Repo {
        Repo(id: id, org: org, name: name, defaultBookmark: defaultBookmark, headChangeID: try .sent(headChangeID),
             createdAt: createdAt, tags: tags, upstream: upstream?.upstream)
    }

    enum CodingKeys: String, CodingKey {
        case id, org, name, upstream, tags
        case defaultBookmark = "default_bookmark", headChangeID = "head_change_id", createdAt = "created_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(org, forKey: .org)
        try c.encode(name, forKey: .name)
        try c.encode(defaultBookmark, forKey: .defaultBookmark)
        try c.encode(headChangeID, forKey: .headChangeID)
        try c.encode(upstream, forKey: .upstream)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(tags, forKey: .tags)
    }
}

/// `POST /{org}/repos`
public struct RESTCreateRepo: Codable, Sendable, Equatable {
    public var name: String?
    public var defaultBookmark: String?
    public var tags: [String: String]?
    public var upstream: RESTUpstreamInput?

    public init(name: String? = nil, defaultBookmark: String? = nil, tags: [String: String]? = nil,
                upstream: RESTUpstreamInput? = nil) {
        self.name = name
        self.defaultBookmark = defaultBookmark
        self.tags = tags
        self.upstream = upstream
    }

    enum CodingKeys: String, CodingKey { case name, tags, upstream, defaultBookmark = "default_bookmark" }
}

/// `PATCH /{org}/{repo}`; a nil tag value removes the tag. `upstream`: absent leaves it,
/// `null` removes it, an object sets it (see `RESTUpstreamInput` for its `auth`).
public struct RESTUpdateRepo: Codable, Sendable, Equatable {
    public var name: String?
    public var defaultBookmark: String?
    public var tags: [String: String?]?
    public var upstream: RESTUpstreamInput?
    public var upstreamGiven: Bool

    public init(name: String? = nil, defaultBookmark: String? = nil, tags: [String: String?]? = nil,
                upstream: RESTUpstreamInput? = nil, upstreamGiven: Bool = false) {
        self.name = name
        self.defaultBookmark = defaultBookmark
        self.tags = tags
        self.upstream = upstream
        self.upstreamGiven = upstreamGiven || upstream != nil
    }

    enum CodingKeys: String, CodingKey { case name, tags, upstream, defaultBookmark = "default_bookmark" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        defaultBookmark = try c.decodeIfPresent(String.self, forKey: .defaultBookmark)
        tags = try c.decodeIfPresent([String: String?].self, forKey: .tags)
        upstreamGiven = c.contains(.upstream)
        upstream = try c.decodeIfPresent(RESTUpstreamInput.self, forKey: .upstream)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encodeIfPresent(defaultBookmark, forKey: .defaultBookmark)
        try c.encodeIfPresent(tags, forKey: .tags)
        if upstreamGiven { try c.encode(upstream, forKey: .upstream) }
    }

    /// What the body asks of the upstream: nil leaves it alone.
    public func upstreamUpdate() throws(MesaError) -> UpstreamUpdate? {
        guard upstreamGiven else { return nil }
        return try upstream?.update() ?? .remove
    }
}

// MARK: Pagination envelopes

/// An item of a listing: the model value it renders, and the key its page holds the
/// list under.
public protocol RESTListed: Codable, Sendable, Equatable {
    associatedtype Model: Sendable
    static var listKey: String { get }
    init(_ model: Model)
}

/// `{"<listKey>": [...], "next_cursor": …, "has_more": …}`
public struct RESTPage<Item: RESTListed>: Codable, Sendable, Equatable {
    public var items: [Item]
    public var nextCursor: String?
    public var hasMore: Bool

    public init(items: [Item], nextCursor: String?, hasMore: Bool) {
        self.items = items
        self.nextCursor = nextCursor
        self.hasMore = hasMore
    }

    public init(_ page: Page<Item.Model>) {
        self.init(items: page.items.map(Item.init), nextCursor: page.nextCursor, hasMore: page.hasMore)
    }

    /// The model page; a cursor counts only while the server says there is more.
    public func page<Value>(_ value: (Item) throws -> Value) rethrows -> Page<Value> {
        Page(items: try items.map(value), nextCursor: hasMore ? nextCursor : nil)
    }

    struct Key: CodingKey {
        var stringValue: String
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        items = try c.decode([Item].self, forKey: Key(Item.listKey))
        nextCursor = try c.decodeIfPresent(String.self, forKey: Key("next_cursor"))
        hasMore = try c.decode(Bool.self, forKey: Key("has_more"))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(items, forKey: Key(Item.listKey))
        try c.encode(nextCursor, forKey: Key("next_cursor"))  // null, not absent
        try c.encode(hasMore, forKey: Key("has_more"))
    }
}

public typealias RESTRepoPage = RESTPage<RESTRepo>
public typealias RESTChangePage = RESTPage<RESTChange>
public typealias RESTBookmarkPage = RESTPage<RESTBookmark>
public typealias RESTKeyPage = RESTPage<RESTKeySummary>

extension RESTRepo: RESTListed { public static let listKey = "repos" }
extension RESTChange: RESTListed {
    public typealias Model = Change
    public static let listKey = "changes"
}
extension RESTBookmark: RESTListed {
    public typealias Model = Bookmark
    public static let listKey = "bookmarks"
}
extension RESTKeySummary: RESTListed { public static let listKey = "api_keys" }

extension RESTPage where Item == RESTRepo { public var repos: [RESTRepo] { items } }
extension RESTPage where Item == RESTChange { public var changes: [RESTChange] { items } }
extension RESTPage where Item == RESTBookmark { public var bookmarks: [RESTBookmark] { items } }
extension RESTPage where Item == RESTKeySummary { public var apiKeys: [RESTKeySummary] { items } }

// MARK: Changes

public struct RESTChange: Codable, Sendable, Equatable {
    public var id: String
    public var currentCommitOID: String
    public var isConflicted: Bool
    public var message: String
    public var author: Signature?
    public var committer: Signature
    public var parents: [String]
    public var createdAt: Date
    public var updatedAt: Date
    /// Only on `GET /{org}/{repo}/changes/{id}`.
    public var files: [String]?
    public var conflicts: [String]?

    public init(id: String, currentCommitOID: String, isConflicted: Bool, message: String, author: Signature?,
                committer: Signature, parents: [String], createdAt: Date, updatedAt: Date,
                files: [String]? = nil, conflicts: [String]? = nil) {
        self.id = id
        self.currentCommitOID = currentCommitOID
        self.isConflicted = isConflicted
        self.message = message
        self.author = author
        self.committer = committer
        self.parents = parents
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.files = files
        self.conflicts = conflicts
    }

    public init(_ change: Change) {
        self.init(id: change.id.description, currentCommitOID: change.commitOID, isConflicted: change.isConflicted,
                  message: change.message, author: change.authors.first,
                  committer: change.committer, parents: change.parents.map(\.description),
                  createdAt: change.createdAt, updatedAt: change.updatedAt)
    }

    public init(_ detail: ChangeDetail) {
        self.init(detail.change)
        files = detail.files
        conflicts = detail.change.conflicts
    }

    public func change() throws -> Change {
        Change(id: try .sent(id), commitOID: currentCommitOID, parents: try parents.map(ChangeID.sent), message: message,
               authors: author.map { [$0] } ?? [], committer: committer, createdAt: createdAt, updatedAt: updatedAt,
               conflicts: conflicts ?? [])
    }

    enum CodingKeys: String, CodingKey {
        case id, message, author, committer, parents, files, conflicts
        case currentCommitOID = "current_commit_oid", isConflicted = "is_conflicted"
        case createdAt = "created_at", updatedAt = "updated_at"
    }
}

/// One file operation of a change create or patch.
public struct RESTFileOp: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case upsert, delete }

    public var path: String
    /// Base64; an upsert carries either this or `blobOID`.
    public var content: String?
    public var encoding: String?
    public var action: Action?
    public var mode: String?
    /// mesa-server extension: the git id of a blob uploaded with `POST /{org}/{repo}/blobs`
    /// (or already in the repo), instead of inline `content`.
    public var blobOID: String?

    public init(path: String, content: String? = nil, encoding: String? = nil, action: Action? = nil, mode: String? = nil,
                blobOID: String? = nil) {
        self.path = path
        self.content = content
        self.encoding = encoding
        self.action = action
        self.mode = mode
        self.blobOID = blobOID
    }

    enum CodingKeys: String, CodingKey {
        case path, content, encoding, action, mode
        case blobOID = "blob_oid"
    }

    public static func upsert(_ path: String, _ bytes: [UInt8], mode: FileMode? = nil) -> RESTFileOp {
        RESTFileOp(path: path, content: Data(bytes).base64EncodedString(), action: .upsert, mode: mode?.rawValue)
    }

    public static func upsert(_ path: String, blobOID: String, mode: FileMode? = nil) -> RESTFileOp {
        RESTFileOp(path: path, action: .upsert, mode: mode?.rawValue, blobOID: blobOID)
    }

    public static func delete(_ path: String) -> RESTFileOp { RESTFileOp(path: path, action: .delete) }

    public init(_ operation: FileOperation) {
        self = switch operation {
        case .upsert(let path, let content, let mode): .upsert(path, content, mode: mode)
        case .upsertBlob(let path, let oid, let mode): .upsert(path, blobOID: oid, mode: mode)
        case .delete(let path): .delete(path)
        }
    }

    /// The store operation, validating encoding, base64 and mode.
    public func operation() throws(MesaError) -> FileOperation {
        switch action ?? .upsert {
        case .delete:
            return .delete(path: path)
        case .upsert:
            var fileMode = FileMode.regular
            if let mode { fileMode = try FileMode(parsing: mode) }
            if let blobOID {
                guard content == nil else {
                    throw .invalid("file '\(path.prefix(200))': give either 'content' or 'blob_oid', not both")
                }
                let oid = blobOID.lowercased()
                guard oid.utf8.count == 40, oid.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                    throw .invalid("file '\(path.prefix(200))': 'blob_oid' must be 40 hex characters (a git object id), got '\(blobOID.prefix(50))'")
                }
                return .upsertBlob(path: path, oid: oid, mode: fileMode)
            }
            if let encoding, encoding != "base64" {
                throw .invalid("file '\(path.prefix(200))': unsupported encoding '\(encoding.prefix(20))'; only base64 is supported")
            }
            guard let content else { throw .invalid("file '\(path.prefix(200))': 'content' (base64) or 'blob_oid' is required for an upsert") }
            guard let data = Data(base64Encoded: content, options: [.ignoreUnknownCharacters]) else {
                throw .invalid("file '\(path.prefix(200))': 'content' is not valid base64")
            }
            return .upsert(path: path, content: [UInt8](data), mode: fileMode)
        }
    }
}

/// mesa-server extension: the answer to `POST /{org}/{repo}/blobs`.
public struct RESTBlobCreated: Codable, Sendable, Equatable {
    public var oid: String
    public var size: Int

    public init(oid: String, size: Int) {
        self.oid = oid
        self.size = size
    }
}

/// `POST /{org}/{repo}/changes`
public struct RESTCreateChange: Codable, Sendable, Equatable {
    public var baseChangeID: String
    public var message: String?
    public var author: Signature?
    public var committer: Signature?
    public var files: [RESTFileOp]?

    public init(baseChangeID: String, message: String? = nil, author: Signature? = nil, committer: Signature? = nil,
                files: [RESTFileOp]? = nil) {
        self.baseChangeID = baseChangeID
        self.message = message
        self.author = author
        self.committer = committer
        self.files = files
    }

    enum CodingKeys: String, CodingKey { case message, author, committer, files, baseChangeID = "base_change_id" }
}

// MARK: Bookmarks

public struct RESTBookmark: Codable, Sendable, Equatable {
    public var name: String
    public var changeID: String
    public var isDefault: Bool
    /// Only on a move: where the bookmark was before.
    public var fromChangeID: String?

    public init(name: String, changeID: String, isDefault: Bool, fromChangeID: String? = nil) {
        self.name = name
        self.changeID = changeID
        self.isDefault = isDefault
        self.fromChangeID = fromChangeID
    }

    public init(_ bookmark: Bookmark) {
        self.init(name: bookmark.name, changeID: bookmark.changeID.description, isDefault: bookmark.isDefault)
    }

    public init(_ move: BookmarkMove) {
        self.init(move.bookmark)
        fromChangeID = move.from.description
    }

    /// The model bookmark (the REST shape has no commit id).
    public func bookmark() throws(MesaError) -> Bookmark {
        Bookmark(name: name, changeID: try .sent(changeID), commitOID: nil, isDefault: isDefault)
    }

    enum CodingKeys: String, CodingKey {
        case name, changeID = "change_id", isDefault = "is_default", fromChangeID = "from_change_id"
    }
}

/// `POST /{org}/{repo}/bookmarks`
public struct RESTCreateBookmark: Codable, Sendable, Equatable {
    public var name: String
    public var changeID: String
    public init(name: String, changeID: String) {
        self.name = name
        self.changeID = changeID
    }
    enum CodingKeys: String, CodingKey { case name, changeID = "change_id" }
}

/// `PATCH /{org}/{repo}/bookmarks/{bookmark}`
public struct RESTMoveBookmark: Codable, Sendable, Equatable {
    public var changeID: String
    public var allowBackwards: Bool?
    /// mesa-server extension: move only if the bookmark is still at this change
    /// (compare-and-swap; 409 `CONFLICT` otherwise). Servers without it ignore the field.
    public var expectedChangeID: String?
    public init(changeID: String, allowBackwards: Bool? = nil, expectedChangeID: String? = nil) {
        self.changeID = changeID
        self.allowBackwards = allowBackwards
        self.expectedChangeID = expectedChangeID
    }
    enum CodingKeys: String, CodingKey {
        case changeID = "change_id", allowBackwards = "allow_backwards", expectedChangeID = "expected_change_id"
    }
}

// MARK: API keys

/// `POST /{org}/api-keys`
public struct RESTCreateKey: Codable, Sendable, Equatable {
    public var name: String?
    public var scopes: [String]?
    public var repoIDs: [String]?
    public var expiresInSeconds: Int?
    public var tags: [String: String]?

    public init(name: String? = nil, scopes: [String]? = nil, repoIDs: [String]? = nil, expiresInSeconds: Int? = nil,
                tags: [String: String]? = nil) {
        self.name = name
        self.scopes = scopes
        self.repoIDs = repoIDs
        self.expiresInSeconds = expiresInSeconds
        self.tags = tags
    }

    enum CodingKeys: String, CodingKey {
        case name, scopes, tags, repoIDs = "repo_ids", expiresInSeconds = "expires_in_seconds"
    }

    public init(_ request: KeyRequest) {
        self.init(name: request.name, scopes: request.scopes?.map(\.rawValue), repoIDs: request.repoIDs,
                  expiresInSeconds: request.expiresInSeconds, tags: request.tags.isEmpty ? nil : request.tags)
    }

    /// The backend request, validating scope names.
    public func request() throws(MesaError) -> KeyRequest {
        var parsed: [Scope]?
        if let scopes {
            parsed = try scopes.map { (text: String) throws(MesaError) -> Scope in
                guard let scope = Scope(rawValue: text) else {
                    throw .invalid("unknown scope '\(text.prefix(40))': use read, write or admin")
                }
                return scope
            }
        }
        return KeyRequest(name: name, scopes: parsed, repoIDs: repoIDs, expiresInSeconds: expiresInSeconds, tags: tags ?? [:])
    }
}

/// The 201 answer of a key create: the only time the secret is shown.
public struct RESTCreatedKey: Codable, Sendable, Equatable {
    public var id: String
    public var key: String
    public var name: String?
    public var scopes: [String]
    public var repoIDs: [String]?
    public var tags: [String: String]
    public var createdAt: Date

    public init(id: String, key: String, name: String?, scopes: [String], repoIDs: [String]?, tags: [String: String],
                createdAt: Date) {
        self.id = id
        self.key = key
        self.name = name
        self.scopes = scopes
        self.repoIDs = repoIDs
        self.tags = tags
        self.createdAt = createdAt
    }

    public init(_ created: CreatedAPIKey) {
        let k = created.key
        self.init(id: k.id, key: created.secret, name: k.name, scopes: k.scopes.map(\.rawValue), repoIDs: k.repoIDs,
                  tags: k.tags, createdAt: k.createdAt)
    }

    /// The created key of `org`; the answer has no expiry, so it is computed from the request's lifetime.
    public func created(org: String, expiresInSeconds: Int?) -> CreatedAPIKey {
        CreatedAPIKey(key: APIKey(id: id, org: org, name: name, scopes: scopes.compactMap(Scope.init(rawValue:)),
                                  repoIDs: repoIDs, tags: tags, createdAt: createdAt,
                                  expiresAt: expiresInSeconds.map { createdAt.addingTimeInterval(TimeInterval($0)) },
                                  revokedAt: nil, lastUsedAt: nil),
                      secret: key)
    }

    enum CodingKeys: String, CodingKey { case id, key, name, scopes, tags, repoIDs = "repo_ids", createdAt = "created_at" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(key, forKey: .key)
        try c.encode(name, forKey: .name)
        try c.encode(scopes, forKey: .scopes)
        try c.encode(repoIDs, forKey: .repoIDs)
        try c.encode(tags, forKey: .tags)
        try c.encode(createdAt, forKey: .createdAt)
    }
}

public struct RESTKeySummary: Codable, Sendable, Equatable {
    public var id: String
    public var name: String?
    public var scopes: [String]
    public var repoIDs: [String]?
    public var tags: [String: String]
    public var lastUsedAt: Date?
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var createdAt: Date

    public init(id: String, name: String?, scopes: [String], repoIDs: [String]?, tags: [String: String], lastUsedAt: Date?,
                expiresAt: Date?, revokedAt: Date?, createdAt: Date) {
        self.id = id
        self.name = name
        self.scopes = scopes
        self.repoIDs = repoIDs
        self.tags = tags
        self.lastUsedAt = lastUsedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.createdAt = createdAt
    }

    public init(_ k: APIKey) {
        self.init(id: k.id, name: k.name, scopes: k.scopes.map(\.rawValue), repoIDs: k.repoIDs, tags: k.tags,
                  lastUsedAt: k.lastUsedAt, expiresAt: k.expiresAt, revokedAt: k.revokedAt, createdAt: k.createdAt)
    }

    /// The model key (the REST shape does not repeat the org; unknown scopes are dropped).
    public func apiKey(org: String) -> APIKey {
        APIKey(id: id, org: org, name: name, scopes: scopes.compactMap(Scope.init(rawValue:)), repoIDs: repoIDs, tags: tags,
               createdAt: createdAt, expiresAt: expiresAt, revokedAt: revokedAt, lastUsedAt: lastUsedAt)
    }

    enum CodingKeys: String, CodingKey {
        case id, name, scopes, tags, metadata
        case repoIDs = "repo_ids", lastUsedAt = "last_used_at", expiresAt = "expires_at", revokedAt = "revoked_at"
        case createdAt = "created_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), name: try c.decodeIfPresent(String.self, forKey: .name),
                  scopes: try c.decode([String].self, forKey: .scopes), repoIDs: try c.decodeIfPresent([String].self, forKey: .repoIDs),
                  tags: try c.decodeIfPresent([String: String].self, forKey: .tags) ?? [:],
                  lastUsedAt: try c.decodeIfPresent(Date.self, forKey: .lastUsedAt),
                  expiresAt: try c.decodeIfPresent(Date.self, forKey: .expiresAt),
                  revokedAt: try c.decodeIfPresent(Date.self, forKey: .revokedAt),
                  createdAt: try c.decode(Date.self, forKey: .createdAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(scopes, forKey: .scopes)
        try c.encode(repoIDs, forKey: .repoIDs)
        try c.encodeNil(forKey: .metadata)
        try c.encode(tags, forKey: .tags)
        try c.encode(lastUsedAt, forKey: .lastUsedAt)
        try c.encode(expiresAt, forKey: .expiresAt)
        try c.encode(revokedAt, forKey: .revokedAt)
        try c.encode(createdAt, forKey: .createdAt)
    }
}

extension ChangeID {
    /// A change id a server sent: a malformed one is the server's bug, not the caller's.
    static func sent(_ text: String) throws(MesaError) -> ChangeID {
        do { return try ChangeID(text) } catch {
            throw .internal("the server sent an invalid change id '\(text.prefix(64))'")
        }
    }
}
