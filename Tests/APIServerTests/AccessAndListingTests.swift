import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
// @testable only to age a key in the metadata database; assertions use the HTTP API.
import Model
@testable import Store
import Testing

@Suite struct AccessAndListingTests {
    // MARK: Auth matrix

    @Test func badCredentialsAre401Everywhere() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["a": "1"])
        let expired = try f.store.createAPIKey(org: "acme", name: "old", expiresInSeconds: 100)
        _ = try f.store.withDatabase { db in
            try db.query("UPDATE api_keys SET expires_at = ? WHERE id = ?", [.double(Date().timeIntervalSince1970 - 1), .text(expired.key.id)])
        }
        let revoked = try f.store.createAPIKey(org: "acme", name: "gone")
        try f.store.revokeAPIKey(org: "acme", id: revoked.key.id)
        try await f.run { client in
            let requests: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/v1/acme/ws/content", nil), (.get, "/v1/acme/ws/diff?base_change_id=\(root)&head_change_id=\(change.id)", nil),
                (.post, "/v1/acme/ws/bookmarks/merge", #"{"target":"main","source":"main"}"#),
                (.patch, "/v1/acme/ws/changes/\(change.id)", #"{"message":"x"}"#),
                (.patch, "/v1/acme/repos/tags", #"{"repo_ids":[],"action":"remove","key":"k"}"#),
                (.patch, "/v1/acme/api-keys/\(revoked.key.id)", #"{"tags":{}}"#)]
            for (method, uri, json) in requests {
                for (credential, code, word) in [(nil as String?, "UNAUTHENTICATED", "Authorization"),
                                                 ("mesa_" + String(repeating: "0", count: 64), "UNAUTHENTICATED", "unknown"),
                                                 (expired.secret, "KEY_EXPIRED", "expired"), (revoked.secret, "KEY_REVOKED", "revoked")] {
                    let reply = try await send(client, method, uri, key: credential, json: json)
                    #expect(reply.status == 401 && reply.code == code, "\(method) \(uri): \(reply.text)")
                    #expect(reply.envelope?.message.contains(word) == true, "\(reply.text)")
                }
            }
            #expect(try f.store.change(org: "acme", repo: "ws", id: change.id).change.message == "seed")
        }
    }

    @Test func scopesGateWritesAndKeyManagement() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["a": "1"])
        let reader = try f.key([.read])
        let writer = try f.key([.read, .write])
        let target = try f.store.createAPIKey(org: "acme", name: "victim").key
        let repoID = try f.store.repo(org: "acme", name: "ws").id
        try await f.run { client in
            // Reads work with a read key.
            for uri in ["/v1/acme/ws/content", "/v1/acme/ws/diff?base_change_id=\(root)&head_change_id=\(change.id)",
                        "/v1/acme/ws/bookmarks?glob=m*", "/v1/acme/repos?tags=env:prod"] {
                #expect(try await send(client, .get, uri, key: reader).status == 200, "\(uri)")
            }
            let writes: [(HTTPRequest.Method, String, String)] = [
                (.post, "/v1/acme/ws/changes", #"{"base_change_id":"\#(root)"}"#),
                (.patch, "/v1/acme/ws/changes/\(change.id)", #"{"message":"x"}"#),
                (.post, "/v1/acme/ws/bookmarks/merge", #"{"target":"main","source":"main"}"#),
                (.post, "/v1/acme/ws/bookmarks", #"{"name":"b","change_id":"\#(root)"}"#),
                (.patch, "/v1/acme/repos/tags", #"{"repo_ids":["\#(repoID)"],"action":"set","key":"k","value":"v"}"#),
                (.patch, "/v1/acme/ws", #"{"tags":{"k":"v"}}"#)]
            for (method, uri, json) in writes {
                let reply = try await send(client, method, uri, key: reader, json: json)
                #expect(reply.status == 403 && reply.code == "FORBIDDEN", "\(method) \(uri): \(reply.text)")
            }
            let keyCalls: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/v1/acme/api-keys", nil), (.post, "/v1/acme/api-keys", #"{"name":"x"}"#),
                (.patch, "/v1/acme/api-keys/\(target.id)", #"{"tags":{"k":"v"}}"#), (.delete, "/v1/acme/api-keys/\(target.id)", nil)]
            for (method, uri, json) in keyCalls {
                let reply = try await send(client, method, uri, key: writer, json: json)
                #expect(reply.status == 403, "\(method) \(uri): \(reply.text)")
            }
            // Nothing changed.
            #expect(try f.changeCount("ws") == 1)
            #expect(try f.store.repo(org: "acme", name: "ws").tags == [:])
            #expect(try f.store.apiKey(org: "acme", id: target.id).tags == [:] && f.store.apiKey(org: "acme", id: target.id).revokedAt == nil)
            #expect(try f.store.listBookmarks(org: "acme", repo: "ws").items.map(\.name) == ["main"])
        }
    }

    @Test func repoScopedKeysSeeOtherReposAsMissing() async throws {
        let f = try Fixture()
        let mine = try f.seed("mine", files: ["a": "1"])
        let other = try f.seed("other", files: ["b": "2"])
        let myID = try f.store.repo(org: "acme", name: "mine").id
        let scoped = try f.key([.read, .write], repos: [myID])
        let otherBlob = try f.store.content(org: "acme", repo: "other", depth: 1)
        guard case .directory(_, _, let entries) = otherBlob, let blobSHA = entries.first?.oid else {
            Issue.record("no blob in other")
            return
        }
        try await f.run { client in
            let listed = try await send(client, .get, "/v1/acme/repos", key: scoped).json(RESTRepoPage.self)
            #expect(listed.repos.map(\.name) == ["mine"])
            for (repo, change) in [("mine", mine.id), ("other", other.id)] {
                let expected = repo == "mine" ? 200 : 404
                for uri in ["/v1/acme/\(repo)", "/v1/acme/\(repo)/content", "/v1/acme/\(repo)/changes",
                            "/v1/acme/\(repo)/changes/\(change)", "/v1/acme/\(repo)/bookmarks", "/v1/acme/\(repo)/bookmarks/main",
                            "/v1/acme/\(repo)/diff?base_change_id=\(root)&head_change_id=\(change)"] {
                    let reply = try await send(client, .get, uri, key: scoped)
                    #expect(reply.status == expected, "\(uri): \(reply.text)")
                }
                let patch = try await send(client, .patch, "/v1/acme/\(repo)/changes/\(change)", key: scoped, json: #"{"message":"m"}"#)
                #expect(patch.status == expected, "\(patch.text)")
            }
            #expect(try await send(client, .get, "/v1/acme/other/blobs/\(blobSHA)", key: scoped).status == 404)
            #expect(try await send(client, .get, "/v1/acme/other/blobs/\(blobSHA)", key: f.admin).status == 200)
            #expect(try f.store.change(org: "acme", repo: "other", id: other.id).change.message == "seed")
        }
    }

    // MARK: Pagination and filters

    @Test func repoListsFilterByTagsAcrossPages() async throws {
        let f = try Fixture()
        for index in 0..<9 {
            let tags = index % 3 == 0 ? ["env": "Prod", "team": "a"] : (index % 3 == 1 ? ["env": "dev"] : [:])
            _ = try f.store.createRepo(org: "acme", name: "r\(index)", tags: tags)
        }
        let prod = ["r0", "r3", "r6"]
        try await f.run { client in
            let all = (0..<9).map { "r\($0)" }
            for limit in [1, 2, 4, 100] {
                let names = try await walk(client, "/v1/acme/repos", key: f.admin, limit: limit, RESTRepoPage.self,
                                           items: { $0.repos.map(\.name) }, next: { $0.nextCursor })
                #expect(names == all, "limit \(limit)")
                for filter in ["env:prod", "env:PROD,team:a", #"{"env":"prod"}"#, #"{"env":{"$in":["PROD","x"]}}"#,
                               #"{"$and":[{"env":{"$starts_with":"pr"}},{"team":{"$exists":true}}]}"#] {
                    let names = try await walk(client, "/v1/acme/repos?tags=\(q(filter))", key: f.admin, limit: limit, RESTRepoPage.self,
                                               items: { $0.repos.map(\.name) }, next: { $0.nextCursor })
                    #expect(names == prod, "\(filter), limit \(limit)")
                }
            }
            let others = try await walk(client, "/v1/acme/repos?tags=\(q(#"{"$not":{"env":"prod"}}"#))", key: f.admin, limit: 2,
                                        RESTRepoPage.self, items: { $0.repos.map(\.name) }, next: { $0.nextCursor })
            #expect(others == all.filter { !prod.contains($0) })
            let orFilter = try await walk(client, "/v1/acme/repos?tags=\(q(#"{"$or":[{"env":"dev"},{"team":"a"}]}"#))", key: f.admin,
                                          limit: 3, RESTRepoPage.self, items: { $0.repos.map(\.name) }, next: { $0.nextCursor })
            #expect(orFilter.count == 6)

            for bad in ["env", #"{"env":"#, #"{"env":{"$regex":"x"}}"#, #"{"$nor":[]}"#, #"{"env":5}"#] {
                let reply = try await send(client, .get, "/v1/acme/repos?tags=\(q(bad))", key: f.admin)
                #expect(reply.status == 400, "\(bad): \(reply.text)")
            }
            for query in ["limit=0", "limit=101", "limit=ten", "cursor=%21%21", "cursor=eA"] {
                let reply = try await send(client, .get, "/v1/acme/repos?\(query)", key: f.admin)
                #expect(reply.status == 400 && reply.code == "INVALID_ARGUMENT", "\(query): \(reply.text)")
            }
        }
    }

    @Test func bookmarkListsFilterByGlobAcrossPages() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["a": "1"])
        for name in ["feature/a", "feature/b", "feature/c", "fix", "fox", "release"] {
            _ = try f.store.createBookmark(org: "acme", repo: "ws", bookmark: name, at: change.id)
        }
        try await f.run { client in
            for limit in [1, 2, 100] {
                let all = try await walk(client, "/v1/acme/ws/bookmarks", key: f.admin, limit: limit, RESTBookmarkPage.self,
                                         items: { $0.bookmarks.map(\.name) }, next: { $0.nextCursor })
                #expect(all == ["feature/a", "feature/b", "feature/c", "fix", "fox", "main", "release"])
                let features = try await walk(client, "/v1/acme/ws/bookmarks?glob=\(q("feature/*"))", key: f.admin, limit: limit,
                                              RESTBookmarkPage.self, items: { $0.bookmarks.map(\.name) }, next: { $0.nextCursor })
                #expect(features == ["feature/a", "feature/b", "feature/c"])
                let short = try await walk(client, "/v1/acme/ws/bookmarks?glob=\(q("f?x"))", key: f.admin, limit: limit,
                                           RESTBookmarkPage.self, items: { $0.bookmarks.map(\.name) }, next: { $0.nextCursor })
                #expect(short == ["fix", "fox"])
            }
            #expect(try await send(client, .get, "/v1/acme/ws/bookmarks?limit=101", key: f.admin).status == 400)
        }
    }

    @Test func keyListsFilterByNameScopeAndRepoAcrossPages() async throws {
        let f = try Fixture()
        let repo = try f.store.createRepo(org: "acme", name: "ws")
        let ci = try (0..<5).map { try f.store.createAPIKey(org: "acme", name: "CI-\($0)", scopes: [.read]).key.id }
        let deploy = try f.store.createAPIKey(org: "acme", name: "deploy", scopes: [.read, .write], repoIDs: [repo.id]).key.id
        try await f.run { client in
            for limit in [1, 2, 100] {
                let found = try await walk(client, "/v1/acme/api-keys?query=ci", key: f.admin, limit: limit, RESTKeyPage.self,
                                           items: { $0.apiKeys.map(\.id) }, next: { $0.nextCursor })
                #expect(found == ci.reversed(), "newest first, limit \(limit)")
                let writers = try await walk(client, "/v1/acme/api-keys?scope=write", key: f.admin, limit: limit, RESTKeyPage.self,
                                             items: { $0.apiKeys.map(\.id) }, next: { $0.nextCursor })
                #expect(writers.count == 2 && writers.first == deploy, "deploy and the admin key")
                let scoped = try await walk(client, "/v1/acme/api-keys?repo_id=\(repo.id)&status=active", key: f.admin, limit: limit,
                                            RESTKeyPage.self, items: { $0.apiKeys.map(\.id) }, next: { $0.nextCursor })
                #expect(scoped == [deploy])
            }
            // A cursor stays valid when keys are created between pages.
            let first = try await send(client, .get, "/v1/acme/api-keys?query=ci&limit=2", key: f.admin).json(RESTKeyPage.self)
            _ = try f.store.createAPIKey(org: "acme", name: "ci-new")
            let cursor = try #require(first.nextCursor)
            let rest = try await walk(client, "/v1/acme/api-keys?query=ci&cursor=\(q(cursor))", key: f.admin, limit: 100, RESTKeyPage.self,
                                      items: { $0.apiKeys.map(\.id) }, next: { $0.nextCursor })
            #expect(first.apiKeys.map(\.id) + rest == ci.reversed())

            for query in ["scope=owner", "status=old", "query=", "limit=0", "cursor=nope!"] {
                let reply = try await send(client, .get, "/v1/acme/api-keys?\(query)", key: f.admin)
                #expect(reply.status == 400, "\(query): \(reply.text)")
            }
        }
    }
}
