import Foundation

// Public constructors for the store's value types, for code that builds them from
// another source than the store itself: the REST client (MesaAPI's HTTPBackend)
// decodes mesa-server's answers into these. Static factories rather than initializers,
// because an extension may not redeclare a struct's synthesized memberwise init.

extension Org {
    public static func make(id: String, slug: String, name: String, createdAt: Date) -> Org {
        Org(id: id, slug: slug, name: name, createdAt: createdAt)
    }
}

extension Repo {
    public static func make(id: String, org: String, name: String, defaultBookmark: String, headChangeID: ChangeID,
                            createdAt: Date, tags: [String: String]) -> Repo {
        Repo(id: id, org: org, name: name, defaultBookmark: defaultBookmark, headChangeID: headChangeID,
             createdAt: createdAt, tags: tags)
    }
}

extension Page {
    public static func make(items: [Item], nextCursor: String?) -> Page {
        Page(items: items, nextCursor: nextCursor)
    }
}

extension Change {
    public static func make(id: ChangeID, commitOID: String, parents: [ChangeID], message: String, authors: [Signature],
                            committer: Signature, createdAt: Date, updatedAt: Date, conflicts: [String]) -> Change {
        Change(id: id, commitOID: commitOID, parents: parents, message: message, authors: authors, committer: committer,
               createdAt: createdAt, updatedAt: updatedAt, conflicts: conflicts)
    }
}

extension ChangeDetail {
    public static func make(change: Change, files: [String]) -> ChangeDetail { ChangeDetail(change: change, files: files) }
}

extension Bookmark {
    public static func make(name: String, changeID: ChangeID, commitOID: String?, isDefault: Bool) -> Bookmark {
        Bookmark(name: name, changeID: changeID, commitOID: commitOID, isDefault: isDefault)
    }
}

extension BookmarkMove {
    public static func make(bookmark: Bookmark, from: ChangeID) -> BookmarkMove { BookmarkMove(bookmark: bookmark, from: from) }
}

extension DirectoryEntry {
    public static func make(name: String, path: String, type: EntryType, mode: FileMode?, size: Int?, oid: String) -> DirectoryEntry {
        DirectoryEntry(name: name, path: path, type: type, mode: mode, size: size, oid: oid)
    }
}

extension MergeResult {
    public static func make(mergeType: MergeType, changeID: ChangeID, commitOID: String?, conflicts: [String], target: String,
                            source: String, sourceDeleted: Bool) -> MergeResult {
        MergeResult(mergeType: mergeType, changeID: changeID, commitOID: commitOID, conflicts: conflicts, target: target,
                    source: source, sourceDeleted: sourceDeleted)
    }
}

extension DiffLine {
    public static func make(kind: DiffLineKind, text: String) -> DiffLine { DiffLine(kind: kind, text: text) }
}

extension DiffHunk {
    public static func make(oldStart: Int, oldLines: Int, newStart: Int, newLines: Int, lines: [DiffLine]) -> DiffHunk {
        DiffHunk(oldStart: oldStart, oldLines: oldLines, newStart: newStart, newLines: newLines, lines: lines)
    }
}

extension DiffEntry {
    public static func make(path: String, oldPath: String?, status: DiffStatus, isBinary: Bool, hunks: [DiffHunk]?,
                            additions: Int, deletions: Int, sizeBytes: Int) -> DiffEntry {
        DiffEntry(path: path, oldPath: oldPath, status: status, isBinary: isBinary, hunks: hunks, additions: additions,
                  deletions: deletions, sizeBytes: sizeBytes)
    }
}

extension DiffStats {
    public static func make(entries: Int, additions: Int, deletions: Int) -> DiffStats {
        DiffStats(entries: entries, additions: additions, deletions: deletions)
    }
}

extension Diff {
    public static func make(base: ChangeID, head: ChangeID, entries: [DiffEntry], stats: DiffStats, truncated: Bool) -> Diff {
        Diff(base: base, head: head, entries: entries, stats: stats, truncated: truncated)
    }
}

extension APIKey {
    public static func make(id: String, org: String, name: String?, scopes: [Scope], repoIDs: [String]?, tags: [String: String],
                            createdAt: Date, expiresAt: Date?, revokedAt: Date?, lastUsedAt: Date?) -> APIKey {
        APIKey(id: id, org: org, name: name, scopes: scopes, repoIDs: repoIDs, tags: tags, createdAt: createdAt,
               expiresAt: expiresAt, revokedAt: revokedAt, lastUsedAt: lastUsedAt)
    }
}

extension CreatedAPIKey {
    public static func make(key: APIKey, secret: String) -> CreatedAPIKey { CreatedAPIKey(key: key, secret: secret) }
}
