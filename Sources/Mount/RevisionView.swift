import Foundation
import MesaAPI
import Store
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

/// Which revision a mount shows and writes to: the target bookmark and where this mount
/// last saw it, the base change, the working change, and the last upload's outcome.
///
/// Lock order: owns `state`, a leaf lock: nothing else is taken or called while it is
/// held. Others may take it while holding theirs (the core reads `header` under its
/// lock to rewrite the journal).
final class RevisionView: Sendable {
    let org: String
    let repo: String
    private let state: Mutex<VersionState>

    init(org: String, repo: String, header: JournalHeader) throws(FSError) {
        self.org = org
        self.repo = repo
        state = Mutex(try VersionState(header))
    }

    /// A snapshot of the versioning state.
    var current: VersionState { state.withLock { $0 } }

    /// Changes the versioning state in one critical section.
    func update<Result>(_ body: (inout VersionState) -> Result) -> Result {
        state.withLock { body(&$0) }
    }

    /// The journal header describing the current state (what a restart resumes from).
    var header: JournalHeader {
        state.withLock { version in
            JournalHeader(org: org, repo: repo, bookmark: version.bookmark, bookmarkExpected: version.bookmarkExpected?.rawValue,
                          base: version.base.rawValue, working: version.working?.rawValue, baseTime: version.baseTime)
        }
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
