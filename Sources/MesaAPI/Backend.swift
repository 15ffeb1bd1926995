import Foundation
import Model

/// Who a backend acts as: the org and key behind its credential.
public struct Identity: Sendable, Equatable {
    public let org: Org
    public let keyID: String?
    public let keyName: String?
    public let scopes: [Scope]
    /// nil = every repo of the org.
    public let repoIDs: [String]?

    public init(org: Org, keyID: String?, keyName: String?, scopes: [Scope], repoIDs: [String]?) {
        self.org = org
        self.keyID = keyID
        self.keyName = keyName
        self.scopes = scopes
        self.repoIDs = repoIDs
    }
}

/// What to create a key with.
public struct KeyRequest: Sendable, Equatable {
    public var name: String?
    public var scopes: [Scope]?
    public var repoIDs: [String]?
    public var expiresInSeconds: Int?
    public var tags: [String: String]

    public init(name: String? = nil, scopes: [Scope]? = nil, repoIDs: [String]? = nil,
                expiresInSeconds: Int? = nil, tags: [String: String] = [:]) {
        self.name = name
        self.scopes = scopes
        self.repoIDs = repoIDs
        self.expiresInSeconds = expiresInSeconds
        self.tags = tags
    }
}

/// The narrow interface between mesad and wherever repositories live: the embedded
/// store (`LocalBackend`) or a mesa-server over HTTP. One backend acts with one
/// credential; every method enforces that credential's scopes and throws `MesaError`.
public protocol Backend: Sendable {
    func whoami() throws -> Identity

    func listRepos(org: String, cursor: String?, limit: Int?) throws -> Page<Repo>
    func repo(org: String, name: String) throws -> Repo
    func createRepo(org: String, name: String, defaultBookmark: String?) throws -> Repo
    func deleteRepo(org: String, name: String) throws

    func createKey(org: String, _ request: KeyRequest) throws -> CreatedAPIKey
    func listKeys(org: String, status: KeyStatus?, cursor: String?, limit: Int?) throws -> Page<APIKey>
    func revokeKey(org: String, id: String) throws

    func content(org: String, repo: String, at revision: Revision, path: String, depth: Int) throws -> Content
    func blob(org: String, repo: String, oid: String) throws -> [UInt8]
    /// Stores the file at `path` as a blob of the repo without holding it in memory
    /// (any size) and returns its git object id, for `FileOperation.upsertBlob`.
    /// Needs write scope. The file must not change while it is read.
    func uploadBlob(org: String, repo: String, fromFile path: String) throws -> String
    /// Writes the blob `oid` into a new file at `path` (created or truncated), in
    /// chunks; the file holds the whole blob when this returns.
    func downloadBlob(org: String, repo: String, oid: String, toFile path: String) throws

    func createChange(org: String, repo: String, base: ChangeID, message: String, files: [FileOperation]) throws -> Change
    func updateChange(org: String, repo: String, id: ChangeID, message: String?, files: [FileOperation],
                      expectedCommit: String?) throws -> Change
    func change(org: String, repo: String, id: ChangeID) throws -> ChangeDetail
    func listChanges(org: String, repo: String, bookmark: String?, cursor: String?, limit: Int?) throws -> Page<Change>

    func listBookmarks(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Bookmark>
    func bookmark(org: String, repo: String, name: String) throws -> Bookmark
    func createBookmark(org: String, repo: String, name: String, at change: ChangeID) throws -> Bookmark
    func moveBookmark(org: String, repo: String, name: String, to change: ChangeID, expectedFrom: ChangeID?,
                      allowBackwards: Bool) throws -> BookmarkMove
    func deleteBookmark(org: String, repo: String, name: String) throws
    func mergeBookmark(org: String, repo: String, target: String, source: String, message: String?,
                       allowConflicted: Bool) throws -> MergeResult

    func diff(org: String, repo: String, base: ChangeID, head: ChangeID) throws -> Diff

    /// Creates a repo that remembers a git upstream (and its credential) to sync with.
    func createRepo(org: String, name: String, defaultBookmark: String?, upstream: UpstreamSettings?) throws -> Repo
    /// Sets (`.set`) or removes the upstream of a repo. Needs write scope.
    func updateUpstream(org: String, repo: String, _ update: UpstreamUpdate) throws -> Repo
    /// Queues a pull or push with the repo's upstream (write scope); it runs asynchronously.
    func createSync(org: String, repo: String, direction: SyncDirection, refGlobs: SyncRefGlobs) throws -> Sync
    /// Syncs of a repo, newest first (read scope).
    func listSyncs(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Sync>
    func sync(org: String, repo: String, id: String) throws -> Sync
}
