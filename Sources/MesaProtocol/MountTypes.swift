import Foundation
import Model

/// A mount as the daemon reports it.
public struct MountInfo: Codable, Sendable {
    /// "tree" for the daemon tree, "org/repo" for a repo in it, the path for a path mount.
    public var mountId: String
    public var path: String
    public var org: String?
    public var repo: String?
    public var mode: String
    public var bookmark: String?
    /// The change the mount shows: its working change, else the change it sits on.
    public var changeId: String?
    public init(mountId: String, path: String, org: String? = nil, repo: String? = nil, mode: String, bookmark: String? = nil, changeId: String? = nil) {
        self.mountId = mountId
        self.path = path
        self.org = org
        self.repo = repo
        self.mode = mode
        self.bookmark = bookmark
        self.changeId = changeId
    }
}

/// What `status` reports for one repo mount.
public struct MountStatusInfo: Codable, Sendable {
    public var mountId: String
    public var path: String
    public var org: String
    public var repo: String
    public var mode: String
    public var bookmark: String?
    public var baseChangeId: String
    public var workingChangeId: String?
    public var dirtyPaths: [String]
    public var pendingUploads: Int
    public var lastError: String?
    public var lastFlush: String?
    /// The background prefetch started at mount time; absent when `[cache] prefetch = "off"`.
    public var prefetch: PrefetchInfo?
    public init(mountId: String, path: String, org: String, repo: String, mode: String, bookmark: String? = nil, baseChangeId: String, workingChangeId: String? = nil, dirtyPaths: [String], pendingUploads: Int, lastError: String? = nil, lastFlush: String? = nil, prefetch: PrefetchInfo? = nil) {
        self.mountId = mountId
        self.path = path
        self.org = org
        self.repo = repo
        self.mode = mode
        self.bookmark = bookmark
        self.baseChangeId = baseChangeId
        self.workingChangeId = workingChangeId
        self.dirtyPaths = dirtyPaths
        self.pendingUploads = pendingUploads
        self.lastError = lastError
        self.lastFlush = lastFlush
        self.prefetch = prefetch
    }
}

/// A mount's prefetch progress (`mountStatus`).
public struct PrefetchInfo: Codable, Sendable, Equatable {
    /// "layout" or "content".
    public var mode: String
    /// "running", "done" or "stopped" (unmounted, view switched).
    public var state: String
    public var directoriesListed: Int
    /// Directories found but not listed yet; the total is known only when done.
    public var directoriesPending: Int
    public var filesFetched: Int
    public var bytesFetched: Int
    public var failures: Int
    /// Why content or the walk stopped early, or the last failure.
    public var note: String?
    public init(mode: String, state: String, directoriesListed: Int, directoriesPending: Int, filesFetched: Int,
                bytesFetched: Int, failures: Int, note: String? = nil) {
        self.mode = mode
        self.state = state
        self.directoriesListed = directoriesListed
        self.directoriesPending = directoriesPending
        self.filesFetched = filesFetched
        self.bytesFetched = bytesFetched
        self.failures = failures
        self.note = note
    }
}

public struct ChangeInfo: Codable, Sendable {
    public var id: String
    public var commitOid: String
    public var parents: [String]
    public var message: String
    public var author: String
    public var createdAt: String
    public var updatedAt: String
    public var conflicts: [String]
    /// Paths touched relative to the first parent (only from `show`).
    public var files: [String]?
    public init(id: String, commitOid: String, parents: [String], message: String, author: String, createdAt: String, updatedAt: String, conflicts: [String], files: [String]? = nil) {
        self.id = id
        self.commitOid = commitOid
        self.parents = parents
        self.message = message
        self.author = author
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.conflicts = conflicts
        self.files = files
    }
}

public struct BookmarkInfo: Codable, Sendable {
    public var name: String
    public var changeId: String
    public var isDefault: Bool
    public init(name: String, changeId: String, isDefault: Bool) {
        self.name = name
        self.changeId = changeId
        self.isDefault = isDefault
    }
}

public struct DiffEntryInfo: Codable, Sendable {
    public var path: String
    public var oldPath: String?
    public var status: String
    public var binary: Bool
    public var hunks: [DiffHunk]?
    public var additions: Int
    public var deletions: Int
    public init(path: String, oldPath: String? = nil, status: String, binary: Bool, hunks: [DiffHunk]? = nil, additions: Int, deletions: Int) {
        self.path = path
        self.oldPath = oldPath
        self.status = status
        self.binary = binary
        self.hunks = hunks
        self.additions = additions
        self.deletions = deletions
    }
}

public struct DiffInfo: Codable, Sendable {
    public var baseChangeId: String
    public var headChangeId: String
    public var entries: [DiffEntryInfo]
    public var additions: Int
    public var deletions: Int
    public var truncated: Bool
    public init(baseChangeId: String, headChangeId: String, entries: [DiffEntryInfo], additions: Int, deletions: Int, truncated: Bool) {
        self.baseChangeId = baseChangeId
        self.headChangeId = headChangeId
        self.entries = entries
        self.additions = additions
        self.deletions = deletions
        self.truncated = truncated
    }
}
