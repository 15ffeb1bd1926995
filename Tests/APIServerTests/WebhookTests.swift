import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Infra
import MesaAPI
import Model
import NIOCore
import Store
import Synchronization
import TestSupport
import Testing

/// A loopback webhook receiver: records every POST it accepts; answers 500 to the next
/// `failNext` requests first.
final class Receiver: Sendable {
    struct Hit: Sendable {
        let headers: [String: String]
        let body: [UInt8]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var type: String { json["type"] as? String ?? "" }
    }

    private struct State {
        var hits: [Hit] = []
        var failNext = 0
        var refused = 0
    }

    private let state = Mutex(State())

    var hits: [Hit] { state.withLock { $0.hits } }
    var types: [String] { hits.map(\.type) }
    var refused: Int { state.withLock { $0.refused } }
    func fail(next count: Int) { state.withLock { $0.failNext = count } }

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.post("hook") { [self] request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let hit = Hit(headers: headers, body: Array(body.readableBytesView))
            let failed = state.withLock { state -> Bool in
                if state.failNext > 0 {
                    state.failNext -= 1
                    state.refused += 1
                    return true
                }
                state.hits.append(hit)
                return false
            }
            return Response(status: failed ? .internalServerError : .noContent)
        }
        return router
    }

    /// Runs `body` with the receiver listening; its argument is the URL to register.
    func serve(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let app = Application(router: router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            try await body("http://127.0.0.1:\(client.port ?? 0)/hook")
        }
    }
}

/// Fast retries, so a test sees several attempts in well under a second.
func fastDeliverer(_ store: Store, requestTimeout: Duration = .seconds(5)) -> WebhookDeliverer {
    WebhookDeliverer(store: store, options: .init(
        publicURL: "http://mesa.test", backoff: Backoff(initial: .milliseconds(50), factor: 2, cap: .milliseconds(200), maxAttempts: 6),
        requestTimeout: requestTimeout, pollInterval: .milliseconds(50)))
}

/// A loopback port that takes connections into its backlog and never answers: a hung receiver.
final class SilentListener: Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && listen(descriptor, 16) == 0
                    && getsockname(descriptor, address, &length) == 0
            }
        }
        guard bound else { throw TestFailure("cannot listen on loopback: \(String(cString: strerror(errno)))") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Closing resets the connections waiting in the backlog: the hung attempt ends.
    func close() { _ = Glibc.close(descriptor) }
}

/// The signature the documented algorithm gives, computed by Python's hmac module
/// (independently of the server's OpenSSL call).
func pythonSignature(secret: String, timestamp: String, body: [UInt8]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", """
        import hashlib, hmac, sys
        print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode() + b"." + sys.stdin.buffer.read(), hashlib.sha256).hexdigest())
        """, secret, timestamp]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    input.fileHandleForWriting.write(Data(body))
    try input.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite("Webhook targets over REST")
struct WebhookTargetRouteTests {
    @Test func createShowsTheSecretOnceAndCRUDFollowsTheReference() async throws {
        let f = try Fixture()
        let repo = try f.store.createRepo(org: "acme", name: "r1")
        try await f.run { client in
            let created = try await send(client, .post, "/v1/acme/webhook-targets", key: f.admin,
                                         json: #"{"url": "https://hooks.example.com/x", "name": "ci", "events": ["push", "repo.created"], "repo_ids": ["\#(repo.id)"]}"#)
            #expect(created.status == 201, "\(created.text)")
            let target = try created.json(RESTWebhookTarget.self)
            #expect(target.secret?.hasPrefix("whsec_") == true && target.secret?.count == 70)
            #expect(target.events == ["push", "repo.created"] && target.repoIDs == [repo.id] && target.name == "ci")

            let fetched = try await send(client, .get, "/v1/acme/webhook-targets/\(target.id)", key: f.admin)
            #expect(fetched.status == 200)
            #expect(!fetched.text.contains("secret") && !fetched.text.contains("whsec_"))
            #expect(fetched.text.contains(#""repo_ids":["\#(repo.id)"]"#))

            // PATCH: given fields replace, null clears the name and makes the target org-wide.
            let patched = try await send(client, .patch, "/v1/acme/webhook-targets/\(target.id)", key: f.admin,
                                         json: #"{"name": null, "repo_ids": null, "events": ["bookmark.moved"]}"#)
            #expect(patched.status == 200, "\(patched.text)")
            #expect(patched.text.contains(#""name":null"#) && patched.text.contains(#""repo_ids":null"#))
            let after = try patched.json(RESTWebhookTarget.self)
            #expect(after.events == ["bookmark.moved"] && after.url == "https://hooks.example.com/x" && after.secret == nil)

            // An all-events target (events omitted), then paging over both.
            let second = try await send(client, .post, "/v1/acme/webhook-targets", key: f.admin, json: #"{"url": "http://127.0.0.1:9/h"}"#)
            #expect(try second.json(RESTWebhookTarget.self).events.count == WebhookEventType.allCases.count)
            let ids = try await walk(client, "/v1/acme/webhook-targets", key: f.admin, limit: 1, RESTWebhookTargetPage.self,
                                     items: { $0.items.map(\.id) }, next: { $0.nextCursor })
            #expect(ids.count == 2 && ids.first == target.id)

            let deleted = try await send(client, .delete, "/v1/acme/webhook-targets/\(target.id)", key: f.admin)
            #expect(deleted.status == 200 && deleted.text == #"{"success":true}"#)
            #expect(try await send(client, .get, "/v1/acme/webhook-targets/\(target.id)", key: f.admin).status == 404)
            #expect(try await send(client, .delete, "/v1/acme/webhook-targets/\(target.id)", key: f.admin).status == 404)
        }
    }

    @Test func badInputIsA400ThatChangesNothing() async throws {
        let f = try Fixture()
        try await f.run { client in
            let cases: [(String, String)] = [
                (#"{"url": "ftp://example.com/x"}"#, "http:// or https://"),
                (#"{"url": "file:///etc/passwd"}"#, "http:// or https://"),
                (#"{"url": "not a url"}"#, "http:// or https://"),
                (#"{"url": "https://user:pw@example.com/"}"#, "credentials"),
                (#"{"name": "x"}"#, "missing required field 'url'"),
                (#"{"url": "https://example.com", "events": ["repo.exploded"]}"#, "unknown event 'repo.exploded'"),
                (#"{"url": "https://example.com", "events": []}"#, "at least one event"),
                (#"{"url": "https://example.com", "repo_ids": ["repo_nope"]}"#, "repo_nope"),
                (#"{"url": "https://example.com", "name": ""}"#, "'name'"),
            ]
            for (body, message) in cases {
                let reply = try await send(client, .post, "/v1/acme/webhook-targets", key: f.admin, json: body)
                #expect(reply.status == 400, "\(body): \(reply.text)")
                #expect(reply.code == "INVALID_ARGUMENT" && reply.envelope?.message.contains(message) == true, "\(body): \(reply.text)")
            }
            #expect(try f.store.listWebhookTargets(org: "acme").items.isEmpty)

            let target = try f.store.createWebhookTarget(org: "acme", name: "keep", url: "https://example.com/a", events: nil, repoIDs: nil)
            let bad = try await send(client, .patch, "/v1/acme/webhook-targets/\(target.target.id)", key: f.admin,
                                     json: #"{"url": "gopher://x", "name": "changed"}"#)
            #expect(bad.status == 400)
            #expect(try f.store.webhookTarget(org: "acme", id: target.target.id) == target.target)
            let limit = try await send(client, .get, "/v1/acme/webhook-targets?limit=0", key: f.admin)
            #expect(limit.status == 400)
        }
    }

    @Test func onlyOrgWideAdminKeysManageTargets() async throws {
        let f = try Fixture()
        let repo = try f.store.createRepo(org: "acme", name: "r1")
        let writer = try f.key([.read, .write])
        let scopedAdmin = try f.key([.read, .write, .admin], repos: [repo.id])
        try await f.run { client in
            for key in [writer, scopedAdmin] {
                let list = try await send(client, .get, "/v1/acme/webhook-targets", key: key)
                #expect(list.status == 403 && list.code == "FORBIDDEN", "\(list.text)")
                let create = try await send(client, .post, "/v1/acme/webhook-targets", key: key, json: #"{"url": "https://example.com"}"#)
                #expect(create.status == 403)
            }
            #expect(try await send(client, .get, "/v1/acme/webhook-targets", key: nil).status == 401)
            #expect(try await send(client, .get, "/v1/other/webhook-targets", key: f.admin).status == 404)
            #expect(try f.store.listWebhookTargets(org: "acme").items.isEmpty)
        }
    }
}

@Suite("Webhook delivery")
struct WebhookDeliveryTests {
    @Test func eventsArriveSignedInTheDocumentedEnvelope() async throws {
        let f = try Fixture()
        let receiver = Receiver()
        try await receiver.serve { url in
            let target = try f.store.createWebhookTarget(org: "acme", name: "all", url: url, events: nil, repoIDs: nil)
            let repo = try f.store.createRepo(org: "acme", name: "site")
            let change = try f.store.createChange(org: "acme", repo: "site", base: .root, message: "one",
                                                  files: [.upsert(path: "a.txt", content: Array("a".utf8))])
            _ = try f.store.moveBookmark(org: "acme", repo: "site", bookmark: "main", to: change.id)
            _ = try f.store.updateChange(org: "acme", repo: "site", id: change.id, message: "one, amended")
            let deliverer = fastDeliverer(f.store)
            deliverer.start()
            defer { deliverer.stop() }
            let expected = ["repo.created", "change.created", "bookmark.moved", "change.evolved", "push"]
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= expected.count })
            #expect(receiver.types == expected)

            for hit in receiver.hits {
                // x-mesa-signature: t=<unix>,sha256=<hex HMAC-SHA256(secret, "<t>." + body)>
                let header = try #require(hit.headers["x-mesa-signature"])
                let parts = Dictionary(uniqueKeysWithValues: header.split(separator: ",").map {
                    let pair = $0.split(separator: "=", maxSplits: 1)
                    return (String(pair[0]), String(pair[1]))
                })
                let t = try #require(parts["t"])
                #expect(abs(Int(t)! - Int(Date().timeIntervalSince1970)) < 60)
                #expect(parts["sha256"] == (try pythonSignature(secret: target.secret, timestamp: t, body: hit.body)))
                #expect(hit.headers["content-type"] == "application/json")
                let json = hit.json
                #expect(Set(json.keys) == ["id", "type", "occurred_at", "organization", "repository", "data"])
                let org = try #require(json["organization"] as? [String: Any])
                #expect(org["slug"] as? String == "acme" && org["id"] as? String != nil && org["name"] as? String == "acme")
                let repository = try #require(json["repository"] as? [String: Any])
                #expect(repository["id"] as? String == repo.id && repository["name"] as? String == "site")
                #expect(repository["url"] as? String == "http://mesa.test/v1/acme/site")
                #expect(hit.headers["x-mesa-event"] == hit.type)
            }
            let moved = try #require(receiver.hits[2].json["data"] as? [String: Any])
            let bookmark = try #require(moved["bookmark"] as? [String: Any])
            #expect(bookmark["name"] as? String == "main" && bookmark["change_id"] as? String == change.id.rawValue)
            #expect(bookmark["commit_oid"] as? String == change.commitOID && bookmark["is_default"] as? Bool == true)
            let from = try #require(moved["from"] as? [String: Any])
            #expect(from["change_id"] as? String == ChangeID.root.rawValue)
            let evolved = try #require(receiver.hits[3].json["data"] as? [String: Any])
            #expect(evolved["previous_current_commit_oid"] as? String == change.commitOID)
            #expect((evolved["change"] as? [String: Any])?["message"] as? String == "one, amended")
            let push = try #require(receiver.hits[4].json["data"] as? [String: Any])
            let update = try #require((push["updates"] as? [[String: Any]])?.first)
            #expect(update["ref"] as? String == "refs/heads/main" && update["before"] as? String == change.commitOID)
            #expect(update["action"] as? String == "updated")
            #expect(Set(receiver.hits.map { $0.json["id"] as? String ?? "" }).count == expected.count)
        }
    }

    @Test func aFailingReceiverGetsRetriesInOrderAndTheLogShowsThem() async throws {
        let f = try Fixture()
        let receiver = Receiver()
        receiver.fail(next: 3)
        try await receiver.serve { url in
            let target = try f.store.createWebhookTarget(org: "acme", name: nil, url: url, events: [.bookmarkCreated], repoIDs: nil)
            _ = try f.store.createRepo(org: "acme", name: "r")
            for index in 0..<5 {
                _ = try f.store.createBookmark(org: "acme", repo: "r", bookmark: "b\(index)", at: .root)
            }
            let deliverer = fastDeliverer(f.store)
            deliverer.start()
            defer { deliverer.stop() }
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= 5 })
            #expect(receiver.refused == 3)
            let names = receiver.hits.map { (($0.json["data"] as? [String: Any])?["bookmark"] as? [String: Any])?["name"] as? String ?? "" }
            #expect(names == ["b0", "b1", "b2", "b3", "b4"])

            // The log, newest first, over REST: the first event took four attempts.
            try await f.run { client in
                let reply = try await send(client, .get, "/v1/acme/webhook-targets/\(target.target.id)/deliveries", key: f.admin)
                #expect(reply.status == 200, "\(reply.text)")
                let log = try reply.json(RESTWebhookDeliveryPage.self).items
                #expect(log.count == 5)
                #expect(log.allSatisfy { $0.state == "delivered" && $0.statusCode == 204 && $0.error == nil })
                #expect(log.last?.attempts == 4 && log.first?.attempts == 1)
                #expect(log.map(\.eventType) == Array(repeating: "bookmark.created", count: 5))
                let other = try await send(client, .get, "/v1/acme/webhook-targets/wht_nope/deliveries", key: f.admin)
                #expect(other.status == 404)
            }
        }
    }

    @Test func aDeadTargetIsGivenUpWithoutBlockingAnother() async throws {
        let f = try Fixture()
        let receiver = Receiver()
        try await receiver.serve { url in
            // Port 9 (discard) on loopback: nothing listens, every attempt is refused.
            let dead = try f.store.createWebhookTarget(org: "acme", name: "dead", url: "http://127.0.0.1:9/hook", events: nil, repoIDs: nil)
            _ = try f.store.createWebhookTarget(org: "acme", name: "live", url: url, events: nil, repoIDs: nil)
            _ = try f.store.createRepo(org: "acme", name: "r")
            _ = try f.store.createBookmark(org: "acme", repo: "r", bookmark: "x", at: .root)
            let deliverer = fastDeliverer(f.store)
            deliverer.start()
            defer { deliverer.stop() }
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= 2 })
            #expect(receiver.types == ["repo.created", "bookmark.created"])
            // Six attempts (the backoff's limit), then failed; the lane goes on with the next event.
            #expect(await eventually(timeout: .seconds(20)) {
                (try? f.store.webhookDeliveries(org: "acme", targetID: dead.target.id).items.allSatisfy { $0.state == .failed }) == true
            })
            let log = try f.store.webhookDeliveries(org: "acme", targetID: dead.target.id).items
            #expect(log.count == 2 && log.allSatisfy { $0.attempts == 6 && $0.statusCode == nil && ($0.error ?? "").isEmpty == false })
        }
    }

    @Test func aHangingTargetDoesNotHoldUpAnother() async throws {
        let f = try Fixture()
        let receiver = Receiver()
        let silent = try SilentListener()
        try await receiver.serve { url in
            let hung = try f.store.createWebhookTarget(org: "acme", name: "hung", url: "http://127.0.0.1:\(silent.port)/hook",
                                                       events: nil, repoIDs: nil)
            _ = try f.store.createWebhookTarget(org: "acme", name: "live", url: url, events: nil, repoIDs: nil)
            _ = try f.store.createRepo(org: "acme", name: "r")
            _ = try f.store.createBookmark(org: "acme", repo: "r", bookmark: "x", at: .root)
            // The hung target's first attempt waits out a 60 s timeout; the live one is
            // served meanwhile.
            let deliverer = fastDeliverer(f.store, requestTimeout: .seconds(60))
            deliverer.start()
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= 2 })
            #expect(receiver.types == ["repo.created", "bookmark.created"])
            // Its first attempt is still under way: nothing recorded for it yet.
            #expect(try f.store.webhookDeliveries(org: "acme", targetID: hung.target.id).items.map(\.attempts) == [0, 0])
            silent.close()
            await offPool { deliverer.stop() }
        }
    }

    @Test func filtersByEventAndRepo() async throws {
        let f = try Fixture()
        let receiver = Receiver()
        try await receiver.serve { url in
            let one = try f.store.createRepo(org: "acme", name: "one")
            _ = try f.store.createRepo(org: "acme", name: "two")
            _ = try f.store.createWebhookTarget(org: "acme", name: nil, url: url, events: [.bookmarkCreated, .repoDeleted],
                                                repoIDs: [one.id])
            for repo in ["one", "two"] {
                _ = try f.store.createBookmark(org: "acme", repo: repo, bookmark: "feature", at: .root)
                _ = try f.store.createChange(org: "acme", repo: repo, base: .root)
            }
            try f.store.deleteRepo(org: "acme", name: "two")
            try f.store.deleteRepo(org: "acme", name: "one")
            let deliverer = fastDeliverer(f.store)
            deliverer.start()
            defer { deliverer.stop() }
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= 2 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.types == ["bookmark.created", "repo.deleted"])
            #expect(receiver.hits.allSatisfy { ($0.json["repository"] as? [String: Any])?["id"] as? String == one.id })
            let deleted = try #require(receiver.hits.last?.json["data"] as? [String: Any])
            #expect((deleted["repo"] as? [String: Any])?["name"] as? String == "one")
        }
    }

    @Test func eventsRecordedBeforeARestartAreDeliveredAfterIt() async throws {
        let directory = try TemporaryDirectory(prefix: "webhooks")
        let receiver = Receiver()
        try await receiver.serve { url in
            var store: Store? = try Store(directory: directory.path)
            _ = try store!.createOrg(slug: "acme")
            _ = try store!.createWebhookTarget(org: "acme", name: nil, url: url, events: nil, repoIDs: nil)
            _ = try store!.createRepo(org: "acme", name: "r")
            // A first server run whose receiver refuses everything: nothing gets through.
            receiver.fail(next: 1000)
            do {
                let first = fastDeliverer(store!)
                first.start()
                #expect(await eventually(timeout: .seconds(10)) { receiver.refused >= 2 })
                first.stop()
            }
            _ = try store!.createBookmark(org: "acme", repo: "r", bookmark: "late", at: .root)
            store = nil  // the server stops: the store's lock and connection go

            receiver.fail(next: 0)
            let reopened = try Store(directory: directory.path)
            let second = fastDeliverer(reopened)
            second.start()
            defer { second.stop() }
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= 2 })
            #expect(receiver.types == ["repo.created", "bookmark.created"])
        }
    }

    /// The entry point other writers (upstream syncs) use: an event in its own transaction.
    @Test func recordEventQueuesForMatchingTargetsOnly() async throws {
        let f = try Fixture()
        let receiver = Receiver()
        try await receiver.serve { url in
            let repo = try f.store.createRepo(org: "acme", name: "r")
            let syncs = try f.store.createWebhookTarget(org: "acme", name: nil, url: url, events: [.syncQueued], repoIDs: nil)
            let other = try f.store.createWebhookTarget(org: "acme", name: nil, url: url, events: [.push], repoIDs: nil)
            struct Sync: Encodable { let sync: [String: String] }
            try f.store.recordEvent(org: "acme", repoID: repo.id, type: .syncQueued, data: Sync(sync: ["id": "sync_1", "status": "queued"]))
            try f.store.recordEvent(org: "acme", repoID: nil, type: .syncQueued, data: Sync(sync: ["id": "sync_2", "status": "queued"]))
            #expect(throws: MesaError.self) {
                try f.store.recordEvent(org: "acme", repoID: "repo_missing", type: .syncQueued, data: Sync(sync: [:]))
            }
            #expect(try f.store.webhookDeliveries(org: "acme", targetID: other.target.id).items.isEmpty)
            let deliverer = fastDeliverer(f.store)
            deliverer.start()
            defer { deliverer.stop() }
            #expect(await eventually(timeout: .seconds(20)) { receiver.hits.count >= 2 })
            let ids = receiver.hits.map { (($0.json["data"] as? [String: Any])?["sync"] as? [String: Any])?["id"] as? String }
            #expect(Set(ids.compactMap { $0 }) == ["sync_1", "sync_2"])
            let orgLevel = try #require(receiver.hits.first { $0.json["repository"] is NSNull })
            #expect((orgLevel.json["organization"] as? [String: Any])?["slug"] as? String == "acme")
            #expect(try f.store.webhookDeliveries(org: "acme", targetID: syncs.target.id).items.count == 2)
        }
    }

    @Test func writesThroughTheRESTServerRecordEvents() async throws {
        let f = try Fixture()
        let target = try f.store.createWebhookTarget(org: "acme", name: nil, url: "https://example.com/h", events: nil, repoIDs: nil)
        try await f.run { client in
            let created = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name": "r"}"#)
            #expect(created.status == 201)
            #expect(try await send(client, .patch, "/v1/acme/r", key: f.admin, json: #"{"tags": {"env": "prod"}}"#).status == 200)
            // A PATCH that changes nothing records nothing.
            #expect(try await send(client, .patch, "/v1/acme/r", key: f.admin, json: #"{"tags": {"env": "prod"}}"#).status == 200)
            #expect(try await send(client, .post, "/v1/acme/r/bookmarks", key: f.admin,
                                   json: #"{"name": "dev", "change_id": "\#(ChangeID.root.rawValue)"}"#).status == 201)
            #expect(try await send(client, .delete, "/v1/acme/r/bookmarks/dev", key: f.admin).status == 200)
            // A refused write records nothing either.
            #expect(try await send(client, .delete, "/v1/acme/r/bookmarks/dev", key: f.admin).status == 404)
        }
        let log = try f.store.webhookDeliveries(org: "acme", targetID: target.target.id).items
        #expect(log.map(\.eventType.rawValue).reversed() == ["repo.created", "repo.updated", "bookmark.created", "bookmark.deleted"])
        #expect(log.allSatisfy { $0.state == .pending && $0.attempts == 0 })
    }
}
