import COpenSSL
import Foundation
import Model
import Synchronization

/// A `Backend` on a remote mesa-server (or any server speaking Mesa's REST contract,
/// API-key era) over libcurl. One instance acts with one API key. Idempotent calls are
/// retried with backoff on outages; errors come back as the `MesaError` the server
/// meant (its envelope's code) or `.unavailable` when no answer came.
public final class HTTPBackend: Backend {
    public struct Configuration: Sendable {
        /// E.g. `http://127.0.0.1:8420/v1`.
        public var baseURL: String
        public var apiKey: String
        /// The org this key is configured for, named in refusals ("the key for org 'acme' …").
        public var org: String?
        public var connectTimeout: Duration = .seconds(5)
        public var requestTimeout: Duration = .seconds(60)
        public var userAgent = "mesad"
        /// Attempts per call, the first included.
        public var maxAttempts = 4
        public var initialBackoff: Duration = .milliseconds(100)
        public var maxBackoff: Duration = .seconds(2)
        /// No retry starts once a call has taken this long (Retry-After included).
        public var retryBudget: Duration = .seconds(20)
        /// Blob locations remembered for `blob(oid:)`.
        public var blobLocationLimit = 200_000

        public init(baseURL: String, apiKey: String, org: String? = nil) {
            var base = baseURL
            while base.hasSuffix("/") { base.removeLast() }
            self.baseURL = base
            self.apiKey = apiKey
            self.org = org
        }
    }

    /// Where a blob was seen: content at this change and path returns it.
    struct BlobLocation: Sendable {
        let org: String
        let repo: String
        let change: String
        let path: String
    }

    /// A bounded oid → location map; the oldest entries go first.
    struct BlobLocations: Sendable {
        var map: [String: BlobLocation] = [:]
        var order: [String] = []
        var head = 0
        let limit: Int

        mutating func insert(_ oid: String, _ location: BlobLocation) {
            if map.updateValue(location, forKey: oid) == nil { order.append(oid) }
            while map.count > limit, head < order.count {
                map.removeValue(forKey: order[head])
                head += 1
            }
            if head > 4096 && head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    public let configuration: Configuration
    let session: CurlSession
    let locations: Mutex<BlobLocations>

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        session = CurlSession(options: .init(connectTimeout: configuration.connectTimeout,
                                             requestTimeout: configuration.requestTimeout, userAgent: configuration.userAgent))
        locations = Mutex(BlobLocations(limit: max(1, configuration.blobLocationLimit)))
    }

    // MARK: Identity

    public func whoami() throws -> Identity {
        try (json("GET", ["whoami"]) as RESTWhoami).identity
    }

    // MARK: Repos

    public func listRepos(org: String, cursor: String?, limit: Int?) throws -> Page<Repo> {
        try (json("GET", [org, "repos"], query: Self.paging(cursor, limit)) as RESTRepoPage).page { try $0.repo() }
    }

    public func repo(org: String, name: String) throws -> Repo {
        try (json("GET", [org, name]) as RESTRepo).repo()
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?) throws -> Repo {
        try (json("POST", [org, "repos"], body: RESTCreateRepo(name: name, defaultBookmark: defaultBookmark)) as RESTRepo).repo()
    }

    public func deleteRepo(org: String, name: String) throws {
        _ = try send("DELETE", [org, name])
    }

    public func createRepo(org: String, name: String, defaultBookmark: String?, upstream: UpstreamSettings?) throws -> Repo {
        let body = RESTCreateRepo(name: name, defaultBookmark: defaultBookmark,
                                  upstream: upstream.map { RESTUpstreamInput(url: $0.url, auth: $0.auth) })
        return try (json("POST", [org, "repos"], body: body) as RESTRepo).repo()
    }

    public func updateUpstream(org: String, repo: String, _ update: UpstreamUpdate) throws -> Repo {
        let body: RESTUpdateRepo
        switch update {
        case .remove: body = RESTUpdateRepo(upstreamGiven: true)
        case .set(let url, .keep): body = RESTUpdateRepo(upstream: RESTUpstreamInput(url: url, auth: nil, keepAuth: true))
        case .set(let url, .clear): body = RESTUpdateRepo(upstream: RESTUpstreamInput(url: url, auth: nil))
        case .set(let url, .replace(let auth)): body = RESTUpdateRepo(upstream: RESTUpstreamInput(url: url, auth: auth))
        }
        return try (json("PATCH", [org, repo], body: body) as RESTRepo).repo()
    }

    // MARK: Syncs

    public func createSync(org: String, repo: String, direction: SyncDirection, refGlobs: SyncRefGlobs) throws -> Sync {
        try (json("POST", [org, repo, "upstream", "syncs"], body: RESTCreateSync(direction: direction, refGlobs: refGlobs)) as RESTSync).sync()
    }

    public func listSyncs(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Sync> {
        try (json("GET", [org, repo, "upstream", "syncs"], query: Self.paging(cursor, limit)) as RESTSyncPage).page { try $0.sync() }
    }

    public func sync(org: String, repo: String, id: String) throws -> Sync {
        try (json("GET", [org, repo, "upstream", "syncs", id]) as RESTSync).sync()
    }

    // MARK: Keys

    public func createKey(org: String, _ request: KeyRequest) throws -> CreatedAPIKey {
        try (json("POST", [org, "api-keys"], body: RESTCreateKey(request)) as RESTCreatedKey)
            .created(org: org, expiresInSeconds: request.expiresInSeconds)
    }

    public func listKeys(org: String, status: KeyStatus?, cursor: String?, limit: Int?) throws -> Page<APIKey> {
        var query = Self.paging(cursor, limit)
        query.append(("status", status?.rawValue))
        return try (json("GET", [org, "api-keys"], query: query) as RESTKeyPage).page { $0.apiKey(org: org) }
    }

    public func revokeKey(org: String, id: String) throws {
        _ = try send("DELETE", [org, "api-keys", id])
    }

    // MARK: Content and blobs

    public func content(org: String, repo: String, at revision: Revision, path: String, depth: Int) throws -> Content {
        // Content has no bookmark parameter, and "no change_id" would be read at a tip that
        // may move before a blob is fetched: always name the change.
        let change: ChangeID
        switch revision {
        case .change(let id): change = id
        case .bookmark(let name): change = try bookmark(org: org, repo: repo, name: name).changeID
        case .head: change = try self.repo(org: org, name: repo).headChangeID
        }
        let wire: RESTContent = try json("GET", [org, repo, "content"],
                                         query: [("change_id", change.rawValue), ("path", path), ("depth", String(depth))])
        let content = try wire.storeContent()
        remember(content, org: org, repo: repo, change: change.rawValue)
        return content
    }

    public func blob(org: String, repo: String, oid: String) throws -> [UInt8] {
        let wanted = oid.lowercased()
        if let location = locations.withLock({ $0.map[wanted] }), location.org == org, location.repo == repo {
            do {
                let response = try send("GET", [org, repo, "content"],
                                        query: [("change_id", location.change), ("path", location.path)],
                                        accept: "application/octet-stream")
                if Self.matches(response, oid: wanted) { return response.body }
            } catch let error as MesaError where error.code == .unavailable || error.httpStatus == 401 {
                throw error
            } catch {
                // Moved or deleted since it was listed: ask for the blob itself.
            }
        }
        let response: HTTPResponse
        do {
            response = try send("GET", [org, repo, "blobs", wanted], accept: "application/octet-stream")
        } catch let error as MesaError where error.code == .notFound {
            throw MesaError.notFound("blob \(wanted) not found in \(org)/\(repo): \(error.message)")
        }
        guard Self.matches(response, oid: wanted) else {
            throw MesaError(.unavailable, "\(configuration.baseURL) sent bytes for blob \(wanted) that do not hash to it")
        }
        return response.body
    }

    /// `POST /{org}/{repo}/blobs` (a mesa-server extension) with the file as a raw body,
    /// streamed from disk. Content-addressed, so a retry after a lost answer is safe.
    public func uploadBlob(org: String, repo: String, fromFile path: String) throws -> String {
        let response = try send("POST", [org, repo, "blobs"], bodyFile: path, idempotent: true)
        let created: RESTBlobCreated
        do {
            created = try RESTCoding.decoder().decode(RESTBlobCreated.self, from: Data(response.body))
        } catch {
            throw MesaError.internal("POST \(redactedURL([org, repo, "blobs"])): the answer is not the expected JSON (\(error)); is \(configuration.baseURL) a mesa-server with blob uploads?")
        }
        return created.oid.lowercased()
    }

    /// `GET /{org}/{repo}/blobs/{oid}` straight into `path`, checked against the oid
    /// (the server's ETag, else the file's git hash computed in chunks).
    public func downloadBlob(org: String, repo: String, oid: String, toFile path: String) throws {
        let wanted = oid.lowercased()
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MesaError.internal("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let response: HTTPResponse
        do {
            response = try send("GET", [org, repo, "blobs", wanted], accept: "application/octet-stream", responseFile: fd)
        } catch let error as MesaError where error.code == .notFound {
            throw MesaError.notFound("blob \(wanted) not found in \(org)/\(repo): \(error.message)")
        }
        if var tag = response.header("etag") {
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            tag = tag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if tag.count == 40 {
                guard tag.lowercased() == wanted else {
                    throw MesaError(.unavailable, "\(configuration.baseURL) sent blob \(tag) when asked for \(wanted)")
                }
                return
            }
        }
        var digest = [UInt8](repeating: 0, count: 20)
        let failure = digest.withUnsafeMutableBufferPointer { copenssl_git_blob_sha1_fd(fd, $0.baseAddress) }
        guard failure == 0 else { throw MesaError.internal("cannot read back \(path): \(String(cString: strerror(failure)))") }
        guard digest.map({ String(format: "%02x", $0) }).joined() == wanted else {
            throw MesaError(.unavailable, "\(configuration.baseURL) sent bytes for blob \(wanted) that do not hash to it")
        }
    }

    /// Checks an answer's bytes against the oid asked for: the server's ETag when it
    /// sends one, otherwise the git blob SHA-1 computed here.
    static func matches(_ response: HTTPResponse, oid: String) -> Bool {
        if var tag = response.header("etag") {
            if tag.hasPrefix("W/") { tag.removeFirst(2) }
            tag = tag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            if tag.count == 40 { return tag.lowercased() == oid }
        }
        return gitBlobID(response.body) == oid
    }

    /// The git object id of a blob with these bytes.
    public static func gitBlobID(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 20)
        bytes.withUnsafeBytes { raw in
            digest.withUnsafeMutableBufferPointer { copenssl_git_blob_sha1(raw.baseAddress, raw.count, $0.baseAddress) }
        }
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    private func remember(_ content: Content, org: String, repo: String, change: String) {
        locations.withLock { locations in
            switch content {
            case .file(let path, _, _, let oid), .symlink(let path, _, let oid):
                locations.insert(oid, BlobLocation(org: org, repo: repo, change: change, path: path))
            case .directory(_, _, let entries):
                for entry in entries where entry.type != .dir {
                    locations.insert(entry.oid, BlobLocation(org: org, repo: repo, change: change, path: entry.path))
                }
            }
        }
    }

    // MARK: Changes

    public func createChange(org: String, repo: String, base: ChangeID, message: String, files: [FileOperation]) throws -> Change {
        let body = RESTCreateChange(baseChangeID: base.rawValue, message: message, files: files.map(RESTFileOp.init))
        return try (json("POST", [org, repo, "changes"], body: body) as RESTChange).change()
    }

    public func updateChange(org: String, repo: String, id: ChangeID, message: String?, files: [FileOperation],
                             expectedCommit: String?) throws -> Change {
        let body = RESTUpdateChange(message: message, files: files.isEmpty ? nil : files.map(RESTFileOp.init),
                                    baseCommitOID: expectedCommit)
        return try (json("PATCH", [org, repo, "changes", id.rawValue], body: body) as RESTChange).change()
    }

    public func change(org: String, repo: String, id: ChangeID) throws -> ChangeDetail {
        let wire: RESTChange = try json("GET", [org, repo, "changes", id.rawValue])
        return ChangeDetail(change: try wire.change(), files: wire.files ?? [])
    }

    public func listChanges(org: String, repo: String, bookmark: String?, cursor: String?, limit: Int?) throws -> Page<Change> {
        var query = Self.paging(cursor, limit)
        query.append(("bookmark", bookmark))
        return try (json("GET", [org, repo, "changes"], query: query) as RESTChangePage).page { try $0.change() }
    }

    // MARK: Bookmarks

    public func listBookmarks(org: String, repo: String, cursor: String?, limit: Int?) throws -> Page<Bookmark> {
        try (json("GET", [org, repo, "bookmarks"], query: Self.paging(cursor, limit)) as RESTBookmarkPage).page { try $0.bookmark() }
    }

    public func bookmark(org: String, repo: String, name: String) throws -> Bookmark {
        try (json("GET", [org, repo, "bookmarks", name]) as RESTBookmark).bookmark()
    }

    public func createBookmark(org: String, repo: String, name: String, at change: ChangeID) throws -> Bookmark {
        try (json("POST", [org, repo, "bookmarks"], body: RESTCreateBookmark(name: name, changeID: change.rawValue)) as RESTBookmark)
            .bookmark()
    }

    public func moveBookmark(org: String, repo: String, name: String, to change: ChangeID, expectedFrom: ChangeID?,
                             allowBackwards: Bool) throws -> BookmarkMove {
        // Mesa's REST move has no compare-and-swap: mesa-server takes `expected_change_id`
        // and moves atomically; for servers that ignore it, check first as well (a move
        // racing between the two calls is then not caught).
        if let expectedFrom {
            let current = try bookmark(org: org, repo: repo, name: name)
            guard current.changeID == expectedFrom else {
                throw MesaError(.conflict, "bookmark '\(name)' of \(org)/\(repo) is at \(current.changeID), not \(expectedFrom) as expected; it moved meanwhile, retry")
            }
        }
        let wire: RESTBookmark = try json("PATCH", [org, repo, "bookmarks", name],
                                          body: RESTMoveBookmark(changeID: change.rawValue, allowBackwards: allowBackwards,
                                                                 expectedChangeID: expectedFrom?.rawValue))
        let from = try wire.fromChangeID.map { (text) throws(MesaError) in try ChangeID.sent(text) } ?? expectedFrom ?? .root
        return BookmarkMove(bookmark: try wire.bookmark(), from: from)
    }

    public func deleteBookmark(org: String, repo: String, name: String) throws {
        _ = try send("DELETE", [org, repo, "bookmarks", name])
    }

    public func mergeBookmark(org: String, repo: String, target: String, source: String, message: String?,
                              allowConflicted: Bool) throws -> MergeResult {
        let wire: RESTMergeResult = try json("POST", [org, repo, "bookmarks", "merge"],
                                             body: RESTMergeRequest(target: target, source: source, allowConflicted: allowConflicted,
                                                                    message: message))
        let result = try wire.mergeResult()
        // A server that does not list conflicted paths in the result: ask the change.
        guard wire.isConflicted, result.conflicts.isEmpty,
              let conflicts = try? change(org: org, repo: repo, id: result.changeID).change.conflicts else { return result }
        return MergeResult(mergeType: result.mergeType, changeID: result.changeID, commitOID: result.commitOID,
                           conflicts: conflicts, target: result.target, source: result.source, sourceDeleted: result.sourceDeleted)
    }

    // MARK: Diff

    public func diff(org: String, repo: String, base: ChangeID, head: ChangeID) throws -> Diff {
        let wire: RESTDiff = try json("GET", [org, repo, "diff"],
                                      query: [("base_change_id", base.rawValue), ("head_change_id", head.rawValue)])
        return try wire.diff()
    }
}
