import Foundation

public struct Org: Equatable, Sendable {
    public let id: String
    public let slug: String
    public let name: String
    public let createdAt: Date

    public init(id: String, slug: String, name: String, createdAt: Date) {
        self.id = id
        self.slug = slug
        self.name = name
        self.createdAt = createdAt
    }
}

/// JSON-RPC's shape (`whoami`): camelCase keys, `createdAt` as a `WireTime` string.
extension Org: Codable {
    private enum CodingKeys: String, CodingKey { case id, slug, name, createdAt }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), slug: try c.decode(String.self, forKey: .slug),
                  name: try c.decode(String.self, forKey: .name), createdAt: try WireTime.decode(c, .createdAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(slug, forKey: .slug)
        try c.encode(name, forKey: .name)
        try c.encode(WireTime.string(createdAt), forKey: .createdAt)
    }
}

/// Times on the JSON-RPC wire: ISO-8601 in UTC with milliseconds.
public enum WireTime {
    public static func string(_ date: Date) -> String { formatter().string(from: date) }
    public static func date(_ text: String) -> Date? { formatter().date(from: text) }

    /// The time under `key`, a clear decoding error when it is not one.
    static func decode<Key: CodingKey>(_ c: KeyedDecodingContainer<Key>, _ key: Key) throws -> Date {
        let time = try c.decode(String.self, forKey: key)
        guard let date = date(time) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not an ISO-8601 time: \(time)")
        }
        return date
    }

    private static func formatter() -> ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}

public struct Repo: Equatable, Sendable {
    public let id: String
    public let org: String
    public let name: String
    public let defaultBookmark: String
    /// The change at the default bookmark, or the virtual root for an empty repo.
    public let headChangeID: ChangeID
    public let createdAt: Date
    public let tags: [String: String]
    /// The git upstream, nil when the repo has none.
    public let upstream: Upstream?

    public init(id: String, org: String, name: String, defaultBookmark: String, headChangeID: ChangeID, createdAt: Date,
                tags: [String: String], upstream: Upstream? = nil) {
        self.upstream = upstream
        self.id = id
        self.org = org
        self.name = name
        self.defaultBookmark = defaultBookmark
        self.headChangeID = headChangeID
        self.createdAt = createdAt
        self.tags = tags
    }
}

/// JSON-RPC's shape (`listRepos`, `getRepo`, `createRepo`): `headChangeId`, `createdAt` as
/// a `WireTime` string.
extension Repo: Codable {
    private enum CodingKeys: String, CodingKey { case id, org, name, defaultBookmark, headChangeId, createdAt, tags, upstream }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), org: try c.decode(String.self, forKey: .org),
                  name: try c.decode(String.self, forKey: .name),
                  defaultBookmark: try c.decode(String.self, forKey: .defaultBookmark),
                  headChangeID: try c.decode(ChangeID.self, forKey: .headChangeId), createdAt: try WireTime.decode(c, .createdAt),
                  tags: try c.decode([String: String].self, forKey: .tags),
                  upstream: try c.decodeIfPresent(Upstream.self, forKey: .upstream))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(org, forKey: .org)
        try c.encode(name, forKey: .name)
        try c.encode(defaultBookmark, forKey: .defaultBookmark)
        try c.encode(headChangeID, forKey: .headChangeId)
        try c.encode(WireTime.string(createdAt), forKey: .createdAt)
        try c.encode(tags, forKey: .tags)
        try c.encodeIfPresent(upstream, forKey: .upstream)
    }
}

/// A page of a listing; `nextCursor` is opaque and nil on the last page.
public struct Page<Item: Sendable>: Sendable {
    public let items: [Item]
    public let nextCursor: String?
    public var hasMore: Bool { nextCursor != nil }

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

public struct Signature: Equatable, Sendable, Codable {
    public var name: String
    public var email: String
    public var date: Date?

    public init(name: String, email: String, date: Date? = nil) {
        self.name = name
        self.email = email
        self.date = date
    }

    public static let `default` = Signature(name: "mesa", email: "mesa@localhost")
}

/// Git file modes the store versions.
public enum FileMode: String, Sendable, Codable, CaseIterable {
    case regular = "100644"
    case executable = "100755"
    case symlink = "120000"

    public init(parsing text: String) throws(MesaError) {
        guard let mode = FileMode(rawValue: text) else {
            throw MesaError.invalid("invalid file mode '\(text.prefix(20))': use 100644, 100755 or 120000 (symlink)")
        }
        self = mode
    }
}

/// One edit in a change. Operations apply in order, atomically.
public enum FileOperation: Sendable, Equatable {
    /// Creates or replaces the file at `path`; for a symlink, `content` is the target.
    case upsert(path: String, content: [UInt8], mode: FileMode = .regular)
    /// Creates or replaces the file at `path` with a blob already in the repository
    /// (written by `Store.writeBlob`/`blobWriter`), named by its git object id: how
    /// large files reach a change without travelling inside it.
    case upsertBlob(path: String, oid: String, mode: FileMode = .regular)
    /// Removes the file, symlink or whole directory at `path`.
    case delete(path: String)

    public var path: String {
        switch self {
        case .upsert(let path, _, _), .upsertBlob(let path, _, _), .delete(let path): path
        }
    }
}

public struct Change: Equatable, Sendable {
    public let id: ChangeID
    /// The git commit currently holding this change's snapshot.
    public let commitOID: String
    public let parents: [ChangeID]
    public let message: String
    public let authors: [Signature]
    public let committer: Signature
    public let createdAt: Date
    public let updatedAt: Date
    /// Paths left with conflict markers by a merge made with `allowConflicted`.
    public let conflicts: [String]
    public var isConflicted: Bool { !conflicts.isEmpty }

    public init(id: ChangeID, commitOID: String, parents: [ChangeID], message: String, authors: [Signature], committer: Signature, createdAt: Date, updatedAt: Date, conflicts: [String]) {
        self.id = id
        self.commitOID = commitOID
        self.parents = parents
        self.message = message
        self.authors = authors
        self.committer = committer
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.conflicts = conflicts
    }
}

/// A change plus the paths it touches relative to its first parent.
public struct ChangeDetail: Equatable, Sendable {
    public let change: Change
    public let files: [String]

    public init(change: Change, files: [String]) {
        self.change = change
        self.files = files
    }
}

/// A bookmark names a change; it follows the change when the change is amended.
public struct Bookmark: Equatable, Sendable {
    public let name: String
    public let changeID: ChangeID
    /// Current commit of that change; nil at the virtual root.
    public let commitOID: String?
    public let isDefault: Bool

    public init(name: String, changeID: ChangeID, commitOID: String?, isDefault: Bool) {
        self.name = name
        self.changeID = changeID
        self.commitOID = commitOID
        self.isDefault = isDefault
    }
}

public struct BookmarkMove: Equatable, Sendable {
    public let bookmark: Bookmark
    public let from: ChangeID

    public init(bookmark: Bookmark, from: ChangeID) {
        self.bookmark = bookmark
        self.from = from
    }
}

/// Where to read: a change, or a bookmark resolved to its change.
public enum Revision: Sendable, Equatable {
    case change(ChangeID)
    case bookmark(String)
    /// The repository's default bookmark.
    case head
}

public enum EntryType: String, Sendable, Codable {
    case file, symlink, dir
}

public struct DirectoryEntry: Equatable, Sendable {
    public let name: String
    public let path: String
    public let type: EntryType
    /// nil for directories.
    public let mode: FileMode?
    /// Byte size for files and symlinks; nil for directories.
    public let size: Int?
    /// Blob id for files and symlinks, tree id for directories.
    public let oid: String

    public init(name: String, path: String, type: EntryType, mode: FileMode?, size: Int?, oid: String) {
        self.name = name
        self.path = path
        self.type = type
        self.mode = mode
        self.size = size
        self.oid = oid
    }
}

public enum Content: Equatable, Sendable {
    case file(path: String, bytes: [UInt8], mode: FileMode, oid: String)
    case symlink(path: String, target: String, oid: String)
    case directory(path: String, oid: String, entries: [DirectoryEntry])
}

public enum MergeType: String, Sendable {
    case mergeCommit = "merge_commit"
    case noOp = "no_op"
}

public struct MergeResult: Equatable, Sendable {
    public let mergeType: MergeType
    public let changeID: ChangeID
    public let commitOID: String?
    public let conflicts: [String]
    public let target: String
    public let source: String
    public let sourceDeleted: Bool
    public var isConflicted: Bool { !conflicts.isEmpty }

    public init(mergeType: MergeType, changeID: ChangeID, commitOID: String?, conflicts: [String], target: String,
                source: String, sourceDeleted: Bool) {
        self.mergeType = mergeType
        self.changeID = changeID
        self.commitOID = commitOID
        self.conflicts = conflicts
        self.target = target
        self.source = source
        self.sourceDeleted = sourceDeleted
    }
}
