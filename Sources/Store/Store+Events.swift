import Foundation
import Model

/// The webhook events of the store's own write paths: each is called inside the write's
/// transaction (see `recordEvent`), so an event exists exactly when its change does.
extension Store {
    func recordRepoEvent(_ db: SQLiteDatabase, _ repo: RepoRow, _ type: WebhookEventType, _ data: some Encodable) throws {
        try recordEvent(db, orgID: repo.orgID, repoID: repo.id, repoName: repo.name, type: type, data: data)
    }

    /// sync.queued|in_progress|completed|failed, one per status change of a sync.
    func recordSyncEvent(_ db: SQLiteDatabase, _ sync: Sync) throws {
        let type: WebhookEventType = switch sync.status {
        case .queued: .syncQueued
        case .inProgress: .syncInProgress
        case .completed: .syncCompleted
        case .failed: .syncFailed
        }
        try recordRepoEvent(db, try repoRow(id: sync.repoID, db), type, WebhookPayload.SyncData(sync: .init(sync)))
    }

    /// repo.updated, only when the name, default bookmark or tags actually changed.
    func recordRepoUpdated(_ db: SQLiteDatabase, before: Repo, after: Repo) throws {
        let old = WebhookPayload.RepoSnapshot(before), new = WebhookPayload.RepoSnapshot(after)
        guard old != new else { return }
        try recordRepoEvent(db, try repoRow(id: after.id, db), .repoUpdated,
                            WebhookPayload.RepoUpdated(repo: .init(after), before: old, after: new))
    }

    func recordBookmarkEvent(_ db: SQLiteDatabase, _ repo: RepoRow, _ type: WebhookEventType, _ bookmark: Bookmark) throws {
        try recordRepoEvent(db, repo, type, WebhookPayload.BookmarkData(bookmark: .init(bookmark)))
    }

    /// change.evolved, and a push for the bookmarks that followed the change to its new commit.
    func recordChangeEvolved(_ db: SQLiteDatabase, _ repo: RepoRow, _ change: Change, previous: GitOID) throws {
        try recordRepoEvent(db, repo, .changeEvolved, WebhookPayload.ChangeEvolved(change: .init(change), previousCommitOID: previous.hex))
        let names = try db.query("SELECT name FROM bookmarks WHERE repo_id = ? AND change_id = ? ORDER BY name",
                                 [.text(repo.id), .text(change.id.rawValue)]).map { $0.string(0) }
        guard !names.isEmpty else { return }
        let updates = names.map {
            WebhookPayload.Push.Update(ref: "refs/heads/" + $0, bookmark: $0, before: previous.hex, after: change.commitOID, action: "updated")
        }
        try recordRepoEvent(db, repo, .push, WebhookPayload.Push(
            updates: updates, reconciliation: .init(reconciledCommitCount: 1, touchedChangeCount: 1, evologInsertedCount: 1)))
    }
}
