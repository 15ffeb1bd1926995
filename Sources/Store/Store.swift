import Foundation
import Model
import Logging
import Synchronization

/// The versioned repository store: one bare git repository per repo for content and
/// history, one SQLite database for metadata (orgs, repos, change index, bookmarks, keys).
///
/// Locks, and why:
/// - `database` (a `Mutex`) owns the single SQLite connection. Every metadata read and
///   write goes through it; write transactions use `BEGIN IMMEDIATE`, so a
///   read-check-write (bookmark compare-and-swap, change amend) is atomic against other
///   threads (and, should the directory lock ever be relaxed, other processes).
/// - `repoCache` (a `Mutex`) maps names to repo rows for the read paths. A data
///   directory is owned by one process at a time (`lock` file), so this cache cannot be
///   made stale by another writer.
/// - `RepositoryPool` gives each thread its own libgit2 handle. Git objects are
///   content-addressed and written before the metadata that names them, so object writes
///   need no lock; ref updates happen only inside a database transaction.
public final class Store: Sendable {
    public let directory: String
    let database: Mutex<SQLiteDatabase>
    let repositories: RepositoryPool
    /// Repo rows by "org/name" (lower-cased); cleared by every repo update or delete.
    let repoCache = Mutex<[String: RepoRow]>([:])
    let logger = Logger(label: "mesa.store")
    /// The sync status observer and worker (`SyncWorker.swift`).
    let syncState = Mutex(SyncState())
    private let lockDescriptor: Int32

    /// `$XDG_DATA_HOME/mesa/store`, else `~/.local/share/mesa/store`.
    public static var defaultDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/mesa/store" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/share/mesa/store"
    }

    public init(directory: String = Store.defaultDirectory) throws {
        self.directory = directory
        let reposDirectory = directory + "/repos"
        do {
            try FileManager.default.createDirectory(atPath: reposDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw MesaError.internal("cannot create store directory \(directory): \(error.localizedDescription)")
        }
        try Self.restrictPermissions(directory)
        let lock = try Self.lockDirectory(directory)
        lockDescriptor = lock
        let connection: SQLiteDatabase
        do {
            connection = try SQLiteDatabase(path: directory + "/meta.sqlite")
            // WAL + synchronous=FULL: a committed transaction survives power loss.
            try connection.execute("PRAGMA journal_mode=WAL")
            try connection.execute("PRAGMA synchronous=FULL")
            try connection.execute("PRAGMA foreign_keys=ON")
            try Schema.migrate(connection)
            try WebhookSchema.migrate(connection)
        } catch {
            // Not fully initialized yet, so deinit will not run: release the lock here.
            close(lock)
            throw error
        }
        database = Mutex(connection)
        repositories = RepositoryPool(root: reposDirectory)
        _ = GitLibrary.initialized
        try recover()
    }

    deinit {
        syncState.withLock { $0.worker }?.stop()
        close(lockDescriptor)
    }

    /// The store holds key digests and every repository: only its owner may read it,
    /// whatever mode the directory had before (`init --data` on an existing 0755 folder).
    /// SQLite gives its -wal and -shm files the mode of the database file.
    private static func restrictPermissions(_ directory: String) throws {
        let database = directory + "/meta.sqlite"
        let descriptor = open(database, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if descriptor >= 0 { close(descriptor) }
        for (path, mode) in [(directory, 0o700), (directory + "/repos", 0o700), (database, 0o600),
                             (database + "-wal", 0o600), (database + "-shm", 0o600)] as [(String, mode_t)] {
            guard chmod(path, mode) == 0 || errno == ENOENT else {
                throw MesaError.internal("cannot restrict \(path) to mode \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Takes an exclusive lock on the data directory for the life of this instance.
    private static func lockDirectory(_ directory: String) throws -> Int32 {
        let path = directory + "/lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw MesaError.internal("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw MesaError(.conflict, "store directory \(directory) is in use by another process (or another Store in this one); stop it or use another directory")
        }
        return descriptor
    }

    /// Runs `body` with the metadata connection held.
    func withDatabase<T>(_ body: (SQLiteDatabase) throws -> T) throws -> T {
        try database.withLock { connection in try body(connection) }
    }

    /// Repairs what a crash between two steps can leave behind: git directories of
    /// deleted repos, and bookmark refs not yet mirrored from the metadata.
    private func recover() throws {
        let known = Set(try withDatabase { try $0.query("SELECT id FROM repos").map { $0.string(0) } })
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: repositories.root)) ?? []
        for entry in entries where entry.hasSuffix(".git") {
            let id = String(entry.dropLast(4))
            if !known.contains(id) {
                logger.info("removing repository directory of deleted repo", metadata: ["repo": "\(id)"])
                try? FileManager.default.removeItem(atPath: repositories.path(for: id))
            }
        }
        try withDatabase { connection in
            for repoID in known { try self.mirrorBookmarkRefs(repoID: repoID, connection: connection) }
        }
    }
}

enum Schema {
    static let version = 2

    static func migrate(_ connection: SQLiteDatabase) throws {
        let current = try connection.queryOne("PRAGMA user_version")?.int(0) ?? 0
        if current >= version { return }
        if current < 1 { try createVersion1(connection) }
        if current < 2 { try addUpstreams(connection) }
    }

    /// Version 2: a git upstream per repo (its secret in a column of its own, never read
    /// into the repo cache) and the syncs with it.
    private static func addUpstreams(_ connection: SQLiteDatabase) throws {
        try connection.transaction {
            try connection.execute("""
            ALTER TABLE repos ADD COLUMN upstream_url TEXT;
            ALTER TABLE repos ADD COLUMN upstream_auth_kind TEXT;
            ALTER TABLE repos ADD COLUMN upstream_secret TEXT;
            CREATE TABLE syncs(
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
                direction TEXT NOT NULL,
                status TEXT NOT NULL,
                attempt INTEGER NOT NULL DEFAULT 0,
                ref_globs TEXT NOT NULL,
                refs TEXT,
                error TEXT,
                created_at REAL NOT NULL,
                started_at REAL,
                finished_at REAL,
                not_before REAL NOT NULL DEFAULT 0);
            CREATE INDEX syncs_by_repo ON syncs(repo_id, seq);
            CREATE INDEX syncs_by_status ON syncs(status, seq);
            PRAGMA user_version = 2;
            """)
        }
    }

    private static func createVersion1(_ connection: SQLiteDatabase) throws {
        try connection.transaction {
            try connection.execute("""
            CREATE TABLE orgs(
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                slug TEXT NOT NULL UNIQUE COLLATE NOCASE,
                name TEXT NOT NULL,
                created_at REAL NOT NULL);
            CREATE TABLE repos(
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                org_id TEXT NOT NULL REFERENCES orgs(id),
                name TEXT NOT NULL COLLATE NOCASE,
                default_bookmark TEXT NOT NULL,
                tags TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                UNIQUE(org_id, name));
            -- One row per change; commit_oid is its current snapshot.
            CREATE TABLE changes(
                seq INTEGER PRIMARY KEY,
                repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
                change_id TEXT NOT NULL,
                commit_oid TEXT NOT NULL,
                parents TEXT NOT NULL,
                message TEXT NOT NULL,
                authors TEXT NOT NULL,
                committer TEXT NOT NULL,
                conflicts TEXT NOT NULL DEFAULT '[]',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE(repo_id, change_id));
            -- Every commit a change ever had: its evolution, newest last.
            CREATE TABLE commits(
                repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
                commit_oid TEXT NOT NULL,
                change_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY(repo_id, commit_oid));
            CREATE INDEX commits_by_change ON commits(repo_id, change_id);
            -- Bookmarks name changes (and follow them when amended); refs/heads/* mirror them.
            CREATE TABLE bookmarks(
                repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                change_id TEXT NOT NULL,
                PRIMARY KEY(repo_id, name));
            CREATE INDEX bookmarks_by_change ON bookmarks(repo_id, change_id);
            CREATE TABLE api_keys(
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                org_id TEXT NOT NULL REFERENCES orgs(id),
                name TEXT,
                digest BLOB NOT NULL UNIQUE,
                scopes TEXT NOT NULL,
                repo_ids TEXT,
                tags TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                expires_at REAL,
                revoked_at REAL,
                last_used_at REAL);
            PRAGMA user_version = 1;
            """)
        }
    }
}

/// Small JSON helpers for the metadata columns that hold lists and maps.
enum JSONColumn {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try? decoder.decode(type, from: Data(text.utf8))
    }
}

/// Opaque cursors: base64url of a position, so clients cannot depend on the format.
enum Cursor {
    static func encode(_ position: Int) -> String {
        Data("p:\(position)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String?) throws -> Int {
        guard let cursor, !cursor.isEmpty else { return 0 }
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
              text.hasPrefix("p:"), let position = Int(text.dropFirst(2)), position >= 0 else {
            throw MesaError.invalid("invalid cursor '\(cursor.prefix(80))': pass the next_cursor of a previous page unchanged")
        }
        return position
    }

    static func limit(_ requested: Int?) throws -> Int {
        let limit = requested ?? 50
        guard (1...100).contains(limit) else {
            throw MesaError.invalid("invalid limit \(limit): use 1 to 100")
        }
        return limit
    }
}
