import Foundation
import Model

// Wire types of `GET /{org}/{repo}/diff` (reference §7).

public struct RESTDiffHunk: Codable, Sendable, Equatable {
    public var oldStart: Int
    public var oldLines: Int
    public var newStart: Int
    public var newLines: Int
    public var lines: [DiffLine]

    public init(oldStart: Int, oldLines: Int, newStart: Int, newLines: Int, lines: [DiffLine]) {
        self.oldStart = oldStart
        self.oldLines = oldLines
        self.newStart = newStart
        self.newLines = newLines
        self.lines = lines
    }

    public init(_ hunk: DiffHunk) {
        self.init(oldStart: hunk.oldStart, oldLines: hunk.oldLines, newStart: hunk.newStart, newLines: hunk.newLines,
                  lines: hunk.lines)
    }

    enum CodingKeys: String, CodingKey {
        case lines, oldStart = "old_start", oldLines = "old_lines", newStart = "new_start", newLines = "new_lines"
    }
}

/// `{content: base64}`: one side of a conflict hunk.
public struct RESTConflictSide: Codable, Sendable, Equatable {
    public var content: String
    public init(content: String) { self.content = content }
}

public struct RESTConflictHunk: Codable, Sendable, Equatable {
    public var hunkID: String
    public var oldStart: Int
    public var oldLines: Int
    public var newStart: Int
    public var newLines: Int
    public var target: RESTConflictSide?
    public var base: RESTConflictSide?
    public var source: RESTConflictSide?

    public init(hunkID: String, oldStart: Int, oldLines: Int, newStart: Int, newLines: Int,
                target: RESTConflictSide? = nil, base: RESTConflictSide? = nil, source: RESTConflictSide? = nil) {
        self.hunkID = hunkID
        self.oldStart = oldStart
        self.oldLines = oldLines
        self.newStart = newStart
        self.newLines = newLines
        self.target = target
        self.base = base
        self.source = source
    }

    enum CodingKeys: String, CodingKey {
        case target, base, source, hunkID = "hunk_id"
        case oldStart = "old_start", oldLines = "old_lines", newStart = "new_start", newLines = "new_lines"
    }
}

/// A conflicted path of a diff. mesa-server never reports one: it writes conflicts into
/// files as marker text, so they show up as ordinary `entries`. Kept for decoding.
public struct RESTConflictedEntry: Codable, Sendable, Equatable {
    public var path: String
    public var hunks: [RESTConflictHunk]
    public var sizeBytes: Int?
    public var omittedReason: String?

    public init(path: String, hunks: [RESTConflictHunk], sizeBytes: Int? = nil, omittedReason: String? = nil) {
        self.path = path
        self.hunks = hunks
        self.sizeBytes = sizeBytes
        self.omittedReason = omittedReason
    }

    enum CodingKeys: String, CodingKey { case path, hunks, sizeBytes = "size_bytes", omittedReason = "omitted_reason" }
}

public struct RESTDiffEntry: Codable, Sendable, Equatable {
    public var path: String
    public var status: DiffStatus
    public var oldPath: String?
    public var isConflicted: Bool
    /// `binary`, `too_large`, `file_limit` or nil; `hunks` is nil when set.
    public var omittedReason: String?
    public var hunks: [RESTDiffHunk]?
    public var conflictHunks: [RESTConflictHunk]?
    public var sizeBytes: Int?

    public init(path: String, status: DiffStatus, oldPath: String? = nil, isConflicted: Bool = false,
                omittedReason: String? = nil, hunks: [RESTDiffHunk]? = nil, conflictHunks: [RESTConflictHunk]? = nil,
                sizeBytes: Int? = nil) {
        self.path = path
        self.status = status
        self.oldPath = oldPath
        self.isConflicted = isConflicted
        self.omittedReason = omittedReason
        self.hunks = hunks
        self.conflictHunks = conflictHunks
        self.sizeBytes = sizeBytes
    }

    public init(_ entry: DiffEntry) {
        self.init(path: entry.path, status: entry.status, oldPath: entry.oldPath, omittedReason: entry.isBinary ? "binary" : nil,
                  hunks: entry.hunks?.map(RESTDiffHunk.init), sizeBytes: entry.sizeBytes)
    }

    /// The store's entry; additions and deletions are counted from the lines.
    public func entry() -> DiffEntry {
        let lines = (hunks ?? []).flatMap(\.lines)
        return DiffEntry(path: path, oldPath: oldPath, status: status, isBinary: omittedReason == "binary",
                         hunks: hunks.map { $0.map { h in
                             DiffHunk(oldStart: h.oldStart, oldLines: h.oldLines, newStart: h.newStart, newLines: h.newLines,
                                      lines: h.lines.map { DiffLine(kind: $0.kind, text: $0.text) })
                         } },
                         additions: lines.filter { $0.kind == .added }.count,
                         deletions: lines.filter { $0.kind == .deleted }.count, sizeBytes: sizeBytes ?? 0)
    }

    enum CodingKeys: String, CodingKey {
        case path, status, hunks
        case oldPath = "old_path", isConflicted = "is_conflicted", omittedReason = "omitted_reason"
        case conflictHunks = "conflict_hunks", sizeBytes = "size_bytes"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(status, forKey: .status)
        try c.encode(oldPath, forKey: .oldPath)  // null, not absent
        try c.encode(isConflicted, forKey: .isConflicted)
        try c.encode(omittedReason, forKey: .omittedReason)
        try c.encode(hunks, forKey: .hunks)
        try c.encode(conflictHunks, forKey: .conflictHunks)
        try c.encodeIfPresent(sizeBytes, forKey: .sizeBytes)
    }
}

public struct RESTDiffStats: Codable, Sendable, Equatable {
    public var entries: Int
    public var additions: Int
    public var deletions: Int
    public var changes: Int
    public var conflictedEntries: Int
    public var conflictedHunks: Int

    public init(entries: Int, additions: Int, deletions: Int, changes: Int, conflictedEntries: Int = 0, conflictedHunks: Int = 0) {
        self.entries = entries
        self.additions = additions
        self.deletions = deletions
        self.changes = changes
        self.conflictedEntries = conflictedEntries
        self.conflictedHunks = conflictedHunks
    }

    enum CodingKeys: String, CodingKey {
        case entries, additions, deletions, changes
        case conflictedEntries = "conflicted_entries", conflictedHunks = "conflicted_hunks"
    }
}

/// The JSON diff. `entries` and `conflicted_entries` never share a path.
public struct RESTDiff: Codable, Sendable, Equatable {
    public var baseChangeID: String
    public var headChangeID: String
    public var stats: RESTDiffStats
    public var truncated: Bool
    public var entries: [RESTDiffEntry]
    public var conflictedEntries: [RESTConflictedEntry]

    public init(baseChangeID: String, headChangeID: String, stats: RESTDiffStats, truncated: Bool,
                entries: [RESTDiffEntry], conflictedEntries: [RESTConflictedEntry] = []) {
        self.baseChangeID = baseChangeID
        self.headChangeID = headChangeID
        self.stats = stats
        self.truncated = truncated
        self.entries = entries
        self.conflictedEntries = conflictedEntries
    }

    /// With `includeEntries` false (`conflicts=only`), the non-conflicted entries and
    /// their counts are left out.
    public init(_ diff: Diff, includeEntries: Bool = true) {
        let stats = includeEntries ? RESTDiffStats(entries: diff.stats.entries, additions: diff.stats.additions,
                                                   deletions: diff.stats.deletions, changes: diff.stats.changes)
            : RESTDiffStats(entries: 0, additions: 0, deletions: 0, changes: 0)
        self.init(baseChangeID: diff.base.description, headChangeID: diff.head.description, stats: stats,
                  truncated: includeEntries && diff.truncated, entries: includeEntries ? diff.entries.map(RESTDiffEntry.init) : [])
    }

    /// The store's diff (conflicted entries have no store counterpart and are dropped).
    public func diff() throws(MesaError) -> Diff {
        Diff(base: try ChangeID(baseChangeID), head: try ChangeID(headChangeID), entries: entries.map { $0.entry() },
             stats: DiffStats(entries: stats.entries, additions: stats.additions, deletions: stats.deletions),
             truncated: truncated)
    }

    enum CodingKeys: String, CodingKey {
        case stats, truncated, entries
        case baseChangeID = "base_change_id", headChangeID = "head_change_id", conflictedEntries = "conflicted_entries"
    }
}
