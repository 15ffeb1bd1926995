import Foundation
import Model
import Store
// The shared harness (Child, temporary directories, TestFailure …).
@_exported import TestSupport
import Testing

/// A store in its own temporary directory, removed when the fixture goes away.
/// Layout: `<root>/store` holds the store; `scratch(_:)` hands out sibling directories
/// for clones and other tool output.
final class Fixture: @unchecked Sendable {
    let root: URL
    let org = "acme"
    private var storage: Store?

    var store: Store { storage! }
    var storeDirectory: String { root.appendingPathComponent("store").path }

    init() throws {
        root = URL(fileURLWithPath: try makeTemporaryDirectory("mesad-store-tests"))
        storage = try Store(directory: root.appendingPathComponent("store").path)
        _ = try store.createOrg(slug: org)
    }

    /// A fixture with one repo, `repo`, already created.
    convenience init(repo: String) throws {
        try self.init()
        try makeRepo(repo)
    }

    deinit {
        storage = nil
        try? FileManager.default.removeItem(at: root)
    }

    /// Drops the current `Store` instance (closing its database and git handles) and
    /// opens a new one on the same directory, as a restarted process would.
    func reopen() throws {
        storage = nil
        storage = try Store(directory: storeDirectory)
    }

    /// A fresh, not yet existing path under the fixture's root.
    func scratch(_ name: String) -> String {
        root.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
    }

    // MARK: Shortcuts

    @discardableResult
    func makeRepo(_ name: String = "proj", tags: [String: String] = [:]) throws -> Repo {
        try store.createRepo(org: org, name: name, tags: tags)
    }

    /// Moves bookmark `name` of `repo` to `change` (forward only, no expected position).
    @discardableResult
    func move(_ name: String, to change: Change, repo: String = "proj") throws -> BookmarkMove {
        try store.moveBookmark(org: org, repo: repo, bookmark: name, to: change.id)
    }

    /// Forks repo "proj" at a change writing `base`, which `main` points at: `feature` moves
    /// to a change on it writing `theirs` (and deleting `theirsDeleting`), then `main` to one
    /// writing `ours`.
    @discardableResult
    func fork(base: [String: String], theirs: [String: String], theirsDeleting: [String] = [],
              ours: [String: String]) throws -> (base: Change, theirs: Change, ours: Change) {
        let baseChange = try change(base)
        try move("main", to: baseChange)
        let theirsChange = try change(theirs, base: baseChange.id, deleting: theirsDeleting)
        try bookmark("feature", at: theirsChange)
        let oursChange = try change(ours, base: baseChange.id)
        try move("main", to: oursChange)
        return (baseChange, theirsChange, oursChange)
    }

    /// Bookmark `name` of repo "proj" as the store reports it now.
    func bookmark(named name: String) throws -> Bookmark {
        try store.bookmark(org: org, repo: "proj", bookmark: name)
    }

    /// Merges bookmark `source` of repo "proj" into `target`.
    @discardableResult
    func merge(target: String, source: String, message: String? = nil, allowConflicted: Bool = false,
               deleteSource: Bool = false, authors: [Signature] = []) throws -> MergeResult {
        try store.mergeBookmark(org: org, repo: "proj", target: target, source: source, message: message,
                                allowConflicted: allowConflicted, deleteSource: deleteSource, authors: authors)
    }

    /// Creates bookmark `name` of `repo` at `change`.
    @discardableResult
    func bookmark(_ name: String, at change: Change, repo: String = "proj") throws -> Bookmark {
        try store.createBookmark(org: org, repo: repo, bookmark: name, at: change.id)
    }

    /// Creates a change whose operations upsert the given text files (regular mode).
    @discardableResult
    func change(_ files: [String: String], base: ChangeID = .root, repo: String = "proj",
                message: String = "", deleting: [String] = []) throws -> Change {
        let upserts = files.keys.sorted().map { FileOperation.upsert(path: $0, content: Array(files[$0]!.utf8)) }
        return try store.createChange(org: org, repo: repo, base: base, message: message,
                                      files: deleting.map { FileOperation.delete(path: $0) } + upserts)
    }

    /// The text of the file at `path`, or nil when the path is not a regular/executable file.
    func text(_ path: String, at revision: Revision = .head, repo: String = "proj") throws -> String? {
        guard case .file(_, let bytes, _, _) = try store.content(org: org, repo: repo, at: revision, path: path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Paths of every file and symlink at a revision (recursively), sorted.
    func files(at revision: Revision = .head, repo: String = "proj") throws -> [String] {
        guard case .directory(_, _, let entries) = try store.content(org: org, repo: repo, at: revision, path: "", depth: 10) else {
            return []
        }
        return entries.filter { $0.type != .dir }.map(\.path).sorted()
    }

    func gitDirectory(_ repo: String = "proj") throws -> String {
        try store.gitDirectory(org: org, name: repo)
    }

    func changeCount(_ repo: String = "proj") throws -> Int {
        try store.listChanges(org: org, repo: repo, limit: 100).items.count
    }

    // MARK: git

    /// Runs the real `git` and returns its stdout; a non-zero exit fails the test with
    /// the command and everything git printed.
    @discardableResult
    func git(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try run(arguments)
        guard result.status == 0 else {
            Issue.record("git \(arguments.joined(separator: " ")) exited \(result.status):\n\(result.stdout)\n\(result.stderr)",
                         sourceLocation: sourceLocation)
            throw GitFailure(status: result.status)
        }
        return result.stdout
    }

    /// Runs `git` and returns its exit status and output without judging them.
    func gitStatus(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(arguments)
    }

    func gitStatus(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(arguments)
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        var environment = ProcessInfo.processInfo.environment
        // No user or system configuration: the same git behaviour on every machine.
        environment["HOME"] = root.path
        environment["GIT_CONFIG_NOSYSTEM"] = "1"
        environment["GIT_TERMINAL_PROMPT"] = "0"
        environment["LC_ALL"] = "C"
        let logs = scratch("git")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: logs) }
        let child = try Child("/usr/bin/git", arguments, environment: environment, logs: logs)
        defer { child.kill() }
        let status = try child.waitExitCodeBlocking(timeout: .seconds(300))
        return (status, child.stdout, child.stderr)
    }
}

struct GitFailure: Error {
    let status: Int32
}

/// Runs `body`, expecting it to throw a `MesaError` with `code`. Records an issue
/// (and returns nil) when it succeeds or throws something else.
@discardableResult
func expectStoreError<T>(_ code: MesaError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws -> T) -> MesaError? {
    do {
        let value = try body()
        Issue.record("expected a \(code.rawValue) error, but the call returned \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as MesaError {
        #expect(error.code == code, "expected \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, "errors must say what is wrong", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a MesaError \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
