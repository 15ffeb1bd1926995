import Foundation
import Store

/// The embedded backend: the store opened in this process, acting as one principal.
/// Every call is authorized here, exactly as mesa-server would authorize it.
public struct LocalBackend: Backend {
    public let store: Store
    public let principal: Principal

    public init(store: Store, principal: Principal) {
        self.store = store
        self.principal = principal
    }

    /// Authenticates `secret` against the store and returns a backend acting as its key.
    public init(store: Store, secret: String) throws(MesaError) {
        let principal = try mesaErrors { try store.authenticate(secret: secret) }
        self.init(store: store, principal: principal)
    }

    public func whoami() throws -> Identity {
        Identity(org: principal.org, keyID: principal.keyID, keyName: principal.keyName, scopes: principal.scopes,
                 repoIDs: principal.repoIDs.map { $0.sorted() })
    }

    // MARK: Repos

    public func listRepos(org: String, cursor: String?, limit: Int?) throws -> Page<Repo> {
        try mesaErrors {
            try store.authorize(principal, .read, org: org)
            return try store.listRepos(org: org, cursor: cursor, limit: limit, only: principal.repoIDs)
        }
    }

    public func repo(org: String, name: String) throws -> Repo {
        try mesaErrors { try authorizedRepo(org, name, .read) }
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?) throws -> Repo {
        try mesaErrors {
            try store.authorize(principal, .createRepo, org: org)
            return try store.createRepo(org: org, name: name, defaultBookmark: defaultBookmark ?? "main")
        }
    }

    public func deleteRepo(org: String, name: String) throws {
        try mesaErrors {
            _ = try authorizedRepo(org, name, .write)
            try store.deleteRepo(org: org, name: name)
        }
    }

    // MARK: Keys

    public func createKey(org: String, _ request: KeyRequest) throws -> CreatedAPIKey {
        try mesaErrors {
            try store.authorize(principal, .createKey, org: org)
            return try store.createAPIKey(org: org, name: request.name, scopes: request.scopes, repoIDs: request.repoIDs,
                                          expiresInSeconds: request.expiresInSeconds, tags: request.tags, creator: principal)
        }
    }

    public func listKeys(org: String, status: KeyStatus?, cursor: String?, limit: Int?) throws -> Page<APIKey> {
        try mesaErrors {
            try store.authorize(principal, .admin, org: org)
            return try store.listAPIKeys(org: org, status: status, cursor: cursor, limit: limit)
        }
    }

    public func revokeKey(org: String, id: String) throws {
        try mesaErrors {
            try store.authorize(principal, .admin, org: org)
            try store.revokeAPIKey(org: org, id: id)
        }
    }

    // MARK: Content and changes

    public func content(org: String, repo: String, at revision: Revision, path: String, depth: Int) throws -> Content {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.content(org: org, repo: repo, at: revision, path: path, depth: depth)
        }
    }

    public func blob(org: String, repo: String, oid: String) throws -> [UInt8] {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.blob(org: org, repo: repo, oid: oid)
        }
    }

    public func createChange(org: String, repo: String, base: ChangeID, message: String, files: [FileOperation]) throws -> Change {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .write)
            return try store.createChange(org: org, repo: repo, base: base, message: message, authors: authors, files: files)
        }
    }

    public func updateChange(org: String, repo: String, id: ChangeID, message: String?, files: [FileOperation],
                             expectedCommit: String?) throws -> Change {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .write)
            return try store.updateChange(org: org, repo: repo, id: id, message: message, files: files, expectedCommit: expectedCommit)
        }
    }

    public func change(org: String, repo: String, id: ChangeID) throws -> ChangeDetail {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.change(org: org, repo: repo, id: id)
        }
    }

    public func listChanges(org: String, repo: String, bookmark: String?, cursor: String?, limit: Int?) throws -> Page<Change> {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.listChanges(org: org, repo: repo, bookmark: bookmark, cursor: cursor, limit: limit)
        }
    }

    // MARK: Bookmarks

    public func listBookmarks(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Bookmark> {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.listBookmarks(org: org, repo: repo, cursor: cursor, limit: limit)
        }
    }

    public func bookmark(org: String, repo: String, name: String) throws -> Bookmark {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.bookmark(org: org, repo: repo, bookmark: name)
        }
    }

    public func createBookmark(org: String, repo: String, name: String, at change: ChangeID) throws -> Bookmark {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .write)
            return try store.createBookmark(org: org, repo: repo, bookmark: name, at: change)
        }
    }

    public func moveBookmark(org: String, repo: String, name: String, to change: ChangeID, expectedFrom: ChangeID?,
                             allowBackwards: Bool) throws -> BookmarkMove {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .write)
            return try store.moveBookmark(org: org, repo: repo, bookmark: name, to: change, expectedFrom: expectedFrom,
                                          allowBackwards: allowBackwards)
        }
    }

    public func deleteBookmark(org: String, repo: String, name: String) throws {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .write)
            try store.deleteBookmark(org: org, repo: repo, bookmark: name)
        }
    }

    public func mergeBookmark(org: String, repo: String, target: String, source: String, message: String?,
                              allowConflicted: Bool) throws -> MergeResult {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .write)
            return try store.mergeBookmark(org: org, repo: repo, target: target, source: source, message: message,
                                           allowConflicted: allowConflicted, authors: authors)
        }
    }

    public func diff(org: String, repo: String, base: ChangeID, head: ChangeID) throws -> Diff {
        try mesaErrors {
            _ = try authorizedRepo(org, repo, .read)
            return try store.diff(org: org, repo: repo, base: base, head: head)
        }
    }

    // MARK: Helpers

    /// Looks the repo up and checks the principal may act on it. Repos outside the
    /// key's scope look exactly like missing ones.
    private func authorizedRepo(_ org: String, _ name: String, _ action: Action) throws -> Repo {
        try store.authorize(principal, .read, org: org)
        let repo = try store.repo(org: org, name: name)
        try store.authorize(principal, action, org: org, repoID: repo.id)
        return repo
    }

    /// Changes made through this backend are authored by the key.
    private var authors: [Signature] {
        [Signature(name: principal.keyName ?? principal.keyID, email: "\(principal.keyID)@\(principal.org.slug).mesa")]
    }
}
