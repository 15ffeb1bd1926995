import Foundation
import Model

/// The `data` objects of webhook events, in the wire shape of Mesa's SDK (snake_case,
/// ISO-8601 times, a 40-zero commit oid for the virtual root). Built here because the
/// store writes them in the same transaction as the change they describe.
enum WebhookPayload {
    static let noCommit = String(repeating: "0", count: 40)

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    struct RepoInfo: Encodable {
        let id, name, defaultBookmark, headChangeID: String
        let createdAt: Date
        let tags: [String: String]

        init(_ repo: Repo) {
            id = repo.id
            name = repo.name
            defaultBookmark = repo.defaultBookmark
            headChangeID = repo.headChangeID.rawValue
            createdAt = repo.createdAt
            tags = repo.tags
        }

        enum CodingKeys: String, CodingKey {
            case id, name, tags, defaultBookmark = "default_bookmark", headChangeID = "head_change_id", createdAt = "created_at"
        }
    }

    struct RepoSnapshot: Encodable, Equatable {
        let name, defaultBookmark: String
        let tags: [String: String]

        init(_ repo: Repo) {
            name = repo.name
            defaultBookmark = repo.defaultBookmark
            tags = repo.tags
        }

        enum CodingKeys: String, CodingKey { case name, tags, defaultBookmark = "default_bookmark" }
    }

    /// repo.created and repo.deleted.
    struct RepoData: Encodable {
        let repo: RepoInfo
    }

    struct RepoUpdated: Encodable {
        let repo: RepoInfo
        let before, after: RepoSnapshot
    }

    struct BookmarkInfo: Encodable {
        let name: String
        let isDefault: Bool
        let changeID, commitOID: String

        init(_ bookmark: Bookmark) {
            name = bookmark.name
            isDefault = bookmark.isDefault
            changeID = bookmark.changeID.rawValue
            commitOID = bookmark.commitOID ?? WebhookPayload.noCommit
        }

        enum CodingKeys: String, CodingKey {
            case name, isDefault = "is_default", changeID = "change_id", commitOID = "commit_oid"
        }
    }

    struct Position: Encodable {
        let changeID, commitOID: String
        enum CodingKeys: String, CodingKey { case changeID = "change_id", commitOID = "commit_oid" }
    }

    /// bookmark.created and bookmark.deleted.
    struct BookmarkData: Encodable {
        let bookmark: BookmarkInfo
    }

    struct BookmarkMoved: Encodable {
        let bookmark: BookmarkInfo
        let from: Position
    }

    /// `bookmark` is the target after the merge; the rest says what was merged.
    struct BookmarkMerged: Encodable {
        let bookmark: BookmarkInfo
        let source: String
        let mergeType: String
        let isConflicted: Bool
        let sourceDeleted: Bool

        enum CodingKeys: String, CodingKey {
            case bookmark, source, mergeType = "merge_type", isConflicted = "is_conflicted", sourceDeleted = "source_deleted"
        }
    }

    struct Person: Encodable {
        let name, email: String
        let date: Date?

        init(_ signature: Signature) {
            name = signature.name
            email = signature.email
            date = signature.date
        }
    }

    struct ChangeInfo: Encodable {
        let id, currentCommitOID, message: String
        let author: Person
        let authors: [Person]
        let committer: Person
        let parents: [String]
        let isConflicted: Bool
        let createdAt, updatedAt: Date

        init(_ change: Change) {
            id = change.id.rawValue
            currentCommitOID = change.commitOID
            message = change.message
            authors = change.authors.map(Person.init)
            author = authors.first ?? Person(.default)
            committer = Person(change.committer)
            parents = change.parents.map(\.rawValue)
            isConflicted = !change.conflicts.isEmpty
            createdAt = change.createdAt
            updatedAt = change.updatedAt
        }

        enum CodingKeys: String, CodingKey {
            case id, message, author, authors, committer, parents
            case currentCommitOID = "current_commit_oid", isConflicted = "is_conflicted"
            case createdAt = "created_at", updatedAt = "updated_at"
        }
    }

    struct ChangeCreated: Encodable {
        let change: ChangeInfo
    }

    struct ChangeEvolved: Encodable {
        let change: ChangeInfo
        let previousCommitOID: String
        enum CodingKeys: String, CodingKey { case change, previousCommitOID = "previous_current_commit_oid" }
    }

    /// push: git refs that moved without a bookmark call (bookmarks following an amended change).
    struct Push: Encodable {
        struct Update: Encodable {
            let ref, bookmark: String
            let before, after: String?
            let action: String
        }

        struct Reconciliation: Encodable {
            var reconciledCommitCount = 0, touchedChangeCount = 0, changesCreatedCount = 0, evologInsertedCount = 0
            var invalidChangeIDHeaderCount = 0, dirtyChangeSkipCount = 0

            enum CodingKeys: String, CodingKey {
                case reconciledCommitCount = "reconciled_commit_count", touchedChangeCount = "touched_change_count"
                case changesCreatedCount = "changes_created_count", evologInsertedCount = "evolog_inserted_count"
                case invalidChangeIDHeaderCount = "invalid_change_id_header_count", dirtyChangeSkipCount = "dirty_change_skip_count"
            }
        }

        let updates: [Update]
        let reconciliation: Reconciliation
    }
}

extension WebhookPayload {
    /// sync.queued, sync.in_progress, sync.completed, sync.failed: the sync as the REST
    /// API shows it (globs left out read `*`; absent values are null, not missing).
    struct SyncData: Encodable {
        let sync: SyncInfo
    }

    struct SyncInfo: Encodable {
        let sync: Sync

        init(_ sync: Sync) { self.sync = sync }

        enum CodingKeys: String, CodingKey {
            case id, direction, status, attempt, stats, error
            case repoID = "repo_id", refGlobs = "ref_globs", createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
        }

        struct Globs: Encodable { let branches, tags: String }
        struct Stats: Encodable { let refs: [Ref] }
        struct Ref: Encodable {
            let stat: SyncRefStat
            enum CodingKeys: String, CodingKey { case name, before, after, outcome }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(stat.name, forKey: .name)
                try c.encode(stat.before, forKey: .before)
                try c.encode(stat.after, forKey: .after)
                try c.encode(stat.outcome.rawValue, forKey: .outcome)
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(sync.id, forKey: .id)
            try c.encode(sync.repoID, forKey: .repoID)
            try c.encode(sync.direction.rawValue, forKey: .direction)
            try c.encode(sync.status.rawValue, forKey: .status)
            try c.encode(sync.attempt, forKey: .attempt)
            try c.encode(Globs(branches: sync.refGlobs.branches ?? "*", tags: sync.refGlobs.tags ?? "*"), forKey: .refGlobs)
            try c.encode(sync.refs.map { Stats(refs: $0.map(Ref.init(stat:))) }, forKey: .stats)
            try c.encode(sync.error, forKey: .error)
            try c.encode(sync.createdAt, forKey: .createdAt)
            try c.encode(sync.startedAt, forKey: .startedAt)
            try c.encode(sync.finishedAt, forKey: .finishedAt)
        }
    }
}
