import Foundation
import Model

extension Store {
    public func listBookmarks(org slug: String, repo name: String, glob: String? = nil,
                              cursor: String? = nil, limit: Int? = nil) throws -> Page<Bookmark> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        return try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            let rows = try db.query("SELECT name FROM bookmarks WHERE repo_id = ? ORDER BY name", [.text(repo.id)])
            let names = rows.map { $0.string(0) }.filter { glob == nil || fnmatch(glob!, $0, 0) == 0 }
            let window = names.dropFirst(position).prefix(limit)
            let items = try window.map { try bookmark(repo: repo, name: $0, db) }
            let next = names.count > position + limit ? Cursor.encode(position + limit) : nil
            return Page(items: items, nextCursor: next)
        }
    }

    public func bookmark(org slug: String, repo name: String, bookmark: String) throws -> Bookmark {
        try withDatabase { db in try self.bookmark(repo: try repoRow(org: slug, name: name, db), name: bookmark, db) }
    }

    /// Creates a bookmark at any change, including the virtual root.
    public func createBookmark(org slug: String, repo name: String, bookmark: String, at change: ChangeID) throws -> Bookmark {
        try Validation.bookmarkName(bookmark)
        return try withDatabase { db in
            try db.transaction {
                let repo = try repoRow(org: slug, name: name, db)
                _ = try changeRow(repoID: repo.id, id: change, db)
                if try db.queryOne("SELECT 1 FROM bookmarks WHERE repo_id = ? AND name = ?", [.text(repo.id), .text(bookmark)]) != nil {
                    throw MesaError(.alreadyExists, "bookmark '\(bookmark.clipped)' already exists in '\(slug.clipped)/\(name.clipped)'; move it instead")
                }
                // git cannot hold refs/heads/a and refs/heads/a/b at once.
                if let clash = try db.queryOne("""
                    SELECT name FROM bookmarks WHERE repo_id = ?
                    AND (substr(?, 1, length(name) + 1) = name || '/' OR substr(name, 1, length(?) + 1) = ? || '/')
                    """, [.text(repo.id), .text(bookmark), .text(bookmark), .text(bookmark)]) {
                    throw MesaError(.alreadyExists, "bookmark '\(bookmark.clipped)' clashes with existing bookmark '\(clash.string(0))' in '\(slug.clipped)/\(name.clipped)': as git branches, one cannot be a folder of the other; pick another name")
                }
                try db.query("INSERT INTO bookmarks(repo_id, name, change_id) VALUES (?, ?, ?)",
                             [.text(repo.id), .text(bookmark), .text(change.rawValue)])
                try mirrorBookmarkRefs(repoID: repo.id, connection: db, onlyChange: change)
                let created = try self.bookmark(repo: repo, name: bookmark, db)
                try recordBookmarkEvent(db, repo, .bookmarkCreated, created)
                return created
            }
        }
    }

    /// Moves a bookmark with compare-and-swap. The move must go forward in history
    /// (the new change descends from the current one) unless `allowBackwards`.
    /// `expectedFrom` makes the swap conditional on the tip the caller last saw; without
    /// it, the tip read at the start of this call is the expectation. Either way a
    /// concurrent move makes this one fail with `.conflict`, never silently win.
    public func moveBookmark(org slug: String, repo name: String, bookmark: String, to target: ChangeID,
                             expectedFrom: ChangeID? = nil, allowBackwards: Bool = false) throws -> BookmarkMove {
        let (repo, from, fromRow, targetRow) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            let from = try bookmarkChange(repoID: repo.id, name: bookmark, db)
            return (repo, from, try changeRow(repoID: repo.id, id: from, db), try changeRow(repoID: repo.id, id: target, db))
        }
        if let expectedFrom, expectedFrom != from {
            throw MesaError(.conflict, "bookmark '\(bookmark.clipped)' is at \(from), not \(expectedFrom): it was moved concurrently; re-read it and retry")
        }
        if !allowBackwards && from != target {
            let forward = try isForward(repoID: repo.id, from: fromRow, to: targetRow)
            if !forward {
                throw MesaError.invalid("moving bookmark '\(bookmark.clipped)' from \(from) to \(target) is not a forward move (\(target) does not descend from \(from)); pass allowBackwards to force it")
            }
        }
        return try withDatabase { db in
            try db.transaction {
                try db.query("UPDATE bookmarks SET change_id = ? WHERE repo_id = ? AND name = ? AND change_id = ?",
                             [.text(target.rawValue), .text(repo.id), .text(bookmark), .text(from.rawValue)])
                guard db.changes == 1 else {
                    let now = (try? bookmarkChange(repoID: repo.id, name: bookmark, db))?.rawValue ?? "deleted"
                    throw MesaError(.conflict, "bookmark '\(bookmark.clipped)' moved from \(from) to \(now) while this move was in progress; re-read it and retry")
                }
                try mirrorBookmarkRefs(repoID: repo.id, connection: db, onlyChange: target)
                let moved = try self.bookmark(repo: repo, name: bookmark, db)
                if from != target {
                    try recordRepoEvent(db, repo, .bookmarkMoved, WebhookPayload.BookmarkMoved(
                        bookmark: .init(moved), from: .init(changeID: from.rawValue, commitOID: fromRow.commit?.hex ?? WebhookPayload.noCommit)))
                }
                return BookmarkMove(bookmark: moved, from: from)
            }
        }
    }

    public func deleteBookmark(org slug: String, repo name: String, bookmark: String) throws {
        try withDatabase { db in
            try db.transaction {
                let repo = try repoRow(org: slug, name: name, db)
                if repo.defaultBookmark == bookmark {
                    throw MesaError.invalid("bookmark '\(bookmark.clipped)' is the default bookmark of '\(slug.clipped)/\(name.clipped)'; make another bookmark the default first")
                }
                let gone = try? self.bookmark(repo: repo, name: bookmark, db)
                try db.query("DELETE FROM bookmarks WHERE repo_id = ? AND name = ?", [.text(repo.id), .text(bookmark)])
                guard db.changes == 1, let gone else {
                    throw MesaError.notFound("bookmark '\(bookmark.clipped)' does not exist in '\(slug.clipped)/\(name.clipped)'")
                }
                try recordBookmarkEvent(db, repo, .bookmarkDeleted, gone)
                try repositories.with(repo.id) { try $0.deleteReference("refs/heads/" + bookmark) }
            }
        }
    }

    // MARK: Internals

    func bookmarkChange(repoID: String, name: String, _ db: SQLiteDatabase) throws -> ChangeID {
        guard let row = try db.queryOne("SELECT change_id FROM bookmarks WHERE repo_id = ? AND name = ?",
                                        [.text(repoID), .text(name)]) else {
            throw MesaError.notFound("bookmark '\(name.clipped)' does not exist")
        }
        return ChangeID(unchecked: row.string(0))
    }

    func bookmark(repo: RepoRow, name: String, _ db: SQLiteDatabase) throws -> Bookmark {
        let change = try bookmarkChange(repoID: repo.id, name: name, db)
        let row = try changeRow(repoID: repo.id, id: change, db)
        return Bookmark(name: name, changeID: change, commitOID: row.commit?.hex, isDefault: name == repo.defaultBookmark)
    }

    /// Resolves a revision to a change id of the repo.
    func resolve(_ revision: Revision, repo: RepoRow, _ db: SQLiteDatabase) throws -> ChangeRow {
        switch revision {
        case .change(let id): return try changeRow(repoID: repo.id, id: id, db)
        case .bookmark(let name): return try changeRow(repoID: repo.id, id: bookmarkChange(repoID: repo.id, name: name, db), db)
        case .head: return try changeRow(repoID: repo.id, id: bookmarkChange(repoID: repo.id, name: repo.defaultBookmark, db), db)
        }
    }

    /// True when `to` descends from `from`'s current commit or from any earlier
    /// snapshot of it (a child built before its parent was amended still counts).
    private func isForward(repoID: String, from: ChangeRow, to: ChangeRow) throws -> Bool {
        guard let fromCommit = from.commit else { return true }
        guard let toCommit = to.commit else { return false }
        let snapshots = try withDatabase { db in
            try db.query("SELECT commit_oid FROM commits WHERE repo_id = ? AND change_id = ?",
                         [.text(repoID), .text(from.id.rawValue)]).compactMap { try? GitOID(hex: $0.string(0)) }
        }
        return try repositories.with(repoID) { git in
            for candidate in [fromCommit] + snapshots {
                if try candidate == toCommit || git.isDescendant(toCommit, of: candidate) { return true }
            }
            return false
        }
    }

    /// Makes `refs/heads/*` match the bookmarks table, so `git clone` sees every bookmark
    /// at its change's current commit. Bookmarks at the virtual root have no ref.
    func mirrorBookmarkRefs(repoID: String, connection db: SQLiteDatabase, onlyChange: ChangeID? = nil) throws {
        var sql = "SELECT b.name, c.commit_oid FROM bookmarks b LEFT JOIN changes c ON c.repo_id = b.repo_id AND c.change_id = b.change_id WHERE b.repo_id = ?"
        var arguments: [SQLValue] = [.text(repoID)]
        if let onlyChange {
            sql += " AND b.change_id = ?"
            arguments.append(.text(onlyChange.rawValue))
        }
        let rows = try db.query(sql, arguments)
        try repositories.with(repoID) { git in
            var wanted: Set<String> = []
            for row in rows {
                let ref = "refs/heads/" + row.string(0)
                wanted.insert(ref)
                if let hex = row.optionalString(1), let oid = try? GitOID(hex: hex) {
                    if try git.referenceTarget(ref) != oid { try git.setReference(ref, to: oid) }
                } else {
                    try git.deleteReference(ref)
                }
            }
            if onlyChange == nil {
                for ref in try git.referenceNames(prefix: "refs/heads/") where !wanted.contains(ref) {
                    try git.deleteReference(ref)
                }
            }
        }
    }
}
