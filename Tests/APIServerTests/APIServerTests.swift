import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import NIOCore
import Store
import Testing

/// A fresh store with org `acme` and an admin key.
struct Fixture {
    let store: Store
    let admin: String
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "apiserver-\(UUID().uuidString)"
        store = try Store(directory: directory)
        _ = try store.createOrg(slug: "acme")
        admin = try store.createAPIKey(org: "acme", name: "admin", scopes: [.read, .write, .admin]).secret
    }

    /// `.router` calls the router in process; `.live` goes through a real socket and
    /// Hummingbird's HTTP/1.1 server.
    /// `limits` applies to `.live` runs whole; `.router` runs see only the body limits.
    func run(_ setup: TestingSetup = .router, maxBodyBytes: Int = 32 << 20, limits: Limits? = nil,
             _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var chosen = limits ?? Limits()
        if limits == nil { chosen.maxBodyBytes = maxBodyBytes }
        let app = APIServer(store: store, limits: chosen).application(host: "127.0.0.1", port: 0)
        try await app.test(setup, body)
    }
}

func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?,
          json: String? = nil) async throws -> (Int, Data) {
    var headers = HTTPFields()
    if let key { headers[.authorization] = "Bearer \(key)" }
    if json != nil { headers[.contentType] = "application/json" }
    let response = try await client.execute(uri: uri, method: method, headers: headers,
                                            body: json.map { ByteBuffer(string: $0) })
    return (Int(response.status.code), Data(response.body.readableBytesView))
}

func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
    try RESTCoding.decoder().decode(T.self, from: data)
}

func encode(_ value: some Encodable) throws -> String {
    String(decoding: try RESTCoding.encoder().encode(value), as: UTF8.self)
}

let root = String(repeating: "z", count: 32)

@Suite struct APIServerTests {
    @Test func whoami() async throws {
        let f = try Fixture()
        try await f.run { client in
            let (status, data) = try await call(client, .get, "/v1/whoami", key: f.admin)
            #expect(status == 200)
            let who = try decode(RESTWhoami.self, data)
            #expect(who.org.slug == "acme")
            #expect(who.scopes.contains("admin"))
            let (orgStatus, orgData) = try await call(client, .get, "/v1/acme", key: f.admin)
            #expect(orgStatus == 200)
            #expect(try decode(RESTOrgInfo.self, orgData).numRepos == 0)
        }
    }

    @Test func repoLifecycle() async throws {
        let f = try Fixture()
        try await f.run { client in
            var (status, data) = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"ws","tags":{"env":"dev"}}"#)
            #expect(status == 201)
            let repo = try decode(RESTRepo.self, data)
            #expect(repo.name == "ws" && repo.defaultBookmark == "main" && repo.headChangeID == root && repo.tags["env"] == "dev")
            #expect(String(decoding: data, as: UTF8.self).contains(#""head_change_id""#))

            (status, data) = try await call(client, .get, "/v1/acme/repos?limit=10", key: f.admin)
            #expect(status == 200)
            let page = try decode(RESTRepoPage.self, data)
            #expect(page.repos.map(\.name) == ["ws"] && page.hasMore == false)

            (status, data) = try await call(client, .get, "/v1/acme/ws", key: f.admin)
            #expect(status == 200)
            try #expect(decode(RESTRepo.self, data).id == repo.id)

            (status, data) = try await call(client, .patch, "/v1/acme/ws", key: f.admin, json: #"{"tags":{"env":null,"team":"a"}}"#)
            #expect(status == 200)
            try #expect(decode(RESTRepo.self, data).tags == ["team": "a"])

            (status, data) = try await call(client, .delete, "/v1/acme/ws", key: f.admin)
            #expect(status == 200)
            try #expect(decode(RESTSuccess.self, data).success)

            (status, data) = try await call(client, .get, "/v1/acme/ws", key: f.admin)
            #expect(status == 404)
            #expect(try decode(RESTErrorEnvelope.self, data).error.code == "NOT_FOUND")
        }
    }

    @Test func changesAndBookmarks() async throws {
        let f = try Fixture()
        try await f.run { client in
            _ = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"ws"}"#)
            let body = RESTCreateChange(baseChangeID: root, message: "first",
                                        files: [.upsert("a.txt", Array("hello\n".utf8)),
                                                .upsert("bin/run", Array("#!/bin/sh\n".utf8), mode: .executable)])
            var (status, data) = try await call(client, .post, "/v1/acme/ws/changes", key: f.admin, json: try encode(body))
            #expect(status == 201, "\(String(decoding: data, as: UTF8.self))")
            let first = try decode(RESTChange.self, data)
            #expect(first.message == "first" && first.currentCommitOID.count == 40 && !first.isConflicted)

            (status, data) = try await call(client, .get, "/v1/acme/ws/changes/\(first.id)", key: f.admin)
            #expect(status == 200)
            let detail = try decode(RESTChange.self, data)
            #expect(Set(detail.files ?? []) == ["a.txt", "bin/run"])
            #expect(detail.conflicts == [])

            let second = RESTCreateChange(baseChangeID: first.id, message: "second", files: [.delete("a.txt")])
            (status, data) = try await call(client, .post, "/v1/acme/ws/changes", key: f.admin, json: try encode(second))
            #expect(status == 201)
            let two = try decode(RESTChange.self, data)
            #expect(two.parents == [first.id])

            // Bookmarks: create at the first change, move forward, refuse a backward move.
            (status, data) = try await call(client, .post, "/v1/acme/ws/bookmarks", key: f.admin,
                                            json: try encode(RESTCreateBookmark(name: "feature", changeID: first.id)))
            #expect(status == 201)
            #expect(try decode(RESTBookmark.self, data).changeID == first.id)
            (status, _) = try await call(client, .post, "/v1/acme/ws/bookmarks", key: f.admin,
                                         json: try encode(RESTCreateBookmark(name: "feature", changeID: first.id)))
            #expect(status == 409)

            (status, data) = try await call(client, .patch, "/v1/acme/ws/bookmarks/feature", key: f.admin,
                                            json: try encode(RESTMoveBookmark(changeID: two.id)))
            #expect(status == 200)
            let moved = try decode(RESTBookmark.self, data)
            #expect(moved.changeID == two.id && moved.fromChangeID == first.id)

            (status, data) = try await call(client, .patch, "/v1/acme/ws/bookmarks/feature", key: f.admin,
                                            json: try encode(RESTMoveBookmark(changeID: first.id)))
            #expect(status == 400, "\(String(decoding: data, as: UTF8.self))")
            (status, _) = try await call(client, .patch, "/v1/acme/ws/bookmarks/feature", key: f.admin,
                                         json: try encode(RESTMoveBookmark(changeID: first.id, allowBackwards: true)))
            #expect(status == 200)

            // The expected_change_id extension: a stale expectation is 409 and moves nothing.
            (status, data) = try await call(client, .patch, "/v1/acme/ws/bookmarks/feature", key: f.admin,
                                            json: try encode(RESTMoveBookmark(changeID: two.id, expectedChangeID: two.id)))
            #expect(status == 409, "\(String(decoding: data, as: UTF8.self))")
            (status, data) = try await call(client, .get, "/v1/acme/ws/bookmarks/feature", key: f.admin)
            #expect(try decode(RESTBookmark.self, data).changeID == first.id)
            (status, _) = try await call(client, .patch, "/v1/acme/ws/bookmarks/feature", key: f.admin,
                                         json: try encode(RESTMoveBookmark(changeID: two.id, expectedChangeID: first.id)))
            #expect(status == 200)
            (status, _) = try await call(client, .patch, "/v1/acme/ws/bookmarks/feature", key: f.admin,
                                         json: try encode(RESTMoveBookmark(changeID: first.id, allowBackwards: true)))
            #expect(status == 200)

            (status, data) = try await call(client, .get, "/v1/acme/ws/bookmarks", key: f.admin)
            #expect(status == 200)
            #expect(Set(try decode(RESTBookmarkPage.self, data).bookmarks.map(\.name)).contains("feature"))

            (status, data) = try await call(client, .get, "/v1/acme/ws/changes?bookmark=feature", key: f.admin)
            #expect(status == 200)
            #expect(try decode(RESTChangePage.self, data).changes.map(\.id).contains(first.id))

            (status, _) = try await call(client, .delete, "/v1/acme/ws/bookmarks/feature", key: f.admin)
            #expect(status == 200)
            (status, _) = try await call(client, .get, "/v1/acme/ws/bookmarks/feature", key: f.admin)
            #expect(status == 404)
        }
    }

    @Test func authErrors() async throws {
        let f = try Fixture()
        try await f.run { client in
            var (status, data) = try await call(client, .get, "/v1/whoami", key: "mesa_unknownunknown")
            #expect(status == 401)
            let envelope = try decode(RESTErrorEnvelope.self, data)
            #expect(envelope.error.code == "UNAUTHENTICATED" && envelope.error.message.contains("unknown"))
            (status, _) = try await call(client, .get, "/v1/whoami", key: nil)
            #expect(status == 401)

            // A read key cannot create repos.
            (status, data) = try await call(client, .post, "/v1/acme/api-keys", key: f.admin, json: #"{"name":"ro","scopes":["read"]}"#)
            #expect(status == 201)
            let readKey = try decode(RESTCreatedKey.self, data)
            #expect(readKey.key.hasPrefix("mesa_"))
            (status, data) = try await call(client, .post, "/v1/acme/repos", key: readKey.key, json: #"{"name":"x"}"#)
            #expect(status == 403)
            #expect(try decode(RESTErrorEnvelope.self, data).error.code == "FORBIDDEN")

            // A repo-scoped key sees other repos as missing.
            (_, data) = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"mine"}"#)
            let mine = try decode(RESTRepo.self, data)
            _ = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"other"}"#)
            (status, data) = try await call(client, .post, "/v1/acme/api-keys", key: f.admin,
                                            json: try encode(RESTCreateKey(name: "scoped", scopes: ["read", "write"], repoIDs: [mine.id],
                                                                           expiresInSeconds: 3600)))
            #expect(status == 201)
            let scoped = try decode(RESTCreatedKey.self, data)
            (status, _) = try await call(client, .get, "/v1/acme/mine", key: scoped.key)
            #expect(status == 200)
            (status, data) = try await call(client, .get, "/v1/acme/other", key: scoped.key)
            #expect(status == 404)
            (status, data) = try await call(client, .get, "/v1/acme/repos", key: scoped.key)
            #expect(try decode(RESTRepoPage.self, data).repos.map(\.name) == ["mine"])

            // Keys: list and revoke; a revoked key is 401.
            (status, data) = try await call(client, .get, "/v1/acme/api-keys", key: f.admin)
            #expect(status == 200)
            #expect(try decode(RESTKeyPage.self, data).apiKeys.count == 3)
            (status, _) = try await call(client, .delete, "/v1/acme/api-keys/\(readKey.id)", key: f.admin)
            #expect(status == 200)
            (status, data) = try await call(client, .get, "/v1/whoami", key: readKey.key)
            #expect(status == 401)
            #expect(try decode(RESTErrorEnvelope.self, data).error.message.contains("revoked"))
        }
    }

    @Test func badInput() async throws {
        let f = try Fixture()
        try await f.run { client in
            var (status, data) = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name": "#)
            #expect(status == 400)
            #expect(try decode(RESTErrorEnvelope.self, data).error.code == "INVALID_ARGUMENT")
            (status, _) = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name": 5}"#)
            #expect(status == 400)
            _ = try await call(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"ws"}"#)
            (status, _) = try await call(client, .post, "/v1/acme/ws/changes", key: f.admin,
                                         json: #"{"base_change_id":"nope","files":[]}"#)
            #expect(status == 400)
            (status, _) = try await call(client, .post, "/v1/acme/ws/changes", key: f.admin,
                                         json: #"{"base_change_id":"\#(root)","files":[{"path":"a","content":"!!!"}]}"#)
            #expect(status == 400)
            (status, _) = try await call(client, .get, "/v1/acme/repos?limit=1000", key: f.admin)
            #expect(status == 400)
            (status, data) = try await call(client, .get, "/v1/acme/ws/no/such/route", key: f.admin)
            #expect(status == 404)
            #expect(try decode(RESTErrorEnvelope.self, data).error.code == "NOT_FOUND")
        }
    }
}
