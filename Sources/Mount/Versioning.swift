import Foundation
import MesaIgnore
import MesaAPI
import Model

/// What `followBookmark` did.
public enum FollowOutcome: Sendable, Equatable {
    /// The mount shows a change, not a bookmark: it never moves.
    case pinned
    /// The bookmark is where the mount last saw it.
    case unchanged
    /// The view switched from `from` to the bookmark's new tip `to`.
    case moved(bookmark: String, from: ChangeID?, to: ChangeID)
    /// The bookmark moved to `at`, but the mount has work of its own (`reason`): it stays
    /// put, and its next checkpoint reports the conflict.
    case heldBack(bookmark: String, at: ChangeID, reason: String)
}

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
        let rules = ignoreRules(mayBlock: false)
        let pending = state.withLock { state in
            state.table.touched.keys.filter { !Self.isLocalOnly(state.table, $0, rules: rules) }.sorted()
        }
        let prefetch = prefetchProgress
        let version = revision.current
        return MountStatus(org: org, repo: repo, mode: isReadOnly ? .ro : configuration.mode, bookmark: version.bookmark, baseChange: version.base,
                           workingChange: version.working, dirtyPaths: Array(pending.prefix(1000)), pendingUploads: pending.count,
                           lastError: version.lastError, lastFlush: version.lastFlush, prefetch: prefetch)
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
            let result = try revision.checkpoint(message: message)
            try persistHeader()
            logger.info("checkpoint", metadata: ["repo": "\(org)/\(repo)", "change": "\(result.savedChange)",
                                                 "bookmark": "\(result.bookmark ?? "-")"])
            return result
        }
    }

    /// jj `new`: uploads, then makes the next write start a new change on top of the
    /// current one. Returns that parent. The bookmark does not move.
    @discardableResult
    public func newChange() throws(MesaError) -> ChangeID {
        guard !isReadOnly else { throw MesaError(.readOnly, "cannot start a change on a read-only mount") }
        return try flushLock.withLock { _ throws(MesaError) -> ChangeID in
            try flushUnlocked()
            let parent = revision.startNewChange()
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
            let next = try revision.switchTo(target, readOnly: isReadOnly)
            let shown = next.working ?? next.base
            let (garbage, known) = state.withLock { state in
                state.readChange = shown
                state.baseTime = next.baseTime
                state.viewGeneration += 1
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

    /// Follows the target bookmark when someone else moved it (another mount's
    /// checkpoint, the SDK, `move-bookmark`). The daemon calls this periodically, off
    /// the FUSE threads. Asks the backend where the bookmark is; when it moved away from
    /// where this mount last saw it and the mount has no work of its own, the view
    /// switches to the new tip exactly as `editChange(.bookmark)` would: the tree is
    /// re-read, the journal header records the new base, and the kernel's cached
    /// entries, attributes and pages of known inodes are invalidated.
    ///
    /// Work of its own — a working change, paths not uploaded yet, a file open for
    /// writing, content the store cannot hold (`.git` trees, empty directories) — holds
    /// the mount back: nothing is switched or lost, and the next checkpoint reports the
    /// race as a `transient` conflict. The decision is taken under the core's lock, in
    /// the same critical section as the switch, so a write starting concurrently either
    /// holds the mount back or lands on the new view (an open that copied the old
    /// revision's bytes meanwhile gets ESTALE, which the kernel retries).
    /// Mounts of a change never move. Throws when the backend cannot be asked.
    @discardableResult
    public func followBookmark() throws(MesaError) -> FollowOutcome {
        let (name, seen, tip): (String, ChangeID?, ChangeID)
        switch try revision.checkBookmark() {
        case .pinned: return .pinned
        case .unchanged: return .unchanged
        case .moved(let bookmark, let from, let to): (name, seen, tip) = (bookmark, from, to)
        }
        return try flushLock.withLock { _ throws(MesaError) -> FollowOutcome in
            // A checkpoint or an edit ran meanwhile: the next call looks again.
            guard revision.stillShows(name, at: seen) else { return .unchanged }
            // `working` only changes under `flushLock`, which is held: this is current.
            let working = revision.current.working
            let header = try revision.followHeader(name, to: tip)
            enum Decision { case held(String), failed(FSError), switched([UInt64], [(UInt64, UInt64, String)]) }
            let decision = state.withLock { state -> Decision in
                if let reason = RevisionView.heldBackReason(working: working, table: state.table,
                                                            openForWriting: state.files.values.contains(where: \.writable),
                                                            rules: cachedIgnoreRules) {
                    return .held(reason)
                }
                // Nothing of the old view is left to replay: the header alone describes the mount.
                do throws(FSError) { try journal.rewrite(header: header, keep: { _, _ in false }) } catch { return .failed(error) }
                revision.follow(to: tip, baseTime: header.baseTime)
                state.readChange = tip
                state.baseTime = header.baseTime
                state.viewGeneration += 1
                let (garbage, known) = Self.resetView(&state.table)
                return .switched(garbage, known)
            }
            switch decision {
            case .held(let reason):
                return .heldBack(bookmark: name, at: tip, reason: reason)
            case .failed(let error):
                throw MesaError(.internal, "cannot write the journal header to follow bookmark '\(name)': \(error)")
            case .switched(let garbage, let known):
                discard(garbage)
                invalidate(known)
                noteChangedPaths(from: seen, to: tip)
                logger.info("followed bookmark", metadata: ["repo": "\(org)/\(repo)", "bookmark": "\(name)",
                                                          "from": "\(seen.map { "\($0)" } ?? "-")", "to": "\(tip)"])
                return .moved(bookmark: name, from: seen, to: tip)
            }
        }
    }

    /// Adds the paths that differ between two revisions to the change log (for
    /// `filesChanged` notifications); when the diff cannot be had, marks it overflowed
    /// ("re-read the mount").
    private func noteChangedPaths(from old: ChangeID?, to new: ChangeID) {
        let (paths, complete) = revision.changedPaths(from: old, to: new)
        state.withLock { state in
            for path in paths {
                if state.table.changeLog.count < InodeTable.changeLogLimit { state.table.changeLog.insert(path) } else {
                    state.table.changeLogOverflowed = true
                }
            }
            if !complete { state.table.changeLogOverflowed = true }
        }
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
            if ino != InodeTable.rootIno {
                if node.linked { node.detachedByReset = true }
                node.linked = false
            }
            table.nodes[ino] = node
        }
        table.touched = [:]
        table.localDirectories = []
        table.localLayer = []
        table.ephemeralParents = []
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
        let header = revision.header
        try state.withLock { _ throws(MesaError) in
            do { try journal.rewrite(header: header, keep: { _, _ in keepRecords }) } catch {
                throw MesaError(.internal, "cannot write the journal header: \(error)")
            }
        }
    }
}
