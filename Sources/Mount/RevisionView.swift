import Foundation
import MesaAPI
import MesaIgnore
import Model
import Synchronization

/// The versioning side of a mount, changed by flushes, checkpoints and edits.
struct VersionState: Sendable {
    var bookmark: String?
    var bookmarkExpected: ChangeID?
    var base: ChangeID
    var working: ChangeID?
    var baseTime: Timestamp
    var lastError: String?
    var lastFlush: Date?
}

/// What the backend says about the target bookmark (`RevisionView.checkBookmark`).
enum BookmarkCheck: Equatable {
    /// The mount shows a change, not a bookmark.
    case pinned
    /// The bookmark is where the mount last saw it.
    case unchanged
    /// Someone moved `bookmark` from `from` (where this mount last saw it) to `to`.
    case moved(bookmark: String, from: ChangeID?, to: ChangeID)
}

/// Which revision a mount shows and writes to: the target bookmark and where this mount
/// last saw it, the base change, the working change, and the last upload's outcome;
/// plus the backend conversations that move them (target resolution, checkpoint's
/// compare-and-swap, edit targets, whether the bookmark moved). It holds no inodes and
/// no journal: `RepoFileSystem` re-reads the tree and rewrites the journal header when
/// the revision changes, and decides (with `heldBackReason`) whether a follow may
/// switch.
///
/// Lock order: owns `state`, a leaf lock: nothing else is taken and no backend call is
/// made while it is held. Others may take it while holding theirs (the core reads
/// `header` under its lock to rewrite the journal). Callers serialize the changing
/// methods (`checkpoint`, `startNewChange`, `switchTo`, `follow`) with the core's
/// `flushLock`.
final class RevisionView: Sendable {
    let org: String
    let repo: String
    let backend: any Backend
    private let state: Mutex<VersionState>

    init(org: String, repo: String, header: JournalHeader, backend: any Backend) throws(FSError) {
        self.org = org
        self.repo = repo
        self.backend = backend
        state = Mutex(try VersionState(header))
    }

    /// A snapshot of the versioning state.
    var current: VersionState { state.withLock { $0 } }

    /// The first upload created the working change: later ones amend it.
    func noteWorkingCreated(_ id: ChangeID) { state.withLock { $0.working = id } }

    /// The journal header describing the current state (what a restart resumes from).
    var header: JournalHeader {
        state.withLock { version in
            JournalHeader(org: org, repo: repo, bookmark: version.bookmark, bookmarkExpected: version.bookmarkExpected?.rawValue,
                          base: version.base.rawValue, working: version.working?.rawValue, baseTime: version.baseTime)
        }
    }

    // MARK: Upload outcome

    /// An upload round (or flush) went through.
    func noteUploaded() { state.withLock { $0.lastError = nil; $0.lastFlush = Date() } }

    /// Why the last upload (or key check) failed: what `status().lastError` shows.
    func noteFailure(_ message: String) { state.withLock { $0.lastError = message } }

    // MARK: Target resolution

    /// Resolves what a fresh mount shows: the target's change, forking one for `branchedFrom`.
    static func resolve(_ configuration: MountConfiguration, _ backend: any Backend) throws(FSError) -> JournalHeader {
        let org = configuration.org, repo = configuration.repo
        return try fsErrors {
            func bookmarkOrDefault(_ name: String?) throws -> Bookmark {
                let name = try name ?? backend.repo(org: org, name: repo).defaultBookmark
                return try backend.bookmark(org: org, repo: repo, name: name)
            }
            func time(_ change: ChangeID) throws -> Timestamp {
                change.isRoot ? Timestamp.now() : Timestamp(try backend.change(org: org, repo: repo, id: change).change.updatedAt)
            }
            func tipTime(_ bookmark: Bookmark) throws -> Timestamp {
                try Self.tipTime(backend, org: org, repo: repo, bookmark: bookmark.name, at: bookmark.changeID)
            }
            switch configuration.target {
            case .bookmark(let name):
                let bookmark = try bookmarkOrDefault(name)
                return JournalHeader(org: org, repo: repo, bookmark: bookmark.name, bookmarkExpected: bookmark.changeID.rawValue,
                                     base: bookmark.changeID.rawValue, working: nil, baseTime: try tipTime(bookmark))
            case .change(let id):
                return JournalHeader(org: org, repo: repo, bookmark: nil, bookmarkExpected: nil, base: id.rawValue,
                                     working: nil, baseTime: try time(id))
            case .branchedFrom(let spec):
                guard configuration.mode == .rw else {
                    throw FSError.invalid("branchedFrom needs mode \"rw\": it creates a change")
                }
                let parent = try spec.change ?? bookmarkOrDefault(spec.bookmark).changeID
                let fork = try backend.createChange(org: org, repo: repo, base: parent, message: spec.describe ?? "", files: [])
                if let name = spec.newBookmark {
                    _ = try backend.createBookmark(org: org, repo: repo, name: name, at: fork.id)
                }
                return JournalHeader(org: org, repo: repo, bookmark: spec.newBookmark,
                                     bookmarkExpected: spec.newBookmark == nil ? nil : fork.id.rawValue,
                                     base: parent.rawValue, working: fork.id.rawValue, baseTime: try time(parent))
            }
        }
    }

    /// The time of a bookmark's tip from the first entry of its history: unlike a
    /// single-change read it does not compute the change's touched paths, which for a
    /// 10,000-file change costs a server tens of milliseconds.
    static func tipTime(_ backend: any Backend, org: String, repo: String, bookmark: String, at change: ChangeID) throws -> Timestamp {
        if change.isRoot { return Timestamp.now() }
        if let tip = try? backend.listChanges(org: org, repo: repo, bookmark: bookmark, cursor: nil, limit: 1).items.first,
           tip.id == change {
            return Timestamp(tip.updatedAt)
        }
        return Timestamp(try backend.change(org: org, repo: repo, id: change).change.updatedAt)
    }

    // MARK: Checkpoint, new change, edit

    /// Describes the working change with `message` (nil keeps its description) and moves
    /// the target bookmark onto it with compare-and-swap against where this mount last
    /// saw it; then the next upload starts a fresh working change on it. Call after
    /// uploading everything. If someone else moved the bookmark, throws a `transient`
    /// conflict and changes nothing: the work stays in the working change.
    func checkpoint(message: String?) throws(MesaError) -> CheckpointResult {
        let version = current
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
                guard failure.code == .conflict || failure.code == .invalidArgument else { throw failure }
                // Someone (the user, following the advice below) already put the
                // bookmark on this work: nothing is left to move.
                let current = try? backend.bookmark(org: org, repo: repo, name: bookmark)
                if current?.changeID != head {
                    let seen = version.bookmarkExpected.map { "\($0)" } ?? "(unknown)"
                    throw MesaError(.conflict, "bookmark '\(bookmark)' of \(org)/\(repo) was moved by someone else since this mount last saw it at \(seen); nothing is lost: your work is saved in change \(head), which stays this mount's working change. Merge or move the bookmark, then checkpoint again. (\(failure.message))")
                }
            }
        }
        // The bookmark is on `head`: the next write starts a fresh working change on it.
        state.withLock { state in
            state.base = head
            state.working = nil
            if state.bookmark != nil { state.bookmarkExpected = head }
        }
        return CheckpointResult(savedChange: head, created: version.working != nil, bookmark: version.bookmark)
    }

    /// jj `new`: the next upload starts a new change on top of the current one, which
    /// is returned. The bookmark does not move.
    func startNewChange() -> ChangeID {
        state.withLock { state -> ChangeID in
            if let working = state.working {
                state.base = working
                state.working = nil
            }
            return state.base
        }
    }

    /// Switches to another bookmark or change: a bookmark is shown with a working change
    /// to come on top of it; a change is edited in place (a read-only mount shows it).
    /// Asks the backend first and changes nothing if it fails. Returns the new state.
    func switchTo(_ target: EditTarget, readOnly: Bool) throws(MesaError) -> VersionState {
        var next = current
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
                next.working = readOnly ? nil : id
                if readOnly { next.base = id }
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
        state.withLock { $0 = next }
        return next
    }

    // MARK: Following the bookmark

    /// Asks the backend where the target bookmark is, compared with where this mount
    /// last saw it. Changes nothing.
    func checkBookmark() throws(MesaError) -> BookmarkCheck {
        let (name, seen) = state.withLock { ($0.bookmark, $0.bookmarkExpected) }
        guard let name else { return .pinned }
        let tip = try mesaErrors { try backend.bookmark(org: org, repo: repo, name: name) }.changeID
        return tip == seen ? .unchanged : .moved(bookmark: name, from: seen, to: tip)
    }

    /// Whether the mount still shows `bookmark` as last seen at `seen` (a checkpoint or
    /// an edit between `checkBookmark` and the switch makes a follow moot).
    func stillShows(_ bookmark: String, at seen: ChangeID?) -> Bool {
        state.withLock { $0.bookmark == bookmark && $0.bookmarkExpected == seen }
    }

    /// The journal header of the view a follow switches to: the bookmark's new tip, no
    /// working change.
    func followHeader(_ bookmark: String, to tip: ChangeID) throws(MesaError) -> JournalHeader {
        let time = try mesaErrors { try Self.tipTime(backend, org: org, repo: repo, bookmark: bookmark, at: tip) }
        return JournalHeader(org: org, repo: repo, bookmark: bookmark, bookmarkExpected: tip.rawValue, base: tip.rawValue,
                             working: nil, baseTime: time)
    }

    /// Takes the followed view (`followHeader`'s) as the mount's.
    func follow(to tip: ChangeID, baseTime: Timestamp) {
        state.withLock { current in
            current.bookmarkExpected = tip
            current.base = tip
            current.working = nil
            current.baseTime = baseTime
            current.lastError = nil
        }
    }

    /// Why the mount cannot switch its view without losing something, or nil: a working
    /// change, paths not uploaded yet, a file open for writing, or content the store
    /// cannot hold. The caller holds the core's lock, so the answer stays true until it
    /// switches.
    static func heldBackReason(working: ChangeID?, table: InodeTable, openForWriting: Bool, rules: IgnoreRules) -> String? {
        if let working { return "its working change \(working) is not checkpointed" }
        if !table.touched.isEmpty { return "\(table.touched.count) changed path(s) are not uploaded yet" }
        if openForWriting { return "a file is open for writing" }
        let localOnly = table.nodes.values.contains { node in
            node.linked && node.name.lowercased() == ".git" && table.path(of: node.ino) != nil
        }
        if localOnly || !LocalOverlay.unversionedRecords(table, withFiles: true, rules: rules).isEmpty {
            return "it holds what the store cannot (a .git tree, ephemeral .mesaignore paths, empty directories, special files, hard links or owners and modes)"
        }
        return nil
    }

    /// The paths that differ between two revisions (for `filesChanged` notifications),
    /// and whether that list is complete (false when the diff failed or was truncated).
    func changedPaths(from old: ChangeID?, to new: ChangeID) -> (paths: [String], complete: Bool) {
        guard let old, let diff = try? backend.diff(org: org, repo: repo, base: old, head: new) else { return ([], false) }
        return (diff.entries.flatMap { [$0.path] + ($0.oldPath.map { [$0] } ?? []) }, !diff.truncated)
    }
}

extension VersionState {
    init(_ header: JournalHeader) throws(FSError) {
        do {
            bookmark = header.bookmark
            bookmarkExpected = try header.bookmarkExpected.map { try ChangeID($0) }
            base = try ChangeID(header.base)
            working = try header.working.map { try ChangeID($0) }
        } catch {
            throw FSError(EIO, "journal header holds an invalid change id: \(error)")
        }
        baseTime = header.baseTime
    }
}
