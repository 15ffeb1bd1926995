import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import Store
import Testing

/// `upstream` on repos and `/{org}/{repo}/upstream/syncs`. The upstream is another repo
/// of the same store, reached by its git directory's path (a local transport), so no
/// server is needed here; the transports have their own tests in StoreTests.
@Suite struct SyncEndpointTests {
    func object(_ reply: Reply) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: reply.body) as? [String: Any], "\(reply.text)")
    }

    @Test func repoUpstreamFollowsPostAndPatchSemanticsAndNeverShowsTheSecret() async throws {
        let f = try Fixture()
        try await f.run { client in
            var reply = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: """
                {"name":"mirror","upstream":{"url":"https://example.com/a.git","auth":{"kind":"token","token":"tok-SECRET-1"}}}
                """)
            #expect(reply.status == 201, "\(reply.text)")
            #expect(!reply.text.contains("tok-SECRET-1"))
            var upstream = try #require(try object(reply)["upstream"] as? [String: Any])
            #expect(upstream["url"] as? String == "https://example.com/a.git" && upstream["auth_kind"] as? String == "token")
            #expect(upstream["latest_sync"] is NSNull)

            // Omitting auth keeps it; null clears it; upstream null removes it.
            reply = try await send(client, .patch, "/v1/acme/mirror", key: f.admin, json: #"{"upstream":{"url":"https://example.com/b.git"}}"#)
            upstream = try #require(try object(reply)["upstream"] as? [String: Any])
            #expect(upstream["url"] as? String == "https://example.com/b.git" && upstream["auth_kind"] as? String == "token")
            reply = try await send(client, .patch, "/v1/acme/mirror", key: f.admin,
                                   json: #"{"upstream":{"url":"https://example.com/b.git","auth":{"kind":"username_password","username":"u","password":"p-SECRET"}}}"#)
            #expect(try object(reply)["upstream"].flatMap { $0 as? [String: Any] }?["auth_kind"] as? String == "username_password")
            #expect(!reply.text.contains("p-SECRET"))
            reply = try await send(client, .patch, "/v1/acme/mirror", key: f.admin, json: #"{"upstream":{"url":"https://example.com/b.git","auth":null}}"#)
            #expect(try object(reply)["upstream"].flatMap { $0 as? [String: Any] }?["auth_kind"] is NSNull)
            reply = try await send(client, .patch, "/v1/acme/mirror", key: f.admin, json: #"{"tags":{"a":"b"}}"#)
            #expect(try object(reply)["upstream"] is [String: Any], "a PATCH without 'upstream' leaves it")
            reply = try await send(client, .patch, "/v1/acme/mirror", key: f.admin, json: #"{"upstream":null}"#)
            #expect(try object(reply)["upstream"] is NSNull)

            // Bad input: a clear 400, nothing created or changed.
            for body in [#"{"name":"bad","upstream":{"url":"not a url"}}"#,
                         #"{"name":"bad","upstream":{"url":"https://h/x.git","auth":{"kind":"password"}}}"#,
                         #"{"name":"bad","upstream":{"url":"https://h/x.git","auth":{"kind":"token"}}}"#,
                         #"{"name":"bad","upstream":{"auth":null}}"#] {
                reply = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: body)
                #expect(reply.status == 400 && reply.code == "INVALID_ARGUMENT", "\(body): \(reply.text)")
            }
            #expect(try await send(client, .get, "/v1/acme/bad", key: f.admin).status == 404)
        }
    }

    @Test func syncsAreQueuedRunAndListedNewestFirst() async throws {
        let f = try Fixture()
        let seeded = try f.seed("src", files: ["README": "hello\n"])
        let source = try f.store.gitDirectory(org: "acme", name: "src")
        let reader = try f.key([.read])
        try await f.run { client in
            var reply = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"mirror","upstream":{"url":"\#(source)"}}"#)
            #expect(reply.status == 201)
            // A repo without an upstream cannot sync.
            _ = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"plain"}"#)
            reply = try await send(client, .post, "/v1/acme/plain/upstream/syncs", key: f.admin, json: #"{"direction":"pull"}"#)
            #expect(reply.status == 400 && reply.text.contains("no upstream"))
            for body in [#"{"direction":"sideways"}"#, #"{"direction":"pull","ref_globs":{}}"#, #"{}"#,
                         #"{"direction":"pull","ref_globs":{"branches":""}}"#] {
                reply = try await send(client, .post, "/v1/acme/mirror/upstream/syncs", key: f.admin, json: body)
                #expect(reply.status == 400 && reply.code == "INVALID_ARGUMENT", "\(body): \(reply.text)")
            }
            // Creating needs write; a read key gets 403 and nothing is queued.
            reply = try await send(client, .post, "/v1/acme/mirror/upstream/syncs", key: reader, json: #"{"direction":"pull"}"#)
            #expect(reply.status == 403)

            reply = try await send(client, .post, "/v1/acme/mirror/upstream/syncs", key: f.admin,
                                   json: #"{"direction":"pull","ref_globs":{"branches":"main"}}"#)
            #expect(reply.status == 201, "\(reply.text)")
            let queued = try reply.json(RESTSync.self)
            #expect(queued.status == "queued" && queued.attempt == 0 && queued.stats == nil && queued.startedAt == nil)
            #expect(queued.refGlobs == RESTSyncRefGlobs(branches: "main", tags: "*"))
            #expect(try object(reply).keys.sorted() == ["attempt", "created_at", "direction", "error", "finished_at", "id",
                                                        "ref_globs", "repo_id", "started_at", "stats", "status"])

            f.store.runPendingSyncs()
            reply = try await send(client, .get, "/v1/acme/mirror/upstream/syncs/\(queued.id)", key: reader)
            let done = try reply.json(RESTSync.self)
            #expect(done.status == "completed" && done.attempt == 1 && done.finishedAt != nil, "\(reply.text)")
            #expect(done.stats?.refs.first { $0.name == "refs/heads/main" }?.after == seeded.commitOID)
            #expect(done.stats?.refs.first { $0.name == "refs/heads/main" }?.outcome == "updated")
            reply = try await send(client, .get, "/v1/acme/mirror", key: reader)
            let repo = try reply.json(RESTRepo.self)
            #expect(repo.upstream?.latestSync?.id == queued.id && repo.headChangeID == seeded.id.rawValue)

            let second = try await send(client, .post, "/v1/acme/mirror/upstream/syncs", key: f.admin, json: #"{"direction":"push"}"#)
                .json(RESTSync.self)
            reply = try await send(client, .get, "/v1/acme/mirror/upstream/syncs?limit=1", key: reader)
            let page = try reply.json(RESTSyncPage.self)
            #expect(page.items.map(\.id) == [second.id] && page.hasMore)
            let rest = try await send(client, .get, "/v1/acme/mirror/upstream/syncs?limit=1&cursor=\(page.nextCursor ?? "")", key: reader)
                .json(RESTSyncPage.self)
            #expect(rest.items.map(\.id) == [queued.id] && !rest.hasMore)
            #expect(try await send(client, .get, "/v1/acme/mirror/upstream/syncs/sync_nope", key: reader).status == 404)
            // A key scoped to another repo does not see this one's syncs.
            let other = try f.key([.read, .write], repos: [try f.store.repo(org: "acme", name: "plain").id])
            #expect(try await send(client, .get, "/v1/acme/mirror/upstream/syncs", key: other).status == 404)
            #expect(try await send(client, .post, "/v1/acme/mirror/upstream/syncs", key: other, json: #"{"direction":"pull"}"#).status == 404)
        }
    }
}
