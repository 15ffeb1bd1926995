import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import StoreBackend
import Synchronization
import Testing

/// The daemon's `<org>/<repo>` tree over one backend: repos come from `listRepos`
/// (so key scoping applies) and are opened on first lookup.
func treeProvider(_ fx: MountFixture, backend: any Backend) -> TreeFileSystem.Provider {
    let opened = Mutex<[String: RepoFileSystem]>([:])
    return TreeFileSystem.Provider(
        orgs: { [fx.org] },
        repos: { org in try backend.listRepos(org: org, cursor: nil, limit: 100).items.map(\.name) },
        open: { org, repo in
            try opened.withLock { cache in
                if let fs = cache[repo] { return fs }
                let configuration = MountConfiguration(org: org, repo: repo, journalDirectory: fx.scratch("journal-\(repo)"),
                                                       backgroundFlush: false)
                let fs = try RepoFileSystem(configuration: configuration, backend: backend, cache: fx.cache)
                cache[repo] = fs
                return fs
            }
        })
}

@Suite struct TreeLayoutTests {
    @Test func treeShowsOrgsAndReposAndRoutesIntoRepos() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "A"])
        let tree = TreeFileSystem(provider: treeProvider(fx, backend: fx.backend))
        let org = try tree.lookup(parent: 1, name: "acme", mayBlock: true)
        #expect(org.kind == .directory)
        expectErrno(ENOENT) { try tree.lookup(parent: 1, name: "other", mayBlock: true) }
        let repo = try tree.lookup(parent: org.ino, name: "proj", mayBlock: true)
        #expect(repo.ino >> 40 == 1)
        let file = try tree.lookup(parent: repo.ino, name: "a.txt", mayBlock: true)
        #expect(file.size == 1)
        expectErrno(EROFS) { try tree.mkdir(parent: org.ino, name: "newrepo", permissions: 0o755, mayBlock: true) }
        _ = try fx.store.createRepo(org: fx.org, name: "later")
        let handle = try tree.opendir(org.ino, mayBlock: true)
        #expect(try tree.readdir(handle: handle, offset: 2).map(\.name) == ["later", "proj"], "new repos appear without a restart")
        let created = try tree.create(parent: repo.ino, name: "b.txt", permissions: 0o644, flags: OpenFlags(write: true), mayBlock: true)
        #expect(created.0.ino >> 40 == 1)
        #expect(created.1.handle >> 40 == 1)
        tree.release(created.0.ino, handle: created.1.handle)
        let later = try tree.lookup(parent: org.ino, name: "later", mayBlock: true)
        _ = try tree.mkdir(parent: later.ino, name: "d", permissions: 0o755, mayBlock: true)
        expectErrno(EXDEV) { try tree.rename(parent: repo.ino, name: "b.txt", newParent: later.ino, newName: "b.txt", flags: 0, mayBlock: true) }
    }

    @Test func repoScopedKeySeesOnlyItsRepos() throws {
        let fx = try MountFixture()
        let other = try fx.store.createRepo(org: fx.org, name: "other")
        let key = try fx.store.createAPIKey(org: fx.org, name: "scoped", scopes: [.read], repoIDs: [other.id])
        let scoped = LocalBackend(store: fx.store, principal: try fx.store.authenticate(secret: key.secret))
        let tree = TreeFileSystem(provider: treeProvider(fx, backend: scoped))
        let org = try tree.lookup(parent: 1, name: "acme", mayBlock: true)
        let handle = try tree.opendir(org.ino, mayBlock: true)
        #expect(try tree.readdir(handle: handle, offset: 2).map(\.name) == ["other"])
        expectErrno(ENOENT) { try tree.lookup(parent: org.ino, name: "proj", mayBlock: true) }
    }

    @Test(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(2)))
    func treeMountServesOrgRepoPaths() throws {
        let fx = try MountFixture()
        try fx.seed(["hello.txt": "hi\n"])
        let tree = TreeFileSystem(provider: treeProvider(fx, backend: fx.backend))
        let path = fx.scratch("tree")
        let session = try MountSession.start(at: path, root: tree)
        defer { session.stop() }
        #expect(try FileManager.default.contentsOfDirectory(atPath: path) == ["acme"])
        #expect(try String(contentsOfFile: path + "/acme/proj/hello.txt", encoding: .utf8) == "hi\n")
        try mustRun("echo new > acme/proj/new.txt && ls -la acme/proj | grep -q new.txt", in: path)
        _ = try fx.store.createRepo(org: fx.org, name: "fresh")
        try mustRun("ls acme | grep -q fresh && echo x > acme/fresh/x", in: path)
        let result = try shell("mkdir acme/nope", in: path)
        #expect(result.output.contains("Read-only"))
        let proj = try #require(tree.openRepositories["acme/proj"])
        try proj.flush()
        #expect(try fx.tree(at: .change(#require(proj.status().workingChange))) == ["hello.txt": "hi\n", "new.txt": "new\n"])
    }
}
