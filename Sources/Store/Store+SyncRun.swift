import Foundation
import Model

/// The result of running a sync: per-ref stats, and why refs were rejected.
struct SyncOutcome {
    var refs: [SyncRefStat] = []
    var rejections: [String] = []

    mutating func add(_ name: String, before: GitOID?, after: GitOID, _ outcome: SyncRefOutcome, reason: String? = nil) {
        refs.append(SyncRefStat(name: name, before: before?.hex, after: after.hex, outcome: outcome))
        if let reason { rejections.append("\(name): \(reason)") }
    }
}

extension Store {
    /// Runs one sync to its end. Throws `RemoteFailure` (or `MesaError`) when nothing could be applied.
    func performSync(_ sync: Sync) throws -> SyncOutcome {
        let (url, auth) = try upstreamTarget(repoID: sync.repoID)
        // A handle of its own: a transfer takes long and must not hold a pooled one.
        let git = try GitRepository.open(at: repositories.path(for: sync.repoID))
        let session = GitRemoteSession(repository: git, url: url, auth: auth)
        switch sync.direction {
        case .pull: return try pull(repoID: sync.repoID, git: git, session: session, globs: sync.refGlobs)
        case .push: return try push(repoID: sync.repoID, git: git, session: session, globs: sync.refGlobs)
        }
    }

    static func shortName(_ ref: String) -> (name: String, isBranch: Bool) {
        ref.hasPrefix("refs/heads/") ? (String(ref.dropFirst(11)), true) : (String(ref.dropFirst(10)), false)
    }

    static func matches(_ glob: String?, _ name: String) -> Bool {
        guard let glob else { return true }
        return fnmatch(glob, name, 0) == 0
    }

    // MARK: Pull

    /// Pull: one pack fetch of the wanted refs, every new commit recorded as a change (git
    /// object ids kept), then — in one transaction, only after the fetch succeeded —
    /// branches fast-forward their bookmarks and new tags appear. Nothing is deleted.
    private func pull(repoID: String, git: GitRepository, session: GitRemoteSession, globs: SyncRefGlobs) throws -> SyncOutcome {
        var outcome = SyncOutcome()
        var wanted: [RemoteRef] = []
        for ref in try session.list(forPush: false) {
            let (name, isBranch) = Self.shortName(ref.name)
            if Self.matches(isBranch ? globs.branches : globs.tags, name) {
                wanted.append(ref)
            } else {
                outcome.add(ref.name, before: try git.referenceTarget(isBranch ? "refs/mesa/upstream/heads/" + name : ref.name),
                            after: ref.oid, .filtered)
            }
        }
        let missing = wanted.filter { !git.hasObject($0.oid) }
        if !missing.isEmpty { try session.download(missing.map(\.name)) }
        for ref in wanted where !git.hasObject(ref.oid) {
            throw RemoteFailure(message: "the upstream did not send the objects of \(ref.name) (\(ref.oid.hex))", transient: true)
        }
        // Commits not yet known: everything reachable from the wanted tips, minus what
        // any local ref already reaches.
        let tips = wanted.map { $0.peeled ?? $0.oid }.filter(git.isCommit)
        let newCommits = try git.commits(from: tips, hiding: ["refs/heads/*", "refs/tags/*", "refs/mesa/*"])
        let imported = try newCommits.map(git.importedCommit)
        let importTime = Self.now()

        try withDatabase { db in
            try db.transaction {
                try recordImported(imported, repoID: repoID, at: importTime, db)
                let bookmarkNames = Set(try db.query("SELECT name FROM bookmarks WHERE repo_id = ?", [.text(repoID)]).map { $0.string(0) })
                var moved: [ChangeID] = []
                for ref in wanted {
                    let (name, isBranch) = Self.shortName(ref.name)
                    if isBranch {
                        if let change = try pullBranch(name, to: ref.oid, repoID: repoID, git: git, existing: bookmarkNames,
                                                       outcome: &outcome, db) {
                            moved.append(change)
                        }
                    } else {
                        let before = try git.referenceTarget(ref.name)
                        if before == ref.oid {
                            outcome.add(ref.name, before: before, after: ref.oid, .unchanged)
                        } else if before != nil {
                            outcome.add(ref.name, before: before, after: ref.oid, .rejected,
                                        reason: "the tag differs from the upstream's and tags never move")
                        } else {
                            try git.setReference(ref.name, to: ref.oid)
                            outcome.add(ref.name, before: nil, after: ref.oid, .updated)
                        }
                    }
                }
                for change in moved { try mirrorBookmarkRefs(repoID: repoID, connection: db, onlyChange: change) }
            }
        }
        logger.info("pulled from upstream", metadata: ["repo": "\(repoID)", "commits": "\(imported.count)",
                                                       "updated": "\(outcome.refs.filter { $0.outcome == .updated }.count)"])
        return outcome
    }

    /// Inserts a change (and its commit) for every imported commit, parents first.
    private func recordImported(_ commits: [ImportedCommit], repoID: String, at now: Date, _ db: SQLiteDatabase) throws {
        var changeOf: [GitOID: ChangeID] = [:]
        func change(of commit: GitOID) throws -> ChangeID {
            if let known = changeOf[commit] { return known }
            let row = try db.queryOne("SELECT change_id FROM commits WHERE repo_id = ? AND commit_oid = ?",
                                      [.text(repoID), .text(commit.hex)])
            return row.map { ChangeID(unchecked: $0.string(0)) } ?? .root
        }
        for commit in commits {
            if try db.queryOne("SELECT 1 FROM commits WHERE repo_id = ? AND commit_oid = ?",
                               [.text(repoID), .text(commit.oid.hex)]) != nil { continue }
            // The commit's own change id when it has one no other change uses, else jj's derivation.
            var id = ChangeID.derived(fromCommit: commit.oid)
            if let header = commit.changeIDHeader, !header.isRoot,
               try db.queryOne("SELECT 1 FROM changes WHERE repo_id = ? AND change_id = ?", [.text(repoID), .text(header.rawValue)]) == nil {
                id = header
            }
            if try db.queryOne("SELECT 1 FROM changes WHERE repo_id = ? AND change_id = ?", [.text(repoID), .text(id.rawValue)]) != nil {
                // Only a second commit with the same derived id (practically impossible) gets here.
                id = .random()
            }
            let parents = try commit.parents.isEmpty ? [ChangeID.root] : commit.parents.map(change(of:))
            let created = commit.author.date ?? now, updated = commit.committer.date ?? now
            try db.query("""
                INSERT INTO changes(repo_id, change_id, commit_oid, parents, message, authors, committer, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(repoID), .text(id.rawValue), .text(commit.oid.hex), .text(JSONColumn.encode(parents.map(\.rawValue))),
                      .text(commit.message), .text(JSONColumn.encode([commit.author])), .text(JSONColumn.encode(commit.committer)),
                      .double(created.timeIntervalSince1970), .double(updated.timeIntervalSince1970)])
            try db.query("INSERT INTO commits(repo_id, commit_oid, change_id, created_at) VALUES (?, ?, ?, ?)",
                         [.text(repoID), .text(commit.oid.hex), .text(id.rawValue), .double(now.timeIntervalSince1970)])
            changeOf[commit.oid] = id
        }
    }

    /// Fast-forwards (or creates) the bookmark of upstream branch `name`. Returns the change
    /// the bookmark now names when it moved.
    private func pullBranch(_ name: String, to commit: GitOID, repoID: String, git: GitRepository, existing: Set<String>,
                            outcome: inout SyncOutcome, _ db: SQLiteDatabase) throws -> ChangeID? {
        let ref = "refs/heads/" + name
        guard let row = try db.queryOne("SELECT change_id FROM commits WHERE repo_id = ? AND commit_oid = ?",
                                        [.text(repoID), .text(commit.hex)]) else {
            outcome.add(ref, before: nil, after: commit, .rejected, reason: "the upstream branch does not point at a commit")
            return nil
        }
        let target = ChangeID(unchecked: row.string(0))
        let current = try db.queryOne("""
            SELECT b.change_id, c.commit_oid FROM bookmarks b LEFT JOIN changes c ON c.repo_id = b.repo_id AND c.change_id = b.change_id
            WHERE b.repo_id = ? AND b.name = ?
            """, [.text(repoID), .text(name)])
        // The tracking ref keeps imported history reachable whatever happens to the bookmark.
        func track() throws {
            let tracking = "refs/mesa/upstream/heads/" + name
            let previous = try git.referenceTarget(tracking)
            let forward = try previous.map { try git.isDescendant(commit, of: $0) } ?? true
            if forward {
                try git.setReference(tracking, to: commit)
            }
        }
        guard let current else {
            do {
                try Validation.bookmarkName(name)
            } catch {
                outcome.add(ref, before: nil, after: commit, .rejected, reason: error.message)
                return nil
            }
            if let clash = existing.first(where: { $0.hasPrefix(name + "/") || name.hasPrefix($0 + "/") }) {
                outcome.add(ref, before: nil, after: commit, .rejected, reason: "clashes with bookmark '\(clash)'")
                return nil
            }
            try db.query("INSERT INTO bookmarks(repo_id, name, change_id) VALUES (?, ?, ?)",
                         [.text(repoID), .text(name), .text(target.rawValue)])
            try track()
            outcome.add(ref, before: nil, after: commit, .updated)
            return target
        }
        let before = current.optionalString(1).flatMap { try? GitOID(hex: $0) }
        if before == commit {
            try track()
            outcome.add(ref, before: before, after: commit, .unchanged)
            return nil
        }
        if let before, try !git.isDescendant(commit, of: before) {
            if try git.isDescendant(before, of: commit) {
                // The bookmark is ahead of the upstream (local work not pushed yet).
                try track()
                outcome.add(ref, before: before, after: commit, .unchanged)
            } else {
                outcome.add(ref, before: before, after: commit, .rejected,
                            reason: "not a fast-forward: the bookmark and the upstream branch have diverged")
            }
            return nil
        }
        try db.query("UPDATE bookmarks SET change_id = ? WHERE repo_id = ? AND name = ?",
                     [.text(target.rawValue), .text(repoID), .text(name)])
        try track()
        outcome.add(ref, before: before, after: commit, .updated)
        return target
    }

    // MARK: Push

    /// Push: bookmarks to upstream branches and tags the upstream lacks, fast-forward only.
    /// A ref whose upstream history the store does not contain is `rejected`, never forced.
    private func push(repoID: String, git: GitRepository, session: GitRemoteSession, globs: SyncRefGlobs) throws -> SyncOutcome {
        var outcome = SyncOutcome()
        let remote = Dictionary(try session.list(forPush: true).map { ($0.name, $0.oid) }, uniquingKeysWith: { a, _ in a })
        let bookmarks = try withDatabase { db in
            try db.query("""
                SELECT b.name, c.commit_oid FROM bookmarks b JOIN changes c ON c.repo_id = b.repo_id AND c.change_id = b.change_id
                WHERE b.repo_id = ? ORDER BY b.name
                """, [.text(repoID)]).compactMap { row in (try? GitOID(hex: row.string(1))).map { ("refs/heads/" + row.string(0), $0) } }
        }
        let tags = try git.referenceNames(prefix: "refs/tags/").compactMap { name in try git.referenceTarget(name).map { (name, $0) } }
        var specs: [String] = []
        var pending: [(String, GitOID?, GitOID)] = []
        for (ref, local) in bookmarks + tags {
            let (name, isBranch) = Self.shortName(ref)
            let before = remote[ref]
            if !Self.matches(isBranch ? globs.branches : globs.tags, name) {
                outcome.add(ref, before: before, after: local, .filtered)
            } else if before == local {
                outcome.add(ref, before: before, after: local, .unchanged)
            } else if let before, try !isBranch || !git.hasObject(before) || !git.isDescendant(local, of: before) {
                let reason = isBranch ? "not a fast-forward: the upstream branch has commits the bookmark does not contain (pull first)"
                    : "the upstream tag differs and tags never move"
                outcome.add(ref, before: before, after: local, .rejected, reason: reason)
            } else {
                specs.append("\(ref):\(ref)")
                pending.append((ref, before, local))
            }
        }
        let refused = specs.isEmpty ? [:] : try session.push(specs)
        for (ref, before, local) in pending {
            if let reason = refused[ref] {
                outcome.add(ref, before: before, after: local, .rejected, reason: "the upstream refused it: \(reason)")
            } else {
                outcome.add(ref, before: before, after: local, .updated)
                let (name, isBranch) = Self.shortName(ref)
                if isBranch { try git.setReference("refs/mesa/upstream/heads/" + name, to: local) }
            }
        }
        logger.info("pushed to upstream", metadata: ["repo": "\(repoID)", "refs": "\(pending.count - refused.count)"])
        return outcome
    }
}
