import Foundation
import MesaAPI
import MesaProtocol
import Model
import Mount
import Store

extension ChangeInfo {
    init(_ change: Change, files: [String]? = nil) {
        let author = change.authors.first.map { "\($0.name) <\($0.email)>" } ?? ""
        self.init(id: change.id.rawValue, commitOid: change.commitOID, parents: change.parents.map(\.rawValue),
                  message: change.message, author: author, createdAt: Timestamp.string(change.createdAt),
                  updatedAt: Timestamp.string(change.updatedAt), conflicts: change.conflicts, files: files)
    }
}

extension BookmarkInfo {
    init(_ bookmark: Bookmark) {
        self.init(name: bookmark.name, changeId: bookmark.changeID.rawValue, isDefault: bookmark.isDefault)
    }
}

extension DiffInfo {
    init(_ diff: Diff) {
        self.init(
            baseChangeId: diff.base.rawValue, headChangeId: diff.head.rawValue,
            entries: diff.entries.map { entry in
                DiffEntryInfo(path: entry.path, oldPath: entry.oldPath, status: entry.status.rawValue, binary: entry.isBinary,
                              hunks: entry.hunks,
                              additions: entry.additions, deletions: entry.deletions)
            },
            additions: diff.stats.additions, deletions: diff.stats.deletions, truncated: diff.truncated)
    }
}

extension MountStatusInfo {
    init(_ status: MountStatus, mountId: String, path: String) {
        self.init(mountId: mountId, path: path, org: status.org, repo: status.repo, mode: status.mode.rawValue,
                  bookmark: status.bookmark, baseChangeId: status.baseChange.rawValue,
                  workingChangeId: status.workingChange?.rawValue, dirtyPaths: status.dirtyPaths,
                  pendingUploads: status.pendingUploads, lastError: status.lastError,
                  lastFlush: Timestamp.string(status.lastFlush), prefetch: status.prefetch.map(PrefetchInfo.init))
    }
}

extension PrefetchInfo {
    init(_ progress: PrefetchProgress) {
        self.init(mode: progress.mode.rawValue, state: progress.phase.rawValue, directoriesListed: progress.directoriesListed,
                  directoriesPending: progress.directoriesPending, filesFetched: progress.filesFetched,
                  bytesFetched: Int(progress.bytesFetched), failures: progress.failures, note: progress.note)
    }
}
