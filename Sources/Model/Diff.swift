import Foundation

public enum DiffStatus: String, Sendable, Codable {
    case added, deleted, modified, renamed
}

public enum DiffLineKind: String, Sendable, Codable {
    case added, deleted, context, annotation
}

/// Codable in JSON-RPC's shape, which REST shares for lines (`{kind, text}`).
public struct DiffLine: Equatable, Sendable, Codable {
    public let kind: DiffLineKind
    public let text: String

    public init(kind: DiffLineKind, text: String) {
        self.kind = kind
        self.text = text
    }
}

/// Codable in JSON-RPC's shape (camelCase keys); REST's snake_case one is `RESTDiffHunk`.
public struct DiffHunk: Equatable, Sendable, Codable {
    public let oldStart: Int
    public let oldLines: Int
    public let newStart: Int
    public let newLines: Int
    public let lines: [DiffLine]

    public init(oldStart: Int, oldLines: Int, newStart: Int, newLines: Int, lines: [DiffLine]) {
        self.oldStart = oldStart
        self.oldLines = oldLines
        self.newStart = newStart
        self.newLines = newLines
        self.lines = lines
    }
}

public struct DiffEntry: Equatable, Sendable {
    public let path: String
    public let oldPath: String?
    public let status: DiffStatus
    public let isBinary: Bool
    /// nil for binary files.
    public let hunks: [DiffHunk]?
    public let additions: Int
    public let deletions: Int
    public let sizeBytes: Int

    public init(path: String, oldPath: String?, status: DiffStatus, isBinary: Bool, hunks: [DiffHunk]?, additions: Int,
                deletions: Int, sizeBytes: Int) {
        self.path = path
        self.oldPath = oldPath
        self.status = status
        self.isBinary = isBinary
        self.hunks = hunks
        self.additions = additions
        self.deletions = deletions
        self.sizeBytes = sizeBytes
    }
}

public struct DiffStats: Equatable, Sendable {
    public let entries: Int
    public let additions: Int
    public let deletions: Int
    public var changes: Int { additions + deletions }

    public init(entries: Int, additions: Int, deletions: Int) {
        self.entries = entries
        self.additions = additions
        self.deletions = deletions
    }
}

public struct Diff: Equatable, Sendable {
    public let base: ChangeID
    public let head: ChangeID
    public let entries: [DiffEntry]
    public let stats: DiffStats
    public let truncated: Bool

    public init(base: ChangeID, head: ChangeID, entries: [DiffEntry], stats: DiffStats, truncated: Bool) {
        self.base = base
        self.head = head
        self.entries = entries
        self.stats = stats
        self.truncated = truncated
    }
}
