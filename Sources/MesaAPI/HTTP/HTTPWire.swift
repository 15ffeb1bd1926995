import Foundation
import Store

/// The REST bodies HTTPBackend needs beyond RESTTypes.swift (content, diff, merge,
/// change patch), decoded leniently: optional wherever the reference leaves a field
/// open, so answers from other compatible servers still decode.
enum HTTPWire {
    /// `PATCH /{org}/{repo}/changes/{change_id}`
    struct PatchChange: Encodable {
        var message: String?
        var files: [RESTFileOp]?
        var baseCommitOID: String?
        enum CodingKeys: String, CodingKey { case message, files, baseCommitOID = "base_commit_oid" }
    }

    /// `POST /{org}/{repo}/bookmarks/merge`
    struct Merge: Encodable {
        var target: String
        var source: String
        var message: String?
        var allowConflicted: Bool
        enum CodingKeys: String, CodingKey { case target, source, message, allowConflicted = "allow_conflicted" }
    }

    struct MergeResult: Decodable {
        var mergeType: String
        var isConflicted: Bool?
        var commitOID: String?
        var changeID: String
        var target: String
        var source: String
        var sourceDeleted: Bool?
        var conflicts: [String]?
        var conflictPaths: [String]?
        enum CodingKeys: String, CodingKey {
            case target, source, conflicts
            case mergeType = "merge_type", isConflicted = "is_conflicted", commitOID = "commit_oid"
            case changeID = "change_id", sourceDeleted = "source_deleted", conflictPaths = "conflict_paths"
        }
    }

    /// A directory entry; deeper listings may nest `entries` or list them flat.
    struct Entry: Decodable {
        var type: String
        var name: String
        var path: String
        var sha: String
        var size: Int?
        var mode: String?
        var entries: [Entry]?
    }

    /// `GET /{org}/{repo}/content` (JSON): a file, a symlink or a directory.
    struct Content: Decodable {
        var type: String
        var path: String
        var sha: String
        var size: Int?
        var encoding: String?
        var content: String?
        var mode: String?
        var entries: [Entry]?
    }

    struct DiffLine: Decodable {
        var kind: String
        var text: String
    }

    struct DiffHunk: Decodable {
        var oldStart: Int
        var oldLines: Int
        var newStart: Int
        var newLines: Int
        var lines: [DiffLine]?
        enum CodingKeys: String, CodingKey {
            case lines, oldStart = "old_start", oldLines = "old_lines", newStart = "new_start", newLines = "new_lines"
        }
    }

    struct DiffEntry: Decodable {
        var path: String
        var status: String
        var oldPath: String?
        var omittedReason: String?
        var hunks: [DiffHunk]?
        var sizeBytes: Int?
        var additions: Int?
        var deletions: Int?
        enum CodingKeys: String, CodingKey {
            case path, status, hunks, additions, deletions
            case oldPath = "old_path", omittedReason = "omitted_reason", sizeBytes = "size_bytes"
        }
    }

    struct DiffStats: Decodable {
        var entries: Int?
        var additions: Int?
        var deletions: Int?
    }

    struct Diff: Decodable {
        var baseChangeID: String
        var headChangeID: String
        var stats: DiffStats?
        var truncated: Bool?
        var entries: [DiffEntry]
        enum CodingKeys: String, CodingKey {
            case stats, truncated, entries, baseChangeID = "base_change_id", headChangeID = "head_change_id"
        }
    }
}
