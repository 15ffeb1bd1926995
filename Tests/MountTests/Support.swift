import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
// The shared harness (Child, temporary directories, TestFailure …).
@_exported import TestSupport
import StoreBackend
import Testing

/// A store with org `acme`, repo `proj` and an admin key, in a temporary directory, plus
/// cache and journal directories for mounts over it.
final class MountFixture: @unchecked Sendable {
    let root: URL
    let org = "acme"
    let repo = "proj"
    let store: Store
    let backend: LocalBackend
    let cache: BlobCache

    init() throws {
        root = URL(fileURLWithPath: try makeTemporaryDirectory("mesad-mount-tests"))
        store = try Store(directory: root.appendingPathComponent("store").path)
        _ = try store.createOrg(slug: org)
        _ = try store.createRepo(org: org, name: repo)
        let key = try store.createAPIKey(org: org, name: "test", scopes: [.read, .write, .admin])
        backend = LocalBackend(store: store, principal: try store.authenticate(secret: key.secret))
        cache = try BlobCache(directory: root.appendingPathComponent("cache").path, maxBytes: 1 << 30)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    var journalDirectory: String { root.appendingPathComponent("journal").path }

    func scratch(_ name: String) -> String { root.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path }

    /// Puts files on `main` as one change on top of its current tip.
    @discardableResult
    func seed(_ files: [String: String], executable: Set<String> = [], symlinks: [String: String] = [:]) throws -> Change {
        let tip = try store.bookmark(org: org, repo: repo, bookmark: "main").changeID
        var operations = files.keys.sorted().map { path in
            FileOperation.upsert(path: path, content: Array(files[path]!.utf8), mode: executable.contains(path) ? .executable : .regular)
        }
        operations += symlinks.keys.sorted().map { FileOperation.upsert(path: $0, content: Array(symlinks[$0]!.utf8), mode: .symlink) }
        let change = try store.createChange(org: org, repo: repo, base: tip, message: "seed", files: operations)
        _ = try store.moveBookmark(org: org, repo: repo, bookmark: "main", to: change.id)
        return change
    }

    func mount(_ target: MountTarget = .bookmark(nil), mode: MountMode = .rw, backend: (any Backend)? = nil,
               journal: String? = nil, durability: Durability = .fsync) throws -> RepoFileSystem {
        let configuration = MountConfiguration(org: org, repo: repo, target: target, mode: mode,
                                               journalDirectory: journal ?? journalDirectory, debounce: .milliseconds(50),
                                               maxRetryDelay: .milliseconds(200), backgroundFlush: false, durability: durability)
        // A restart in a test drops the previous mount just before: a request or upload
        // still finishing on another thread may hold it (and its journal lock) a moment.
        let deadline = ContinuousClock.now + .seconds(10)
        let backend = backend ?? self.backend
        var result: Result<RepoFileSystem, FSError> = .failure(FSError(EBUSY, "not tried"))
        repeat {
            result = Result { () throws(FSError) in try RepoFileSystem(configuration: configuration, backend: backend, cache: cache) }
            guard case .failure(let error) = result, error.errno == EBUSY else { break }
            usleep(20_000)
        } while ContinuousClock.now < deadline
        return try result.get()
    }

    /// Paths of files and symlinks at a revision with their git modes (no content read).
    func paths(at revision: Revision) throws -> [String: FileMode] {
        guard case .directory(_, _, let entries) = try store.content(org: org, repo: repo, at: revision, path: "", depth: 10) else {
            return [:]
        }
        return Dictionary(uniqueKeysWithValues: entries.compactMap { entry in entry.mode.map { (entry.path, $0) } })
    }

    /// Text files (path → content) and symlinks at a revision.
    func tree(at revision: Revision) throws -> [String: String] {
        guard case .directory(_, _, let entries) = try store.content(org: org, repo: repo, at: revision, path: "", depth: 10) else {
            return [:]
        }
        var result: [String: String] = [:]
        for entry in entries where entry.type != .dir {
            switch try store.content(org: org, repo: repo, at: revision, path: entry.path) {
            case .file(_, let bytes, let mode, _):
                result[entry.path] = (mode == .executable ? "x:" : "") + String(decoding: bytes, as: UTF8.self)
            case .symlink(_, let target, _): result[entry.path] = "->" + target
            case .directory: break
            }
        }
        return result
    }
}

/// Path-based helpers over the ino-based core, as a kernel would drive it.
extension RepoFileSystem {
    func ino(_ path: String) throws(FSError) -> UInt64 {
        var ino = InodeTable.rootIno
        for name in path.split(separator: "/") { ino = try lookup(parent: ino, name: String(name)).ino }
        return ino
    }

    func parentAndName(_ path: String) throws(FSError) -> (UInt64, String) {
        let parent = parentPath(path)
        return (try ino(parent), lastComponent(path))
    }

    func writeText(_ path: String, _ text: String, append: Bool = false) throws {
        let (parent, name) = try parentAndName(path)
        let handle: UInt64
        let ino: UInt64
        if let existing = try? lookup(parent: parent, name: name) {
            ino = existing.ino
            handle = try open(ino, flags: OpenFlags(write: true, truncate: !append, append: append)).handle
        } else {
            let (attributes, opened) = try create(parent: parent, name: name, permissions: 0o644, flags: OpenFlags(write: true))
            ino = attributes.ino
            handle = opened.handle
        }
        let bytes = Array(text.utf8)
        _ = try bytes.withUnsafeBytes { raw throws(FSError) in try write(ino, handle: handle, offset: 0, bytes: raw) }
        try flush(ino, handle: handle)
        release(ino, handle: handle)
    }

    func readText(_ path: String) throws(FSError) -> String {
        let ino = try ino(path)
        let handle = try open(ino, flags: OpenFlags()).handle
        defer { release(ino, handle: handle) }
        let source = try read(ino, handle: handle, offset: 0, size: 1 << 20)
        var buffer = [UInt8](repeating: 0, count: source.length)
        let count = buffer.withUnsafeMutableBytes { pread(source.descriptor, $0.baseAddress, source.length, off_t(source.offset)) }
        return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
    }

    func mkdirPath(_ path: String) throws(FSError) {
        let (parent, name) = try parentAndName(path)
        _ = try mkdir(parent: parent, name: name, permissions: 0o755)
    }
}

/// Expects `body` to fail with `errno`.
func expectErrno<T>(_ errno: Int32, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) {
    do {
        let value = try body()
        Issue.record("expected errno \(errno), got \(value)", sourceLocation: sourceLocation)
    } catch let error as FSError {
        #expect(error.errno == errno, "expected errno \(errno), got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected FSError \(errno), got \(error)", sourceLocation: sourceLocation)
    }
}
