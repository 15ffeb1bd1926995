import Foundation
@testable import MesaDaemon
import MesaAPI
import MesaProtocol
import Model
import RPC
import Store
import Testing

/// Upstreams and syncs over JSON-RPC (embedded store, whose sync worker runs in the
/// daemon) and through `HTTPBackend` against a real mesa-server. The upstream is another
/// repo's git directory, reached by path.
@Suite(.timeLimit(.minutes(2))) struct SyncMethodTests {
    /// Seeds repo `name` with one change on `main` and returns its commit id and git directory.
    func seed(_ store: Store, org: String, _ name: String) throws -> (commit: String, path: String) {
        _ = try store.createRepo(org: org, name: name)
        let change = try store.createChange(org: org, repo: name, base: .root, message: "seed",
                                            files: [.upsert(path: "README", content: Array("hi\n".utf8))])
        _ = try store.moveBookmark(org: org, repo: name, bookmark: "main", to: change.id)
        return (change.commitOID, try store.gitDirectory(org: org, name: name))
    }

    @Test func createRepoWithUpstreamThenPullOverRPC() async throws {
        let daemon = try InProcessDaemon()
        let store = try #require(daemon.store)
        let (commit, path) = try seed(store, org: "local", "origin")

        let repo = try await daemon.call(CreateRepo.self, .init(name: "mirror", upstream: .init(url: path, token: "t0ken"))).repo
        #expect(repo.upstream?.url == path && repo.upstream?.authKind == .token && repo.upstream?.latestSync == nil)
        let queued = try await daemon.call(CreateSync.self, .init(repo: "mirror", direction: .pull)).sync
        #expect(queued.status == .queued && queued.direction == .pull)
        var sync = queued
        for _ in 0..<500 where !sync.status.isFinished {
            try await Task.sleep(for: .milliseconds(20))
            sync = try await daemon.call(GetSync.self, .init(repo: "mirror", id: queued.id)).sync
        }
        #expect(sync.status == .completed, "\(sync.error ?? "")")
        #expect(sync.refs?.first { $0.name == "refs/heads/main" }?.after == commit)
        #expect(try await daemon.call(GetRepo.self, .init(repo: "mirror")).repo.upstream?.latestSync?.id == queued.id)
        let listed = try await daemon.call(ListSyncs.self, .init(.init(repo: "mirror"), .init(limit: 10)))
        #expect(listed.syncs.map(\.id) == [queued.id] && !listed.hasMore)

        // setUpstream: keep, clear, remove.
        var updated = try await daemon.call(SetUpstream.self, .init(repo: "mirror", upstream: .init(url: "https://example.com/x.git"))).repo
        #expect(updated.upstream?.authKind == .token)
        updated = try await daemon.call(SetUpstream.self, .init(repo: "mirror", upstream: .init(url: "https://example.com/x.git"), clearAuth: true)).repo
        #expect(updated.upstream?.authKind == nil)
        updated = try await daemon.call(SetUpstream.self, .init(repo: "mirror", upstream: nil)).repo
        #expect(updated.upstream == nil)

        // Bad input: clear errors, nothing created.
        expectError(await daemon.failure(CreateSync.self, .init(repo: "mirror", direction: .push)), code: -32602, name: "INVALID_ARGUMENT",
                    mentions: ["upstream"])
        expectError(await daemon.failure(CreateRepo.self, .init(name: "bad", upstream: .init(url: "nope"))), code: -32602,
                    name: "INVALID_ARGUMENT", mentions: ["upstream url"])
        expectError(await daemon.failure(CreateRepo.self, .init(name: "bad", upstream: .init(url: path, token: "a", username: "u"))),
                    code: -32602, name: "INVALID_ARGUMENT")
        expectError(await daemon.failure(GetRepo.self, .init(repo: "bad")), code: -32001, name: "NOT_FOUND")
        expectError(await daemon.failure(GetSync.self, .init(repo: "mirror", id: "sync_nope")), code: -32001, name: "NOT_FOUND")
    }

    @Test func syncsRoundTripThroughMesaServer() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        try await offPool {
            // The upstream: a repo of the server's own store, made through the API, by path.
            _ = try backend.createRepo(org: "acme", name: "origin", defaultBookmark: nil)
            let change = try backend.createChange(org: "acme", repo: "origin", base: .root, message: "seed",
                                                  files: [.upsert(path: "README", content: Array("hi\n".utf8))])
            _ = try backend.moveBookmark(org: "acme", repo: "origin", name: "main", to: change.id, expectedFrom: nil, allowBackwards: false)
            let path = "\(server.dataDirectory)/repos/\(try backend.repo(org: "acme", name: "origin").id).git"

            let repo = try backend.createRepo(org: "acme", name: "mirror", defaultBookmark: nil,
                                              upstream: UpstreamSettings(url: path, auth: .usernamePassword(username: "u", password: "p")))
            #expect(repo.upstream?.authKind == .usernamePassword)
            let queued = try backend.createSync(org: "acme", repo: "mirror", direction: .pull, refGlobs: SyncRefGlobs(branches: "main"))
            #expect(queued.refGlobs == SyncRefGlobs(branches: "main"))
            var sync = queued
            for _ in 0..<500 where !sync.status.isFinished {
                Thread.sleep(forTimeInterval: 0.02)
                sync = try backend.sync(org: "acme", repo: "mirror", id: queued.id)
            }
            #expect(sync.status == .completed, "\(sync.error ?? "")")
            // The commit keeps its id and, carrying mesa's change-id header, its change id.
            let mirrored = try backend.bookmark(org: "acme", repo: "mirror", name: "main")
            #expect(mirrored.changeID == change.id)
            #expect(try backend.change(org: "acme", repo: "mirror", id: change.id).change.commitOID == change.commitOID)
            #expect(try backend.listSyncs(org: "acme", repo: "mirror", cursor: nil, limit: 5).items.map(\.id) == [queued.id])
            let cleared = try backend.updateUpstream(org: "acme", repo: "mirror", .set(url: path, auth: .clear))
            #expect(cleared.upstream?.authKind == nil && cleared.upstream?.latestSync?.id == queued.id)
            #expect(try backend.updateUpstream(org: "acme", repo: "mirror", .remove).upstream == nil)
        }
    }
}
