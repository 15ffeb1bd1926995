import Foundation
import Model
import Synchronization

/// A test double around any backend: records calls and injects failures (a single
/// method failing N times, or the whole backend offline), so retry and outage paths of
/// the daemon and the mount can be tested without a real outage.
public final class FaultInjectingBackend: Backend {
    private struct State {
        var offline = false
        var pending: [(method: String?, remaining: Int, error: MesaError)] = []
        var calls: [String] = []
    }

    public let base: any Backend
    private let state = Mutex(State())

    public init(wrapping base: any Backend) { self.base = base }

    /// The next `count` calls (of `method`, or of any method) fail with `error`.
    public func failNext(_ count: Int = 1, method: String? = nil, with error: MesaError) {
        state.withLock { $0.pending.append((method, count, error)) }
    }

    /// While offline, every call fails as an unreachable server would.
    public func setOffline(_ offline: Bool) { state.withLock { $0.offline = offline } }

    /// Method names called so far, in order.
    public var calls: [String] { state.withLock { $0.calls } }

    private func check(_ method: String) throws {
        let failure: MesaError? = state.withLock { state in
            state.calls.append(method)
            if state.offline { return MesaError(.unavailable, "backend offline (injected fault)") }
            guard let index = state.pending.firstIndex(where: { $0.method == nil || $0.method == method }) else { return nil }
            let error = state.pending[index].error
            state.pending[index].remaining -= 1
            if state.pending[index].remaining <= 0 { state.pending.remove(at: index) }
            return error
        }
        if let failure { throw failure }
    }

    public func whoami() throws -> Identity { try check("whoami"); return try base.whoami() }

    public func listRepos(org: String, cursor: String?, limit: Int?) throws -> Page<Repo> {
        try check("listRepos"); return try base.listRepos(org: org, cursor: cursor, limit: limit)
    }
    public func repo(org: String, name: String) throws -> Repo { try check("repo"); return try base.repo(org: org, name: name) }
    public func createRepo(org: String, name: String, defaultBookmark: String?, upstream: UpstreamSettings?) throws -> Repo {
        try check("createRepo"); return try base.createRepo(org: org, name: name, defaultBookmark: defaultBookmark, upstream: upstream)
    }
    public func updateUpstream(org: String, repo: String, _ update: UpstreamUpdate) throws -> Repo {
        try check("updateUpstream"); return try base.updateUpstream(org: org, repo: repo, update)
    }
    public func createSync(org: String, repo: String, direction: SyncDirection, refGlobs: SyncRefGlobs) throws -> Sync {
        try check("createSync"); return try base.createSync(org: org, repo: repo, direction: direction, refGlobs: refGlobs)
    }
    public func listSyncs(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Sync> {
        try check("listSyncs"); return try base.listSyncs(org: org, repo: repo, cursor: cursor, limit: limit)
    }
    public func sync(org: String, repo: String, id: String) throws -> Sync {
        try check("sync"); return try base.sync(org: org, repo: repo, id: id)
    }
    public func createRepo(org: String, name: String, defaultBookmark: String?) throws -> Repo {
        try check("createRepo"); return try base.createRepo(org: org, name: name, defaultBookmark: defaultBookmark)
    }
    public func deleteRepo(org: String, name: String) throws { try check("deleteRepo"); try base.deleteRepo(org: org, name: name) }

    public func createKey(org: String, _ request: KeyRequest) throws -> CreatedAPIKey {
        try check("createKey"); return try base.createKey(org: org, request)
    }
    public func listKeys(org: String, status: KeyStatus?, cursor: String?, limit: Int?) throws -> Page<APIKey> {
        try check("listKeys"); return try base.listKeys(org: org, status: status, cursor: cursor, limit: limit)
    }
    public func revokeKey(org: String, id: String) throws { try check("revokeKey"); try base.revokeKey(org: org, id: id) }

    public func content(org: String, repo: String, at revision: Revision, path: String, depth: Int) throws -> Content {
        try check("content"); return try base.content(org: org, repo: repo, at: revision, path: path, depth: depth)
    }
    public func blob(org: String, repo: String, oid: String) throws -> [UInt8] {
        try check("blob"); return try base.blob(org: org, repo: repo, oid: oid)
    }

    public func uploadBlob(org: String, repo: String, fromFile path: String) throws -> String {
        try check("uploadBlob"); return try base.uploadBlob(org: org, repo: repo, fromFile: path)
    }
    public func downloadBlob(org: String, repo: String, oid: String, toFile path: String) throws {
        try check("downloadBlob"); try base.downloadBlob(org: org, repo: repo, oid: oid, toFile: path)
    }

    public func createChange(org: String, repo: String, base baseChange: ChangeID, message: String, files: [FileOperation]) throws -> Change {
        try check("createChange"); return try base.createChange(org: org, repo: repo, base: baseChange, message: message, files: files)
    }
    public func updateChange(org: String, repo: String, id: ChangeID, message: String?, files: [FileOperation],
                             expectedCommit: String?) throws -> Change {
        try check("updateChange")
        return try base.updateChange(org: org, repo: repo, id: id, message: message, files: files, expectedCommit: expectedCommit)
    }
    public func change(org: String, repo: String, id: ChangeID) throws -> ChangeDetail {
        try check("change"); return try base.change(org: org, repo: repo, id: id)
    }
    public func listChanges(org: String, repo: String, bookmark: String?, cursor: String?, limit: Int?) throws -> Page<Change> {
        try check("listChanges"); return try base.listChanges(org: org, repo: repo, bookmark: bookmark, cursor: cursor, limit: limit)
    }

    public func listBookmarks(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Bookmark> {
        try check("listBookmarks"); return try base.listBookmarks(org: org, repo: repo, cursor: cursor, limit: limit)
    }
    public func bookmark(org: String, repo: String, name: String) throws -> Bookmark {
        try check("bookmark"); return try base.bookmark(org: org, repo: repo, name: name)
    }
    public func createBookmark(org: String, repo: String, name: String, at change: ChangeID) throws -> Bookmark {
        try check("createBookmark"); return try base.createBookmark(org: org, repo: repo, name: name, at: change)
    }
    public func moveBookmark(org: String, repo: String, name: String, to change: ChangeID, expectedFrom: ChangeID?,
                             allowBackwards: Bool) throws -> BookmarkMove {
        try check("moveBookmark")
        return try base.moveBookmark(org: org, repo: repo, name: name, to: change, expectedFrom: expectedFrom, allowBackwards: allowBackwards)
    }
    public func deleteBookmark(org: String, repo: String, name: String) throws {
        try check("deleteBookmark"); try base.deleteBookmark(org: org, repo: repo, name: name)
    }
    public func mergeBookmark(org: String, repo: String, target: String, source: String, message: String?,
                              allowConflicted: Bool) throws -> MergeResult {
        try check("mergeBookmark")
        return try base.mergeBookmark(org: org, repo: repo, target: target, source: source, message: message, allowConflicted: allowConflicted)
    }

    public func diff(org: String, repo: String, base baseChange: ChangeID, head: ChangeID) throws -> Diff {
        try check("diff"); return try base.diff(org: org, repo: repo, base: baseChange, head: head)
    }
}
