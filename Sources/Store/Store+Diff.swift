import CGit2
import Foundation
import Model

extension Store {
    /// At most this many entries carry hunks; the rest are cut and `truncated` is set.
    public static let diffEntryLimit = 5000

    /// What changed from `base` to `head`: renames detected, line hunks for text,
    /// a binary marker for binary files.
    public func diff(org slug: String, repo name: String, base: ChangeID, head: ChangeID) throws -> Diff {
        let (repo, baseRow, headRow) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            return (repo, try changeRow(repoID: repo.id, id: base, db), try changeRow(repoID: repo.id, id: head, db))
        }
        return try repositories.with(repo.id) { git in
            let diff = try TreeDiff(git, from: baseRow.commit.map { try git.commitInfo($0).tree },
                                    to: headRow.commit.map { try git.commitInfo($0).tree }, renames: true)
            let (entries, truncated) = try diff.entries(limit: Self.diffEntryLimit)
            let stats = DiffStats(entries: entries.count, additions: entries.reduce(0) { $0 + $1.additions },
                                  deletions: entries.reduce(0) { $0 + $1.deletions })
            return Diff(base: base, head: head, entries: entries, stats: stats, truncated: truncated)
        }
    }

    /// The same difference as one unified patch, as `git diff` prints it.
    public func diffPatch(org slug: String, repo name: String, base: ChangeID, head: ChangeID) throws -> String {
        let (repo, baseRow, headRow) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            return (repo, try changeRow(repoID: repo.id, id: base, db), try changeRow(repoID: repo.id, id: head, db))
        }
        return try repositories.with(repo.id) { git in
            try TreeDiff(git, from: baseRow.commit.map { try git.commitInfo($0).tree },
                         to: headRow.commit.map { try git.commitInfo($0).tree }, renames: true).patchText()
        }
    }
}

/// A libgit2 tree-to-tree diff (nil tree = empty).
final class TreeDiff {
    private var diff: OpaquePointer?

    init(_ git: GitRepository, from old: GitOID?, to new: GitOID?, renames: Bool) throws {
        let oldTree = try old.map { try Self.lookupTree(git, $0) }
        defer { git_tree_free(oldTree ?? nil) }
        let newTree = try new.map { try Self.lookupTree(git, $0) }
        defer { git_tree_free(newTree ?? nil) }
        var options = git_diff_options()
        git_diff_options_init(&options, UInt32(GIT_DIFF_OPTIONS_VERSION))
        try gitCheck(git_diff_tree_to_tree(&diff, git.handle, oldTree ?? nil, newTree ?? nil, &options), "cannot diff trees")
        if renames {
            var find = git_diff_find_options()
            git_diff_find_options_init(&find, UInt32(GIT_DIFF_FIND_OPTIONS_VERSION))
            find.flags = GIT_DIFF_FIND_RENAMES.rawValue
            try gitCheck(git_diff_find_similar(diff, &find), "cannot detect renames")
        }
    }

    deinit { git_diff_free(diff) }

    /// Paths that differ (new path for renames), sorted.
    static func changedPaths(_ git: GitRepository, from old: GitOID?, to new: GitOID) throws -> [String] {
        let diff = try TreeDiff(git, from: old, to: new, renames: false)
        var paths: [String] = []
        for index in 0..<git_diff_num_deltas(diff.diff) {
            guard let delta = git_diff_get_delta(diff.diff, index)?.pointee else { continue }
            let file = delta.status == GIT_DELTA_DELETED ? delta.old_file : delta.new_file
            paths.append(String(cString: file.path))
        }
        return paths.sorted()
    }

    func entries(limit: Int) throws -> ([DiffEntry], Bool) {
        let count = git_diff_num_deltas(diff)
        var entries: [DiffEntry] = []
        for index in 0..<min(count, limit) {
            guard let delta = git_diff_get_delta(diff, index)?.pointee else { continue }
            let status: DiffStatus
            switch delta.status {
            case GIT_DELTA_ADDED: status = .added
            case GIT_DELTA_DELETED: status = .deleted
            case GIT_DELTA_RENAMED: status = .renamed
            default: status = .modified
            }
            let newPath = String(cString: delta.new_file.path)
            let oldPath = String(cString: delta.old_file.path)
            var patch: OpaquePointer?
            try gitCheck(git_patch_from_diff(&patch, diff, index), "cannot diff \(newPath)")
            defer { git_patch_free(patch) }
            // The patch loads both sides, which is what sets the binary flag.
            let flags = git_patch_get_delta(patch)?.pointee.flags ?? delta.flags
            let binary = flags & GIT_DIFF_FLAG_BINARY.rawValue != 0
            var hunks: [DiffHunk] = []
            var additions = 0, deletions = 0
            if !binary {
                for hunkIndex in 0..<git_patch_num_hunks(patch) {
                    var hunkPointer: UnsafePointer<git_diff_hunk>?
                    var lineCount = 0
                    try gitCheck(git_patch_get_hunk(&hunkPointer, &lineCount, patch, hunkIndex), "cannot read hunk")
                    guard let hunk = hunkPointer?.pointee else { continue }
                    var lines: [DiffLine] = []
                    for lineIndex in 0..<lineCount {
                        var linePointer: UnsafePointer<git_diff_line>?
                        try gitCheck(git_patch_get_line_in_hunk(&linePointer, patch, hunkIndex, lineIndex), "cannot read line")
                        guard let line = linePointer?.pointee else { continue }
                        var text = String(decoding: UnsafeRawBufferPointer(start: line.content, count: line.content_len), as: UTF8.self)
                        if text.hasSuffix("\n") { text.removeLast() }
                        let kind: DiffLineKind
                        switch UInt8(bitPattern: line.origin) {
                        case UInt8(ascii: "+"): kind = .added; additions += 1
                        case UInt8(ascii: "-"): kind = .deleted; deletions += 1
                        case UInt8(ascii: " "): kind = .context
                        default:
                            kind = .annotation
                            // "\ No newline at end of file" arrives wrapped in newlines.
                            text = text.trimmingCharacters(in: .newlines)
                        }
                        lines.append(DiffLine(kind: kind, text: text))
                    }
                    hunks.append(DiffHunk(oldStart: Int(hunk.old_start), oldLines: Int(hunk.old_lines),
                                          newStart: Int(hunk.new_start), newLines: Int(hunk.new_lines), lines: lines))
                }
            }
            entries.append(DiffEntry(
                path: status == .deleted ? oldPath : newPath,
                oldPath: status == .renamed ? oldPath : nil,
                status: status, isBinary: binary, hunks: binary ? nil : hunks,
                additions: additions, deletions: deletions,
                sizeBytes: Int(status == .deleted ? delta.old_file.size : delta.new_file.size)))
        }
        return (entries, count > limit)
    }

    func patchText() throws -> String {
        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        try gitCheck(git_diff_to_buf(&buffer, diff, GIT_DIFF_FORMAT_PATCH), "cannot format patch")
        guard let pointer = buffer.ptr else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: buffer.size), as: UTF8.self)
    }

    private static func lookupTree(_ git: GitRepository, _ oid: GitOID) throws -> OpaquePointer? {
        var id = oid.raw
        var tree: OpaquePointer?
        try gitCheck(git_tree_lookup(&tree, git.handle, &id), "cannot read tree \(oid.hex)")
        return tree
    }
}
