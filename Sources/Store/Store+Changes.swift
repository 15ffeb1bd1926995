import Foundation
import Model

/// Internal view of a change row.
struct ChangeRow {
    let id: ChangeID
    let commit: GitOID?
    let parents: [ChangeID]
    let message: String
    let authors: [Signature]
    let committer: Signature
    let conflicts: [String]
    let createdAt: Date
    let updatedAt: Date

    static let columns = "change_id, commit_oid, parents, message, authors, committer, conflicts, created_at, updated_at"

    init(_ row: Row) {
        id = ChangeID(unchecked: row.string(0))
        commit = try? GitOID(hex: row.string(1))
        parents = (JSONColumn.decode([String].self, row.string(2)) ?? []).map { ChangeID(unchecked: $0) }
        message = row.string(3)
        authors = JSONColumn.decode([Signature].self, row.string(4)) ?? []
        committer = JSONColumn.decode(Signature.self, row.string(5)) ?? .default
        conflicts = JSONColumn.decode([String].self, row.string(6)) ?? []
        createdAt = Date(timeIntervalSince1970: row.double(7))
        updatedAt = Date(timeIntervalSince1970: row.double(8))
    }

    init(root: Void) {
        id = .root
        commit = nil
        parents = []
        message = ""
        authors = []
        committer = .default
        conflicts = []
        createdAt = Date(timeIntervalSince1970: 0)
        updatedAt = Date(timeIntervalSince1970: 0)
    }

    var publicChange: Change {
        Change(id: id, commitOID: commit?.hex ?? String(repeating: "0", count: 40), parents: parents, message: message,
               authors: authors, committer: committer, createdAt: createdAt, updatedAt: updatedAt, conflicts: conflicts)
    }
}

/// A file operation whose path has been validated and split.
struct ValidatedOperation {
    let components: [String]
    let operation: FileOperation

    static func validate(_ operations: [FileOperation]) throws -> [ValidatedOperation] {
        try operations.map { operation in
            let components = try Validation.pathComponents(operation.path)
            if case .upsert(_, let content, let mode) = operation, mode == .symlink {
                guard !content.isEmpty, !content.contains(0) else {
                    throw MesaError.invalid("invalid symlink '\(operation.path)': the target must be non-empty and contain no NUL byte")
                }
            }
            if case .upsertBlob(_, let oid, _) = operation {
                do { _ = try GitOID(hex: oid.lowercased()) } catch {
                    throw MesaError.invalid("file '\(operation.path)': blob id must be 40 hex characters (a git object id), got '\(oid.prefix(64))'")
                }
            }
            return ValidatedOperation(components: components, operation: operation)
        }
    }
}

extension Store {
    /// Above this many operations a change is written as one packfile, not loose objects.
    static let packThreshold = 128

    /// Creates a change on `base` (a change id or the virtual root) with the given edits.
    public func createChange(org slug: String, repo name: String, base: ChangeID, message: String = "",
                             authors: [Signature] = [], committer: Signature? = nil,
                             files: [FileOperation] = []) throws -> Change {
        let operations = try ValidatedOperation.validate(files)
        try (authors + [committer].compactMap { $0 }).forEach(Validation.signature)
        let (repo, baseRow) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            return (repo, try changeRow(repoID: repo.id, id: base, db))
        }
        let id = ChangeID.random()
        let now = Self.now()
        let authorList = authors.isEmpty ? [Signature.default] : authors
        let author = Self.stamped(authorList[0], now)
        let committerSignature = Self.stamped(committer ?? authorList[0], now)
        let commit = try writeSnapshot(repoID: repo.id, baseCommit: baseRow.commit, parents: baseRow.commit.map { [$0] } ?? [],
                                       operations: operations, author: author, committer: committerSignature,
                                       message: message, changeID: id)
        let change = Change(id: id, commitOID: commit.hex, parents: [base], message: message, authors: authorList,
                            committer: committerSignature, createdAt: now, updatedAt: now, conflicts: [])
        try withDatabase { db in
            try db.transaction {
                try db.query("""
                    INSERT INTO changes(repo_id, change_id, commit_oid, parents, message, authors, committer, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(repo.id), .text(id.rawValue), .text(commit.hex), .text(JSONColumn.encode([base.rawValue])),
                          .text(message), .text(JSONColumn.encode(authorList)), .text(JSONColumn.encode(committerSignature)),
                          .double(now.timeIntervalSince1970), .double(now.timeIntervalSince1970)])
                try db.query("INSERT OR IGNORE INTO commits(repo_id, commit_oid, change_id, created_at) VALUES (?, ?, ?, ?)",
                             [.text(repo.id), .text(commit.hex), .text(id.rawValue), .double(now.timeIntervalSince1970)])
                try recordRepoEvent(db, repo, .changeCreated, WebhookPayload.ChangeCreated(change: .init(change)))
            }
        }
        logger.debug("created change", metadata: ["repo": "\(slug)/\(name)", "change": "\(id)", "files": "\(files.count)"])
        return change
    }

    /// Amends a change: applies `files` to its current snapshot and/or replaces its
    /// message. The change id stays; a new commit replaces the old one, which remains
    /// recorded (and referenced) as a predecessor. With `expectedCommit`, the amend only
    /// happens if the change still sits at that commit (optimistic concurrency).
    /// `committer` replaces the committer identity (its date is always now).
    public func updateChange(org slug: String, repo name: String, id: ChangeID, message: String? = nil,
                             authors: [Signature]? = nil, committer newCommitter: Signature? = nil,
                             files: [FileOperation] = [], expectedCommit: String? = nil) throws -> Change {
        guard !id.isRoot else {
            throw MesaError.invalid("the virtual root change cannot be modified; create a change on top of it")
        }
        let operations = try ValidatedOperation.validate(files)
        try (authors ?? []).forEach(Validation.signature)
        if let newCommitter { try Validation.signature(newCommitter) }
        let expected = try expectedCommit.map { try GitOID(hex: $0) }
        // Without an expectation, a concurrent amend is retried on top of the new state.
        for _ in 0..<8 {
            let (repo, current) = try withDatabase { db in
                let repo = try repoRow(org: slug, name: name, db)
                return (repo, try changeRow(repoID: repo.id, id: id, db))
            }
            guard let currentCommit = current.commit else { throw MesaError.internal("change \(id) has no commit") }
            if let expected, expected != currentCommit {
                throw MesaError(.conflict, "change \(id) moved to commit \(currentCommit.hex) since \(expected.hex) was read; re-read it and retry")
            }
            let newMessage = message ?? current.message
            let newAuthors = authors.map { $0.isEmpty ? [Signature.default] : $0 } ?? current.authors
            let identity = newCommitter.map { Signature(name: $0.name, email: $0.email) }
                ?? Signature(name: current.committer.name, email: current.committer.email)
            if operations.isEmpty && newMessage == current.message && newAuthors == current.authors
                && identity.name == current.committer.name && identity.email == current.committer.email {
                return current.publicChange
            }
            let now = Self.now()
            let info = try repositories.with(repo.id) { try $0.commitInfo(currentCommit) }
            let author = Self.stamped(newAuthors.first ?? .default, current.createdAt)
            // A rewrite is committed now (as `git commit --amend` does); the author date stays.
            let committer = Signature(name: identity.name, email: identity.email, date: now)
            let commit = try writeSnapshot(repoID: repo.id, baseCommit: currentCommit, parents: info.parents,
                                           operations: operations, author: author, committer: committer,
                                           message: newMessage, changeID: id)
            // Paths rewritten by this amend are no longer conflicted.
            let touched = Set(operations.map { $0.components.joined(separator: "/") })
            let conflicts = current.conflicts.filter { !touched.contains($0) }
            let evolved = Change(id: id, commitOID: commit.hex, parents: current.parents, message: newMessage, authors: newAuthors,
                                 committer: committer, createdAt: current.createdAt, updatedAt: now, conflicts: conflicts)
            let swapped = try withDatabase { db in
                try db.transaction { () -> Bool in
                    try db.query("""
                        UPDATE changes SET commit_oid = ?, message = ?, authors = ?, committer = ?, conflicts = ?, updated_at = ?
                        WHERE repo_id = ? AND change_id = ? AND commit_oid = ?
                        """, [.text(commit.hex), .text(newMessage), .text(JSONColumn.encode(newAuthors)),
                              .text(JSONColumn.encode(committer)), .text(JSONColumn.encode(conflicts)),
                              .double(now.timeIntervalSince1970), .text(repo.id), .text(id.rawValue), .text(currentCommit.hex)])
                    guard db.changes == 1 else { return false }
                    try db.query("INSERT OR IGNORE INTO commits(repo_id, commit_oid, change_id, created_at) VALUES (?, ?, ?, ?)",
                                 [.text(repo.id), .text(commit.hex), .text(id.rawValue), .double(now.timeIntervalSince1970)])
                    // Bookmarks follow the change to its new commit.
                    try mirrorBookmarkRefs(repoID: repo.id, connection: db, onlyChange: id)
                    try recordChangeEvolved(db, repo, evolved, previous: currentCommit)
                    return true
                }
            }
            if swapped { return evolved }
            if expected != nil {
                throw MesaError(.conflict, "change \(id) was amended concurrently; re-read it and retry")
            }
        }
        throw MesaError(.conflict, "change \(id) is being amended by other writers; retry later")
    }

    /// One change with the paths it touches relative to its first parent.
    public func change(org slug: String, repo name: String, id: ChangeID) throws -> ChangeDetail {
        let (repo, row) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            return (repo, try changeRow(repoID: repo.id, id: id, db))
        }
        guard let commit = row.commit else { return ChangeDetail(change: row.publicChange, files: []) }
        let files = try repositories.with(repo.id) { git -> [String] in
            let info = try git.commitInfo(commit)
            let parentTree = try info.parents.first.map { try git.commitInfo($0).tree }
            return try TreeDiff.changedPaths(git, from: parentTree, to: info.tree)
        }
        return ChangeDetail(change: row.publicChange, files: files)
    }

    /// Changes, newest first: all of them, or those reachable from `bookmark`.
    public func listChanges(org slug: String, repo name: String, bookmark: String? = nil,
                            cursor: String? = nil, limit: Int? = nil) throws -> Page<Change> {
        let position = try Cursor.decode(cursor)
        let limit = try Cursor.limit(limit)
        guard let bookmark else {
            return try withDatabase { db in
                let repo = try repoRow(org: slug, name: name, db)
                let rows = try db.query("""
                    SELECT seq, \(ChangeRow.columns) FROM changes WHERE repo_id = ? AND (? = 0 OR seq < ?)
                    ORDER BY seq DESC LIMIT ?
                    """, [.text(repo.id), .int(position), .int(position), .int(limit + 1)])
                let items = rows.prefix(limit).map { ChangeRow(Self.dropFirst($0)).publicChange }
                let next = rows.count > limit ? Cursor.encode(rows[limit - 1].int(0)) : nil
                return Page(items: Array(items), nextCursor: next)
            }
        }
        let (repo, tip) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            let tip = try bookmarkChange(repoID: repo.id, name: bookmark, db)
            return (repo, try changeRow(repoID: repo.id, id: tip, db))
        }
        guard let start = tip.commit else { return Page(items: [], nextCursor: nil) }
        // Walk the commit graph and map each commit back to its change; older
        // snapshots of one change count once.
        var ordered: [ChangeID] = []
        var seen = Set<ChangeID>()
        let commitToChange = try commitIndex(repoID: repo.id)
        try repositories.with(repo.id) { git in
            try git.walk(from: start) { oid in
                if let change = commitToChange[oid.hex], seen.insert(change).inserted { ordered.append(change) }
                return ordered.count <= position + limit
            }
        }
        let window = ordered.dropFirst(position).prefix(limit)
        let items = try withDatabase { db in try window.map { try changeRow(repoID: repo.id, id: $0, db).publicChange } }
        let next = ordered.count > position + limit ? Cursor.encode(position + limit) : nil
        return Page(items: items, nextCursor: next)
    }

    /// Every commit this change has had, oldest first (its evolution).
    public func changeEvolution(org slug: String, repo name: String, id: ChangeID) throws -> [String] {
        try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            _ = try changeRow(repoID: repo.id, id: id, db)
            return try db.query("SELECT commit_oid FROM commits WHERE repo_id = ? AND change_id = ? ORDER BY rowid",
                                [.text(repo.id), .text(id.rawValue)]).map { $0.string(0) }
        }
    }

    // MARK: Internals

    func changeRow(repoID: String, id: ChangeID, _ db: SQLiteDatabase) throws -> ChangeRow {
        if id.isRoot { return ChangeRow(root: ()) }
        guard let row = try db.queryOne("SELECT \(ChangeRow.columns) FROM changes WHERE repo_id = ? AND change_id = ?",
                                        [.text(repoID), .text(id.rawValue)]) else {
            throw MesaError.notFound("change \(id) does not exist in this repository")
        }
        return ChangeRow(row)
    }

    private func commitIndex(repoID: String) throws -> [String: ChangeID] {
        try withDatabase { db in
            var index: [String: ChangeID] = [:]
            for row in try db.query("SELECT commit_oid, change_id FROM commits WHERE repo_id = ?", [.text(repoID)]) {
                index[row.string(0)] = ChangeID(unchecked: row.string(1))
            }
            return index
        }
    }

    /// Builds the tree for `operations` on top of `baseCommit` and writes the commit.
    /// Large edits go into one packfile; small ones become loose objects.
    func writeSnapshot(repoID: String, baseCommit: GitOID?, parents: [GitOID], operations: [ValidatedOperation],
                       author: Signature, committer: Signature, message: String, changeID: ChangeID) throws -> GitOID {
        // Every referenced blob must exist before anything is written, so a bad
        // reference changes nothing.
        try repositories.with(repoID) { git in
            for operation in operations {
                guard case .upsertBlob(_, let oid, _) = operation.operation else { continue }
                guard try isBlob(git, try GitOID(hex: oid.lowercased())) else {
                    throw MesaError.notFound("file '\(operation.components.joined(separator: "/"))': blob \(oid.lowercased()) is not a blob of this repository; upload it first (POST /v1/{org}/{repo}/blobs)")
                }
            }
        }
        func build(_ git: GitRepository) throws -> GitOID {
            let baseTree = try baseCommit.map { try git.commitInfo($0).tree }
            let editor = TreeEditor(repository: git, base: baseTree)
            for operation in operations {
                switch operation.operation {
                case .upsert(_, let content, let mode): try editor.upsert(operation.components, content: content, mode: mode)
                case .upsertBlob(_, let oid, let mode):
                    try editor.upsert(operation.components, blob: try GitOID(hex: oid.lowercased()), mode: mode)
                case .delete: try editor.delete(operation.components)
                }
            }
            let tree = try editor.write()
            return try git.writeCommit(tree: tree, parents: parents, author: author, committer: committer,
                                       message: message, changeID: changeID)
        }
        let commit: GitOID
        if operations.count >= Self.packThreshold {
            let git = try GitRepository.open(at: repositories.path(for: repoID))
            try git.attachMemoryPack(packConfig: repositories.packConfig)
            commit = try build(git)
            try git.flushMemoryPack()
        } else {
            commit = try repositories.with(repoID, build)
        }
        // Keep every snapshot reachable, so `git gc` never drops a change's history.
        try repositories.with(repoID) { try $0.setReference("refs/mesa/keep/" + commit.hex, to: commit) }
        return commit
    }

    static func stamped(_ signature: Signature, _ date: Date) -> Signature {
        Signature(name: signature.name, email: signature.email, date: signature.date ?? date)
    }
}
