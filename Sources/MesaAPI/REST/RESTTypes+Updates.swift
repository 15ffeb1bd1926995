import Foundation
import Model

// Wire types of the merge, change-patch and tag-patch endpoints (reference §2, §4, §5, §8).

/// A conflict resolution (reference §5). mesa-server does not apply resolutions yet;
/// the type exists so requests carrying them decode and get a clear answer.
public struct RESTResolution: Codable, Sendable, Equatable {
    public struct Hunk: Codable, Sendable, Equatable {
        public var hunkID: String
        public var content: String?
        public var take: String?
        public var encoding: String?
        public init(hunkID: String, content: String? = nil, take: String? = nil, encoding: String? = nil) {
            self.hunkID = hunkID
            self.content = content
            self.take = take
            self.encoding = encoding
        }
        enum CodingKeys: String, CodingKey { case content, take, encoding, hunkID = "hunk_id" }
    }

    public var path: String
    public var content: String?
    public var take: String?
    public var encoding: String?
    public var hunks: [Hunk]?

    public init(path: String, content: String? = nil, take: String? = nil, encoding: String? = nil, hunks: [Hunk]? = nil) {
        self.path = path
        self.content = content
        self.take = take
        self.encoding = encoding
        self.hunks = hunks
    }
}

/// `POST /{org}/{repo}/bookmarks/merge`
public struct RESTMergeRequest: Codable, Sendable, Equatable {
    public var target: String
    public var source: String
    public var deleteSource: Bool?
    public var allowConflicted: Bool?
    /// nil = a generated description; "" = none.
    public var message: String?
    public var resolutions: [RESTResolution]?

    public init(target: String, source: String, deleteSource: Bool? = nil, allowConflicted: Bool? = nil,
                message: String? = nil, resolutions: [RESTResolution]? = nil) {
        self.target = target
        self.source = source
        self.deleteSource = deleteSource
        self.allowConflicted = allowConflicted
        self.message = message
        self.resolutions = resolutions
    }

    enum CodingKeys: String, CodingKey {
        case target, source, message, resolutions
        case deleteSource = "delete_source", allowConflicted = "allow_conflicted"
    }
}

/// The 200 answer of a merge.
public struct RESTMergeResult: Codable, Sendable, Equatable {
    public var mergeType: String
    public var isConflicted: Bool
    /// 40 hex; all zeros when the target is still at the virtual root (a no-op merge of
    /// two empty bookmarks).
    public var commitOID: String
    public var changeID: String
    public var target: String
    public var source: String
    public var sourceDeleted: Bool
    /// mesa-server extension: the paths left with conflict markers (absent when clean).
    public var conflicts: [String]?

    public init(mergeType: String, isConflicted: Bool, commitOID: String, changeID: String, target: String, source: String,
                sourceDeleted: Bool, conflicts: [String]? = nil) {
        self.mergeType = mergeType
        self.isConflicted = isConflicted
        self.commitOID = commitOID
        self.changeID = changeID
        self.target = target
        self.source = source
        self.sourceDeleted = sourceDeleted
        self.conflicts = conflicts
    }

    public init(_ result: MergeResult) {
        self.init(mergeType: result.mergeType.rawValue, isConflicted: result.isConflicted,
                  commitOID: result.commitOID ?? String(repeating: "0", count: 40), changeID: result.changeID.description,
                  target: result.target, source: result.source, sourceDeleted: result.sourceDeleted,
                  conflicts: result.conflicts.isEmpty ? nil : result.conflicts)
    }

    /// The store's result. A conflicted result from a server that does not list the
    /// paths gets an empty path list with `isConflicted` lost; mesa-server lists them.
    public func mergeResult() throws(MesaError) -> MergeResult {
        guard let type = MergeType(rawValue: mergeType) else {
            throw .invalid("unknown merge_type '\(mergeType.prefix(40))'")
        }
        let id = try ChangeID(changeID)
        let zero = String(repeating: "0", count: 40)
        return MergeResult(mergeType: type, changeID: id, commitOID: commitOID == zero ? nil : commitOID,
                           conflicts: conflicts ?? [], target: target, source: source, sourceDeleted: sourceDeleted)
    }

    enum CodingKeys: String, CodingKey {
        case target, source, conflicts
        case mergeType = "merge_type", isConflicted = "is_conflicted", commitOID = "commit_oid", changeID = "change_id"
        case sourceDeleted = "source_deleted"
    }
}

/// `PATCH /{org}/{repo}/changes/{change_id}`
public struct RESTUpdateChange: Codable, Sendable, Equatable {
    /// nil keeps the description; "" clears it.
    public var message: String?
    public var author: Signature?
    public var committer: Signature?
    public var files: [RESTFileOp]?
    /// Optimistic concurrency: 409 when the change has moved past this commit.
    public var baseCommitOID: String?
    public var resolutions: [RESTResolution]?

    public init(message: String? = nil, author: Signature? = nil, committer: Signature? = nil,
                files: [RESTFileOp]? = nil, baseCommitOID: String? = nil, resolutions: [RESTResolution]? = nil) {
        self.message = message
        self.author = author
        self.committer = committer
        self.files = files
        self.baseCommitOID = baseCommitOID
        self.resolutions = resolutions
    }

    enum CodingKeys: String, CodingKey {
        case message, author, committer, files, resolutions, baseCommitOID = "base_commit_oid"
    }
}

extension Signature {
    /// A signature from a request: the server sets the date.
    public var undated: Signature { Signature(name: name, email: email) }
}

/// `PATCH /{org}/repos/tags`
public struct RESTRepoTagsUpdate: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case set, remove }

    public var repoIDs: [String]
    public var action: Action
    public var key: String
    /// Required for `set`; ignored for `remove`.
    public var value: String?

    public init(repoIDs: [String], action: Action, key: String, value: String? = nil) {
        self.repoIDs = repoIDs
        self.action = action
        self.key = key
        self.value = value
    }

    enum CodingKeys: String, CodingKey { case action, key, value, repoIDs = "repo_ids" }
}

/// `{"updated": n}`
public struct RESTUpdated: Codable, Sendable, Equatable {
    public var updated: Int
    public init(updated: Int) { self.updated = updated }
}

/// `PATCH /{org}/api-keys/{id}` body (a nil value removes the tag) and answer.
public struct RESTKeyTags: Codable, Sendable, Equatable {
    public var tags: [String: String?]
    public init(tags: [String: String?]) { self.tags = tags }
}

/// The answer of a key tag patch: the key's tags afterwards.
public struct RESTKeyTagsResult: Codable, Sendable, Equatable {
    public var tags: [String: String]
    public init(tags: [String: String]) { self.tags = tags }
}
