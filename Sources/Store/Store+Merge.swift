import CGit2
import Foundation
import Model

extension Store {
    /// Merges bookmark `source` into bookmark `target` and moves `target` onto the result.
    /// Diverged histories get an explicit merge commit (a new change with both parents);
    /// when `source` is already contained in `target` nothing happens (`no_op`).
    /// Textual conflicts fail with the conflicting paths and change nothing, unless
    /// `allowConflicted`: then the merge commit keeps conflict markers in those paths and
    /// the change records them as conflicted.
    public func mergeBookmark(org slug: String, repo name: String, target: String, source: String,
                              message: String? = nil, allowConflicted: Bool = false, deleteSource: Bool = false,
                              authors: [Signature] = []) throws -> MergeResult {
        try authors.forEach(Validation.signature)
        if deleteSource && source == target {
            throw MesaError.invalid("cannot merge bookmark '\(source)' into itself with deleteSource: that would only delete it")
        }
        let (repo, targetRow, sourceRow) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            let targetRow = try changeRow(repoID: repo.id, id: try bookmarkChange(repoID: repo.id, name: target, db), db)
            let sourceRow = try changeRow(repoID: repo.id, id: try bookmarkChange(repoID: repo.id, name: source, db), db)
            return (repo, targetRow, sourceRow)
        }
        if deleteSource && source == repo.defaultBookmark {
            throw MesaError.invalid("cannot delete source bookmark '\(source)': it is the default bookmark")
        }
        let alreadyMerged: Bool = try {
            guard let sourceCommit = sourceRow.commit else { return true }
            guard let targetCommit = targetRow.commit else { return false }
            if sourceCommit == targetCommit { return true }
            return try repositories.with(repo.id) { try $0.isDescendant(targetCommit, of: sourceCommit) }
        }()
        if alreadyMerged {
            if deleteSource { try deleteBookmark(org: slug, repo: name, bookmark: source) }
            return MergeResult(mergeType: .noOp, changeID: targetRow.id, commitOID: targetRow.commit?.hex, conflicts: [],
                               target: target, source: source, sourceDeleted: deleteSource)
        }
        guard let sourceCommit = sourceRow.commit else { throw MesaError.internal("unreachable: source at root") }

        let now = Self.now()
        let authorList = authors.isEmpty ? [Signature.default] : authors
        let author = Self.stamped(authorList[0], now)
        let id = ChangeID.random()
        let text = message ?? "Merge bookmark '\(source)' into '\(target)'"
        let (commit, conflicts) = try repositories.with(repo.id) { git -> (GitOID, [String]) in
            let merged = try MergedTree(git, target: targetRow.commit, source: sourceCommit, materializeConflicts: allowConflicted)
            if !merged.conflicts.isEmpty && !allowConflicted {
                throw MesaError(.mergeConflict,
                                 "merging '\(source)' into '\(target)' conflicts in \(merged.conflicts.count) path(s): \(merged.conflicts.prefix(10).joined(separator: ", ")); resolve them in '\(source)' or pass allowConflicted",
                                 paths: merged.conflicts)
            }
            let parents = [targetRow.commit, sourceCommit].compactMap { $0 }
            let commit = try git.writeCommit(tree: merged.tree, parents: parents, author: author, committer: author,
                                             message: text, changeID: id)
            try git.setReference("refs/mesa/keep/" + commit.hex, to: commit)
            return (commit, merged.conflicts)
        }
        try withDatabase { db in
            try db.transaction {
                try db.query("""
                    INSERT INTO changes(repo_id, change_id, commit_oid, parents, message, authors, committer, conflicts, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(repo.id), .text(id.rawValue), .text(commit.hex),
                          .text(JSONColumn.encode([targetRow.id.rawValue, sourceRow.id.rawValue])), .text(text),
                          .text(JSONColumn.encode(authorList)), .text(JSONColumn.encode(author)),
                          .text(JSONColumn.encode(conflicts)), .double(now.timeIntervalSince1970), .double(now.timeIntervalSince1970)])
                try db.query("INSERT OR IGNORE INTO commits(repo_id, commit_oid, change_id, created_at) VALUES (?, ?, ?, ?)",
                             [.text(repo.id), .text(commit.hex), .text(id.rawValue), .double(now.timeIntervalSince1970)])
                try db.query("UPDATE bookmarks SET change_id = ? WHERE repo_id = ? AND name = ? AND change_id = ?",
                             [.text(id.rawValue), .text(repo.id), .text(target), .text(targetRow.id.rawValue)])
                guard db.changes == 1 else {
                    throw MesaError(.conflict, "bookmark '\(target)' moved while merging; re-read it and retry the merge")
                }
                if deleteSource {
                    try db.query("DELETE FROM bookmarks WHERE repo_id = ? AND name = ?", [.text(repo.id), .text(source)])
                    try repositories.with(repo.id) { try $0.deleteReference("refs/heads/" + source) }
                }
                try mirrorBookmarkRefs(repoID: repo.id, connection: db, onlyChange: id)
                try recordRepoEvent(db, repo, .bookmarkMerged, WebhookPayload.BookmarkMerged(
                    bookmark: .init(try bookmark(repo: repo, name: target, db)), source: source, mergeType: "merge_commit",
                    isConflicted: !conflicts.isEmpty, sourceDeleted: deleteSource))
                if deleteSource {
                    try recordBookmarkEvent(db, repo, .bookmarkDeleted, Bookmark(name: source, changeID: sourceRow.id,
                                                                                 commitOID: sourceCommit.hex, isDefault: false))
                }
            }
        }
        logger.info("merged bookmarks", metadata: ["repo": "\(slug)/\(name)", "source": "\(source)", "target": "\(target)"])
        return MergeResult(mergeType: .mergeCommit, changeID: id, commitOID: commit.hex, conflicts: conflicts,
                           target: target, source: source, sourceDeleted: deleteSource)
    }
}

/// The three-way merge of two commits' trees. Conflicted paths are written with
/// conflict markers (so the tree is still a valid git tree) and listed in `conflicts`.
struct MergedTree {
    let tree: GitOID
    let conflicts: [String]

    /// Without `materializeConflicts`, conflicted paths are only listed (the caller refuses
    /// the merge); with it, they are written with markers into `tree`.
    init(_ git: GitRepository, target: GitOID?, source: GitOID, materializeConflicts: Bool) throws {
        let base = try target.flatMap { try git.mergeBase($0, source) }
        let ancestorTree = try base.map { try Self.tree(git, of: $0) } ?? nil
        defer { git_tree_free(ancestorTree) }
        let ourTree = try target.map { try Self.tree(git, of: $0) } ?? nil
        defer { git_tree_free(ourTree) }
        let theirTree = try Self.tree(git, of: source)
        defer { git_tree_free(theirTree) }

        var options = git_merge_options()
        git_merge_options_init(&options, UInt32(GIT_MERGE_OPTIONS_VERSION))
        var index: OpaquePointer?
        try gitCheck(git_merge_trees(&index, git.handle, ancestorTree, ourTree, theirTree, &options), "cannot merge trees")
        defer { git_index_free(index) }

        var resolved: [(path: String, content: [UInt8], mode: UInt32)] = []
        if git_index_has_conflicts(index) != 0 {
            var iterator: OpaquePointer?
            try gitCheck(git_index_conflict_iterator_new(&iterator, index), "cannot read conflicts")
            defer { git_index_conflict_iterator_free(iterator) }
            var ancestor: UnsafePointer<git_index_entry>?
            var ours: UnsafePointer<git_index_entry>?
            var theirs: UnsafePointer<git_index_entry>?
            while git_index_conflict_next(&ancestor, &ours, &theirs, iterator) == 0 {
                guard let any = ours ?? theirs ?? ancestor else { continue }
                let path = String(cString: any.pointee.path)
                let mode = (ours ?? theirs)?.pointee.mode ?? 0o100644
                var result = git_merge_file_result()
                var content: [UInt8] = []
                if git_merge_file_from_index(&result, git.handle, ancestor, ours, theirs, nil) == 0, let pointer = result.ptr {
                    content = Array(UnsafeRawBufferPointer(start: pointer, count: result.len))
                    git_merge_file_result_free(&result)
                } else if let side = ours ?? theirs {
                    content = try git.readBlob(GitOID(side.pointee.id))
                }
                resolved.append((path, content, mode == 0o100755 ? mode : 0o100644))
            }
            try gitCheck(git_index_conflict_cleanup(index), "cannot clear conflicts")
        }
        var treeID = git_oid()
        try gitCheck(git_index_write_tree_to(&treeID, index, git.handle), "cannot write merged tree")
        var tree = GitOID(treeID)
        let conflicts = resolved.map(\.path).sorted()
        if !resolved.isEmpty && materializeConflicts {
            let editor = TreeEditor(repository: git, base: tree)
            do {
                for item in resolved {
                    try editor.upsert(item.path.split(separator: "/").map(String.init), content: item.content,
                                      mode: item.mode == 0o100755 ? .executable : .regular)
                }
            } catch let error as MesaError where error.code == .invalidArgument {
                // A path that is a file on one side and a directory on the other has no
                // single file to hold the markers.
                throw MesaError(.mergeConflict, "the conflicts in \(conflicts.prefix(10).joined(separator: ", ")) cannot be written with conflict markers (\(error.message)); resolve them in the source bookmark",
                                 paths: conflicts)
            }
            tree = try editor.write()
        }
        self.tree = tree
        self.conflicts = conflicts
    }

    private static func tree(_ git: GitRepository, of commit: GitOID) throws -> OpaquePointer? {
        let treeOID = try git.commitInfo(commit).tree
        var id = treeOID.raw
        var tree: OpaquePointer?
        try gitCheck(git_tree_lookup(&tree, git.handle, &id), "cannot read tree \(treeOID.hex)")
        return tree
    }
}
