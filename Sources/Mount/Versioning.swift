import Foundation
import MesaAPI
import Store

/// What `editChange` switches a mount to.
public enum EditTarget: Sendable, Equatable {
    /// Show the bookmark's change; new work goes into a working change on top of it and
    /// checkpoints move the bookmark.
    case bookmark(String)
    /// Edit the change itself (jj `edit`): flushes amend it directly.
    case change(ChangeID)
}

extension RepoFileSystem {
    public func status() -> MountStatus {
        let pending = state.withLock { state in state.table.touched.keys.filter { !isLocalOnly($0) }.sorted() }
        return versions.withLock { version in
            MountStatus(org: org, repo: repo, mode: configuration.mode, bookmark: version.bookmark, baseChange: version.base,
                        workingChange: version.working, dirtyPaths: Array(pending.prefix(1000)), pendingUploads: pending.count,
                        lastError: version.lastError, lastFlush: version.lastFlush)
        }
    }

    /// Paths changed (written, created, removed, renamed) since the last call, sorted,
    /// and whether more changed than were recorded. For change notifications.
    public func drainChangedPaths() -> (paths: [String], overflowed: Bool) {
        state.withLock { state in
            defer {
                state.table.changeLog = []
                state.table.changeLogOverflowed = false
            }
            return (state.table.changeLog.sorted(), state.table.changeLogOverflowed)
        }
    }

    /// Saves the work: uploads everything, describes the working change with `message`
    /// (nil keeps its description), moves the target bookmark onto it with
    /// compare-and-swap, and makes the next write start a fresh working change.
    /// If someone else moved the bookmark, throws a `transient` error and changes
    /// nothing: the work stays in the working change, and the mount keeps writing there.
    public func checkpoint(message: String? = nil) throws(MesaError) -> CheckpointResult {
        guard !isReadOnly else { throw MesaError(.readOnly, "cannot checkpoint a read-only mount of \(org)/\(repo)") }
        return try flushLock.withLock { _ throws(MesaError) -> CheckpointResult in
            try flushUnlocked()
            let version = versions.withLock { $0 }
            if let working = version.working, let message {
                _ = try mesaErrors {
                    try backend.updateChange(org: org, repo: repo, id: working, message: message, files: [], expectedCommit: nil)
                }
            }
            let head = version.working ?? version.base
            if let bookmark = version.bookmark, head != version.bookmarkExpected {
                do {
                    _ = try backend.moveBookmark(org: org, repo: repo, name: bookmark, to: head,
                                                 expectedFrom: version.bookmarkExpected, allowBackwards: false)
                } catch {
                    let failure = MesaError.from(error)
                    guard failure.code == .conflict || failure.code == .invalidParams else { throw failure }
                    // Someone (the user, following the advice below) already put the
                    // bookmark on this work: nothing is left to move.
                    let current = try? backend.bookmark(org: org, repo: repo, name: bookmark)
                    if current?.changeID == head { return try finishCheckpoint(version, head: head) }
                    let seen = version.bookmarkExpected.map { "\($0)" } ?? "(unknown)"
                    throw MesaError(.conflict, "bookmark '\(bookmark)' of \(org)/\(repo) was moved by someone else since this mount last saw it at \(seen); nothing is lost: your work is saved in change \(head), which stays this mount's working change. Merge or move the bookmark, then checkpoint again. (\(failure.message))",
                                    errorClass: .transient)
                }
            }
            return try finishCheckpoint(version, head: head)
        }
    }

    /// The bookmark is on `head`: the next write starts a fresh working change on it.
    private func finishCheckpoint(_ version: VersionState, head: ChangeID) throws(MesaError) -> CheckpointResult {
        versions.withLock { state in
            state.base = head
            state.working = nil
            if state.bookmark != nil { state.bookmarkExpected = head }
        }
        try persistHeader()
        logger.info("checkpoint", metadata: ["repo": "\(org)/\(repo)", "change": "\(head)", "bookmark": "\(version.bookmark ?? "-")"])
        return CheckpointResult(savedChange: head, created: version.working != nil, bookmark: version.bookmark)
    }

    /// jj `new`: uploads, then makes the next write start a new change on top of the
    /// current one. Returns that parent. The bookmark does not move.
    @discardableResult
    public func newChange() throws(MesaError) -> ChangeID {
        guard !isReadOnly else { throw MesaError(.readOnly, "cannot start a change on a read-only mount") }
        return try flushLock.withLock { _ throws(MesaError) -> ChangeID in
            try flushUnlocked()
            let parent = versions.withLock { state -> ChangeID in
                if let working = state.working {
                    state.base = working
                    state.working = nil
                }
                return state.base
            }
            try persistHeader()
            return parent
        }
    }

    /// Switches the mount to another bookmark or change, after uploading pending work.
    /// The tree is re-read from the new revision; inode numbers of paths that still
    /// exist stay the same, and the kernel's caches are invalidated.
    public func editChange(_ target: EditTarget) throws(MesaError) -> MountStatus {
        try flushLock.withLock { _ throws(MesaError) in
            if !isReadOnly { try flushUnlocked() }
            var next = versions.withLock { $0 }
            switch target {
            case .bookmark(let name):
                let bookmark = try mesaErrors { try backend.bookmark(org: org, repo: repo, name: name) }
                next.bookmark = name
                next.bookmarkExpected = bookmark.changeID
                next.base = bookmark.changeID
                next.working = nil
            case .change(let id):
                next.bookmark = nil
                next.bookmarkExpected = nil
                if id.isRoot {
                    next.base = id
                    next.working = nil
                } else {
                    let detail = try mesaErrors { try backend.change(org: org, repo: repo, id: id) }
                    next.base = detail.change.parents.first ?? .root
                    next.working = isReadOnly ? nil : id
                    if isReadOnly { next.base = id }
                }
            }
            let shown = next.working ?? next.base
            if shown.isRoot {
                next.baseTime = Timestamp.now()
            } else {
                let change = try mesaErrors { try backend.change(org: org, repo: repo, id: shown) }
                next.baseTime = Timestamp(change.change.updatedAt)
            }
            next.lastError = nil
            versions.withLock { $0 = next }
            let (garbage, known) = state.withLock { state in
                state.readChange = shown
                state.baseTime = next.baseTime
                return Self.resetView(&state.table)
            }
            discard(garbage)
            // The view was re-read from the new revision (pending work was uploaded
            // above): records of the old view must not be replayed onto it after a restart.
            try persistHeader(keepRecords: false)
            invalidate(known)
            logger.info("switched revision", metadata: ["repo": "\(org)/\(repo)", "change": "\(shown)"])
            return status()
        }
    }

    /// Follows the target bookmark if someone else moved it. The daemon calls this
    /// periodically (or on a notification). The view switches, with kernel caches
    /// invalidated, only when the mount has no work of its own (no working change, no
    /// pending paths); otherwise it returns false and the next checkpoint reports the race.
    @discardableResult
    public func followBookmark() throws(MesaError) -> Bool {
        let version = versions.withLock { $0 }
        guard let name = version.bookmark else { return false }
        let bookmark = try mesaErrors { try backend.bookmark(org: org, repo: repo, name: name) }
        guard bookmark.changeID != version.bookmarkExpected else { return false }
        let pending = state.withLock { state in state.table.touched.keys.contains { !isLocalOnly($0) } }
        guard version.working == nil, !pending else { return false }
        _ = try editChange(.bookmark(name))
        return true
    }

    /// Forgets the listed tree so it is read again from the new revision. Nodes stay
    /// (unlinked) while the kernel references them, so their numbers can be revived.
    /// Returns data files to delete and the (ino, parent, name) the kernel may cache.
    private static func resetView(_ table: inout InodeTable) -> ([UInt64], [(UInt64, UInt64, String)]) {
        var known: [(UInt64, UInt64, String)] = []
        for ino in Array(table.nodes.keys) {
            guard var node = table.nodes[ino] else { continue }
            if node.lookups > 0 { known.append((ino, node.parent, node.name)) }
            if node.kind == .directory {
                node.staleChildren = (node.staleChildren ?? [:]).merging(node.children ?? [:]) { _, current in current }
                node.children = nil
            }
            if ino != InodeTable.rootIno { node.linked = false }
            table.nodes[ino] = node
        }
        table.touched = [:]
        table.localDirectories = []
        var garbage: [UInt64] = []
        for ino in Array(table.nodes.keys) { garbage += table.dropIfUnused(ino) }
        return (garbage, known)
    }

    private func invalidate(_ known: [(UInt64, UInt64, String)]) {
        guard let invalidator = invalidator.withLock({ $0 }) else { return }
        for (ino, parent, name) in known {
            invalidator.invalidateInode(ino)
            if ino != InodeTable.rootIno { invalidator.invalidateEntry(parent: parent, name: name) }
        }
    }

    /// Writes the current versioning state as the journal header (records kept unless
    /// `keepRecords` is false).
    private func persistHeader(keepRecords: Bool = true) throws(MesaError) {
        let header = currentHeader()
        try state.withLock { _ throws(MesaError) in
            do { try journal.rewrite(header: header, keep: { _, _ in keepRecords }) } catch {
                throw MesaError(.internal, "cannot write the journal header: \(error)")
            }
        }
    }
}
