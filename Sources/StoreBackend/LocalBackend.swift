import Foundation
import MesaAPI
import Model
import Store

/// The embedded backend: the store opened in this process, acting as one principal.
/// Every call is authorized here, exactly as mesa-server would authorize it.
public struct LocalBackend: Backend {
    public let store: Store
    public let principal: Principal
    /// Set for a long-lived backend (mesad's): every call authenticates the key again.
    private let recheckedSecret: String?

    public init(store: Store, principal: Principal) {
        self.store = store
        self.principal = principal
        recheckedSecret = nil
    }

    /// Authenticates `secret` against the store and returns a backend acting as its key.
    /// With `recheck`, every later call authenticates it again, so a key revoked or
    /// expired after this backend was made (a mount lives for hours) stops working at
    /// once, with KEY_REVOKED / KEY_EXPIRED — as every call to mesa-server does.
    public init(store: Store, secret: String, recheck: Bool = false) throws(MesaError) {
        principal = try mesaErrors { try store.authenticate(secret: secret) }
        self.store = store
        recheckedSecret = recheck ? secret : nil
    }

    /// The principal a call is authorized as (see `init(store:secret:recheck:)`).
    private func caller() throws -> Principal {
        guard let secret = recheckedSecret else { return principal }
        return try store.authenticate(secret: secret)
    }

    public func whoami() throws -> Identity {
        let principal = try caller()
        return Identity(org: principal.org, keyID: principal.keyID, keyName: principal.keyName, scopes: principal.scopes,
                        repoIDs: principal.repoIDs.map { $0.sorted() })
    }

    // MARK: Repos

    public func listRepos(org: String, cursor: String?, limit: Int?) throws -> Page<Repo> {
        try listRepos(org: org, filter: nil, cursor: cursor, limit: limit)
    }

    /// Repos the key can see, optionally only those whose tags match `filter`.
    public func listRepos(org: String, filter: TagFilter?, cursor: String?, limit: Int?) throws -> Page<Repo> {
        try store.authorize(try caller(), .read, org: org)
        return try store.listRepos(org: org, cursor: cursor, limit: limit, only: principal.repoIDs, filter: filter)
    }

    /// The org record and how many repos it holds.
    public func org(_ slug: String) throws -> (org: Org, repoCount: Int) {
        let caller = try caller()
        try store.authorize(caller, .read, org: slug)
        // Only the repos the key can see count, like the listing.
        return (try store.org(slug), try store.repoCount(org: slug, only: caller.repoIDs))
    }

    public func repo(org: String, name: String) throws -> Repo {
        try authorizedRepo(org, name, .read)
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?) throws -> Repo {
        try createRepo(org: org, name: name, defaultBookmark: defaultBookmark, tags: [:])
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?, tags: [String: String]) throws -> Repo {
        try createRepo(org: org, name: name, defaultBookmark: defaultBookmark, tags: tags, upstream: nil)
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?, upstream: UpstreamSettings?) throws -> Repo {
        try createRepo(org: org, name: name, defaultBookmark: defaultBookmark, tags: [:], upstream: upstream)
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?, tags: [String: String],
                           upstream: UpstreamSettings?) throws -> Repo {
        try store.authorize(try caller(), .createRepo, org: org)
        return try store.createRepo(org: org, name: name, defaultBookmark: defaultBookmark ?? "main", tags: tags,
                                    upstream: upstream.map { ($0.url, $0.auth) })
    }

    /// Renames, changes the default bookmark, patches tags (nil removes one), sets or
    /// removes the upstream (nil leaves it).
    public func updateRepo(org: String, name: String, newName: String?, defaultBookmark: String?,
                           tags: [String: String?], upstream: UpstreamUpdate? = nil) throws -> Repo {
        _ = try authorizedRepo(org, name, .write)
        return try store.updateRepo(org: org, name: name, newName: newName, defaultBookmark: defaultBookmark, tags: tags,
                                    upstream: upstream)
    }

    public func updateUpstream(org: String, repo: String, _ update: UpstreamUpdate) throws -> Repo {
        try updateRepo(org: org, name: repo, newName: nil, defaultBookmark: nil, tags: [:], upstream: update)
    }

    // MARK: Syncs

    public func createSync(org: String, repo: String, direction: SyncDirection, refGlobs: SyncRefGlobs) throws -> Sync {
        _ = try authorizedRepo(org, repo, .write)
        return try store.createSync(org: org, repo: repo, direction: direction, refGlobs: refGlobs)
    }

    public func listSyncs(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Sync> {
        _ = try authorizedRepo(org, repo, .read)
        return try store.listSyncs(org: org, repo: repo, cursor: cursor, limit: limit)
    }

    public func sync(org: String, repo: String, id: String) throws -> Sync {
        _ = try authorizedRepo(org, repo, .read)
        return try store.sync(org: org, repo: repo, id: id)
    }

    /// Sets (`value` non-nil) or removes one tag on many repos; returns how many changed.
    /// Ids the key cannot see are skipped like missing ones, so a repo-scoped key only
    /// ever touches its own repos and learns nothing about others.
    public func updateRepoTags(org: String, repoIDs: [String], key: String, value: String?) throws -> Int {
        try store.authorize(try caller(), .write, org: org)
        let visible = principal.repoIDs.map { allowed in repoIDs.filter(allowed.contains) } ?? repoIDs
        return try store.updateRepoTags(org: org, repoIDs: visible, key: key, value: value)
    }

    public func deleteRepo(org: String, name: String) throws {
        _ = try authorizedRepo(org, name, .deleteRepo)
        try store.deleteRepo(org: org, name: name)
    }

    // MARK: Keys

    public func createKey(org: String, _ request: KeyRequest) throws -> CreatedAPIKey {
        try store.authorize(try caller(), .createKey, org: org)
        return try store.createAPIKey(org: org, name: request.name, scopes: request.scopes, repoIDs: request.repoIDs,
                                      expiresInSeconds: request.expiresInSeconds, tags: request.tags, creator: principal)
    }

    public func listKeys(org: String, status: KeyStatus?, cursor: String?, limit: Int?) throws -> Page<APIKey> {
        try listKeys(org: org, status: status, query: nil, scope: nil, repoID: nil, cursor: cursor, limit: limit)
    }

    /// Keys filtered by status, name substring, scope and repo (see `Store.listAPIKeys`).
    public func listKeys(org: String, status: KeyStatus?, query: String?, scope: Scope?, repoID: String?,
                         cursor: String?, limit: Int?) throws -> Page<APIKey> {
        try store.authorize(try caller(), .admin, org: org)
        return try store.listAPIKeys(org: org, status: status, query: query, scope: scope, repoID: repoID,
                                     cursor: cursor, limit: limit)
    }

    /// Patches a key's tags (nil removes one); returns the resulting tags.
    public func updateKeyTags(org: String, id: String, tags: [String: String?]) throws -> [String: String] {
        try store.authorize(try caller(), .admin, org: org)
        return try store.updateAPIKeyTags(org: org, id: id, tags: tags)
    }

    public func revokeKey(org: String, id: String) throws {
        try store.authorize(try caller(), .admin, org: org)
        try store.revokeAPIKey(org: org, id: id)
    }

    // MARK: Content and changes

    public func content(org: String, repo: String, at revision: Revision, path: String, depth: Int) throws -> Content {
        _ = try authorizedRepo(org, repo, .read)
        return try store.content(org: org, repo: repo, at: revision, path: path, depth: depth)
    }

    public func blob(org: String, repo: String, oid: String) throws -> [UInt8] {
        _ = try authorizedRepo(org, repo, .read)
        return try store.blob(org: org, repo: repo, oid: oid)
    }

    public func uploadBlob(org: String, repo: String, fromFile path: String) throws -> String {
        _ = try authorizedRepo(org, repo, .write)
        return try store.writeBlob(org: org, repo: repo, fromFile: path)
    }

    public func downloadBlob(org: String, repo: String, oid: String, toFile path: String) throws {
        _ = try authorizedRepo(org, repo, .read)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MesaError.internal("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try store.readBlob(org: org, repo: repo, oid: oid.lowercased(), into: fd)
    }

    /// A streaming writer for one blob of `size` bytes (mesa-server's blob upload):
    /// the write scope is checked here, before any byte is read.
    public func blobWriter(org: String, repo: String, size: Int) throws -> BlobWriter {
        _ = try authorizedRepo(org, repo, .write)
        return try store.blobWriter(org: org, repo: repo, size: size)
    }

    /// A chunked reader for the blob `oid` (mesa-server's blob download); read scope.
    public func blobReader(org: String, repo: String, oid: String) throws -> BlobReader {
        _ = try authorizedRepo(org, repo, .read)
        return try store.blobReader(org: org, repo: repo, oid: oid)
    }

    public func createChange(org: String, repo: String, base: ChangeID, message: String, files: [FileOperation]) throws -> Change {
        try createChange(org: org, repo: repo, base: base, message: message, author: nil, committer: nil, files: files)
    }

    /// Creates a change authored by `author` (default: the calling key) and committed by
    /// `committer` (default: the author).
    public func createChange(org: String, repo: String, base: ChangeID, message: String, author: Signature?,
                             committer: Signature?, files: [FileOperation]) throws -> Change {
        _ = try authorizedRepo(org, repo, .write)
        return try store.createChange(org: org, repo: repo, base: base, message: message,
                                      authors: author.map { [$0] } ?? authors, committer: committer, files: files)
    }

    public func updateChange(org: String, repo: String, id: ChangeID, message: String?, files: [FileOperation],
                             expectedCommit: String?) throws -> Change {
        try updateChange(org: org, repo: repo, id: id, message: message, author: nil, committer: nil, files: files,
                         expectedCommit: expectedCommit)
    }

    /// Amends a change; `author` replaces its authors, `committer` its committer identity.
    public func updateChange(org: String, repo: String, id: ChangeID, message: String?, author: Signature?,
                             committer: Signature?, files: [FileOperation], expectedCommit: String?) throws -> Change {
        _ = try authorizedRepo(org, repo, .write)
        return try store.updateChange(org: org, repo: repo, id: id, message: message, authors: author.map { [$0] },
                                      committer: committer, files: files, expectedCommit: expectedCommit)
    }

    public func change(org: String, repo: String, id: ChangeID) throws -> ChangeDetail {
        _ = try authorizedRepo(org, repo, .read)
        return try store.change(org: org, repo: repo, id: id)
    }

    public func listChanges(org: String, repo: String, bookmark: String?, cursor: String?, limit: Int?) throws -> Page<Change> {
        _ = try authorizedRepo(org, repo, .read)
        return try store.listChanges(org: org, repo: repo, bookmark: bookmark, cursor: cursor, limit: limit)
    }

    // MARK: Bookmarks

    public func listBookmarks(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Bookmark> {
        try listBookmarks(org: org, repo: repo, glob: nil, cursor: cursor, limit: limit)
    }

    /// Bookmarks whose names match `glob` (fnmatch: `*`, `?`, `[...]`), by name.
    public func listBookmarks(org: String, repo: String, glob: String?, cursor: String?, limit: Int?) throws -> Page<Bookmark> {
        _ = try authorizedRepo(org, repo, .read)
        return try store.listBookmarks(org: org, repo: repo, glob: glob, cursor: cursor, limit: limit)
    }

    public func bookmark(org: String, repo: String, name: String) throws -> Bookmark {
        _ = try authorizedRepo(org, repo, .read)
        return try store.bookmark(org: org, repo: repo, bookmark: name)
    }

    public func createBookmark(org: String, repo: String, name: String, at change: ChangeID) throws -> Bookmark {
        _ = try authorizedRepo(org, repo, .write)
        return try store.createBookmark(org: org, repo: repo, bookmark: name, at: change)
    }

    public func moveBookmark(org: String, repo: String, name: String, to change: ChangeID, expectedFrom: ChangeID?,
                             allowBackwards: Bool) throws -> BookmarkMove {
        _ = try authorizedRepo(org, repo, .write)
        return try store.moveBookmark(org: org, repo: repo, bookmark: name, to: change, expectedFrom: expectedFrom,
                                      allowBackwards: allowBackwards)
    }

    public func deleteBookmark(org: String, repo: String, name: String) throws {
        _ = try authorizedRepo(org, repo, .write)
        try store.deleteBookmark(org: org, repo: repo, bookmark: name)
    }

    public func mergeBookmark(org: String, repo: String, target: String, source: String, message: String?,
                              allowConflicted: Bool) throws -> MergeResult {
        try mergeBookmark(org: org, repo: repo, target: target, source: source, message: message,
                          allowConflicted: allowConflicted, deleteSource: false)
    }

    /// Merges `source` into `target`; with `deleteSource` the source bookmark is deleted
    /// in the same transaction that moves the target.
    public func mergeBookmark(org: String, repo: String, target: String, source: String, message: String?,
                              allowConflicted: Bool, deleteSource: Bool) throws -> MergeResult {
        _ = try authorizedRepo(org, repo, .write)
        return try store.mergeBookmark(org: org, repo: repo, target: target, source: source, message: message,
                                       allowConflicted: allowConflicted, deleteSource: deleteSource, authors: authors)
    }

    public func diff(org: String, repo: String, base: ChangeID, head: ChangeID) throws -> Diff {
        _ = try authorizedRepo(org, repo, .read)
        return try store.diff(org: org, repo: repo, base: base, head: head)
    }

    /// The same difference as one unified patch (`git diff` format).
    public func diffPatch(org: String, repo: String, base: ChangeID, head: ChangeID) throws -> String {
        _ = try authorizedRepo(org, repo, .read)
        return try store.diffPatch(org: org, repo: repo, base: base, head: head)
    }

    // MARK: Helpers

    /// Looks the repo up and checks the principal may act on it. Repos outside the
    /// key's scope look exactly like missing ones.
    private func authorizedRepo(_ org: String, _ name: String, _ action: Action) throws -> Repo {
        let caller = try caller()
        try store.authorize(caller, .read, org: org)
        let repo: Repo
        do {
            repo = try store.repo(org: org, name: name)
            try store.authorize(caller, .read, org: org, repoID: repo.id)
        } catch let error as MesaError where error.code == .notFound {
            // A missing repo and one the key cannot see answer alike, so a repo-scoped
            // key cannot learn which other repos exist.
            throw MesaError(.notFound, "repository '\(org.clipped)/\(name.clipped)' does not exist or this key cannot see it")
        }
        try store.authorize(caller, action, org: org, repoID: repo.id)
        return repo
    }

    /// Changes made through this backend are authored by the key.
    private var authors: [Signature] {
        [Signature(name: principal.keyName ?? principal.keyID, email: "\(principal.keyID)@\(principal.org.slug).mesa")]
    }
}
