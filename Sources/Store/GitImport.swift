import CGit2
import Foundation
import Model

/// What the store needs of a git commit to record it as a change.
struct ImportedCommit {
    let oid: GitOID
    let parents: [GitOID]
    let author: Signature
    let committer: Signature
    let message: String
    /// jj's / mesa's `change-id` header, when the commit has a valid one.
    let changeIDHeader: ChangeID?
}

extension GitRepository {
    func hasObject(_ oid: GitOID) -> Bool {
        var odb: OpaquePointer?
        guard git_repository_odb(&odb, handle) == 0 else { return false }
        defer { git_odb_free(odb) }
        var id = oid.raw
        return git_odb_exists(odb, &id) == 1
    }

    func isCommit(_ oid: GitOID) -> Bool {
        var id = oid.raw
        var object: OpaquePointer?
        guard git_object_lookup(&object, handle, &id, GIT_OBJECT_COMMIT) == 0 else { return false }
        git_object_free(object)
        return true
    }

    /// Commits reachable from `tips` but not from any ref matching `hiding`, parents
    /// before children (so every parent is recorded before its child).
    func commits(from tips: [GitOID], hiding globs: [String]) throws -> [GitOID] {
        var walker: OpaquePointer?
        try gitCheck(git_revwalk_new(&walker, handle), "cannot walk history")
        defer { git_revwalk_free(walker) }
        git_revwalk_sorting(walker, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_REVERSE.rawValue)
        for tip in tips {
            var id = tip.raw
            try gitCheck(git_revwalk_push(walker, &id), "cannot walk history from \(tip.hex)")
        }
        for glob in globs {
            let result = git_revwalk_hide_glob(walker, glob)
            if result != GIT_ENOTFOUND.rawValue { try gitCheck(result, "cannot walk history") }
        }
        var result: [GitOID] = []
        var oid = git_oid()
        while true {
            let status = git_revwalk_next(&oid, walker)
            if status == GIT_ITEROVER.rawValue { break }
            try gitCheck(status, "cannot walk history")
            result.append(GitOID(oid))
        }
        return result
    }

    func importedCommit(_ oid: GitOID) throws -> ImportedCommit {
        var id = oid.raw
        var commit: OpaquePointer?
        try gitCheck(git_commit_lookup(&commit, handle, &id), "cannot read commit \(oid.hex)")
        defer { git_commit_free(commit) }
        var parents: [GitOID] = []
        for index in 0..<git_commit_parentcount(commit) {
            if let parent = git_commit_parent_id(commit, index) { parents.append(GitOID(parent.pointee)) }
        }
        func signature(_ pointer: UnsafePointer<git_signature>?) -> Signature {
            guard let value = pointer?.pointee else { return .default }
            return Signature(name: value.name.map { String(cString: $0) } ?? "", email: value.email.map { String(cString: $0) } ?? "",
                             date: Date(timeIntervalSince1970: TimeInterval(value.when.time)))
        }
        var header = git_buf()
        defer { git_buf_dispose(&header) }
        var changeID: ChangeID?
        if git_commit_header_field(&header, commit, "change-id") == 0, let pointer = header.ptr {
            changeID = try? ChangeID(String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return ImportedCommit(oid: oid, parents: parents, author: signature(git_commit_author(commit)),
                              committer: signature(git_commit_committer(commit)),
                              message: git_commit_message(commit).map { String(cString: $0) } ?? "",
                              changeIDHeader: changeID)
    }
}

extension ChangeID {
    /// The change id of a git commit without a `change-id` header, derived as jj derives it
    /// (bytes 4…19 of the commit id in reverse order, each byte's bits reversed, in
    /// reverse hex), so jj and mesa name an imported commit alike and a re-import finds
    /// the same id.
    static func derived(fromCommit oid: GitOID) -> ChangeID {
        let bytes = withUnsafeBytes(of: oid.raw.id) { Array($0) }
        var text = ""
        text.reserveCapacity(32)
        for byte in bytes[4..<20].reversed() {
            var reversed: UInt8 = 0
            for bit in 0..<8 where byte & (1 << bit) != 0 { reversed |= 1 << (7 - bit) }
            text.append(digits[Int(reversed >> 4)])
            text.append(digits[Int(reversed & 0x0F)])
        }
        return ChangeID(unchecked: text)
    }
}
