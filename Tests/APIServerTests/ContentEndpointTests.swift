import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import Store
import Testing

@Suite struct ContentEndpointTests {
    /// a.txt, bin/run (executable), link → a.txt, src/main.swift, src/lib/util.swift.
    func layout(_ f: Fixture) throws -> Change {
        _ = try f.store.createRepo(org: "acme", name: "ws")
        let change = try f.store.createChange(org: "acme", repo: "ws", base: .root, message: "layout", files: [
            .upsert(path: "a.txt", content: Array("hello\n".utf8)),
            .upsert(path: "bin/run", content: Array("#!/bin/sh\n".utf8), mode: .executable),
            .upsert(path: "link", content: Array("a.txt".utf8), mode: .symlink),
            .upsert(path: "src/main.swift", content: Array("print(1)\n".utf8)),
            .upsert(path: "src/lib/util.swift", content: Array("let x = 1\n".utf8)),
        ])
        _ = try f.store.moveBookmark(org: "acme", repo: "ws", bookmark: "main", to: change.id)
        return change
    }

    @Test func directoriesListDirectChildrenByDefaultAndDeeperOnRequest() async throws {
        let f = try Fixture()
        _ = try layout(f)
        try await f.run { client in
            var reply = try await send(client, .get, "/v1/acme/ws/content", key: f.admin)
            #expect(reply.status == 200, "\(reply.text)")
            var dir = try reply.json(RESTContent.self)
            #expect(dir.type == .dir && dir.path == "" && dir.name == "" && dir.sha.count == 40)
            #expect(dir.childCount == 4)
            #expect(dir.entries?.map(\.path) == ["a.txt", "bin", "link", "src"])
            #expect(!reply.text.contains(#""content""#), "entries never carry content")
            let link = dir.entries?.first { $0.name == "link" }
            #expect(link?.type == .symlink && link?.mode == "120000" && link?.size == 5)
            let src = dir.entries?.first { $0.name == "src" }
            #expect(src?.type == .dir && src?.size == nil && src?.mode == nil)

            reply = try await send(client, .get, "/v1/acme/ws/content?depth=0", key: f.admin)
            dir = try reply.json(RESTContent.self)
            #expect(dir.entries == [] && dir.childCount == 4, "depth 0 is the directory object alone, child count kept")

            reply = try await send(client, .get, "/v1/acme/ws/content?path=src&depth=10", key: f.admin)
            dir = try reply.json(RESTContent.self)
            #expect(dir.name == "src" && dir.childCount == 2)
            #expect(dir.entries?.map(\.path) == ["src/lib", "src/lib/util.swift", "src/main.swift"])
            // Decodes back into the store's model, matching what the store says.
            let model = try dir.storeContent()
            #expect(model == (try f.store.content(org: "acme", repo: "ws", path: "src", depth: 10)))
        }
    }

    @Test func filesAndSymlinksComeBase64OrRawWithAnETag() async throws {
        let f = try Fixture()
        _ = try layout(f)
        try await f.run { client in
            var reply = try await send(client, .get, "/v1/acme/ws/content?path=a.txt", key: f.admin)
            #expect(reply.status == 200)
            let file = try reply.json(RESTContent.self)
            #expect(file.type == .file && file.name == "a.txt" && file.encoding == "base64" && file.mode == "100644" && file.size == 6)
            #expect(Data(base64Encoded: file.content ?? "") == Data("hello\n".utf8))
            #expect(try file.storeContent() == (try f.store.content(org: "acme", repo: "ws", path: "a.txt")))

            reply = try await send(client, .get, "/v1/acme/ws/content?path=bin/run", key: f.admin)
            #expect(try reply.json(RESTContent.self).mode == "100755")

            reply = try await send(client, .get, "/v1/acme/ws/content?path=link", key: f.admin)
            let link = try reply.json(RESTContent.self)
            #expect(link.type == .symlink && link.mode == "120000" && Data(base64Encoded: link.content ?? "") == Data("a.txt".utf8))

            reply = try await send(client, .get, "/v1/acme/ws/content?path=a.txt", key: f.admin, accept: "application/octet-stream")
            #expect(reply.status == 200 && reply.text == "hello\n")
            #expect(reply.headers[.contentType] == "application/octet-stream")
            #expect(reply.headers[.eTag] == "\"\(file.sha)\"")

            reply = try await send(client, .get, "/v1/acme/ws/content?path=link", key: f.admin, accept: "application/octet-stream")
            #expect(reply.status == 200 && reply.text == "a.txt")

            reply = try await send(client, .get, "/v1/acme/ws/content?path=src", key: f.admin, accept: "application/octet-stream")
            #expect(reply.status == 406 && reply.code == "NOT_ACCEPTABLE", "\(reply.text)")
        }
    }

    @Test func contentReadsAnyChangeAndRefusesBadRequests() async throws {
        let f = try Fixture()
        let first = try layout(f)
        let second = try f.store.createChange(org: "acme", repo: "ws", base: first.id, files: [.upsert(path: "a.txt", content: Array("bye\n".utf8))])
        _ = try f.store.moveBookmark(org: "acme", repo: "ws", bookmark: "main", to: second.id)
        try await f.run { client in
            var reply = try await send(client, .get, "/v1/acme/ws/content?path=a.txt", key: f.admin, accept: "application/octet-stream")
            #expect(reply.text == "bye\n", "default is the change at the default bookmark")
            reply = try await send(client, .get, "/v1/acme/ws/content?path=a.txt&change_id=\(first.id)", key: f.admin,
                                   accept: "application/octet-stream")
            #expect(reply.text == "hello\n")
            reply = try await send(client, .get, "/v1/acme/ws/content?change_id=\(root)", key: f.admin)
            #expect(reply.status == 200)
            let empty = try reply.json(RESTContent.self)
            #expect(empty.type == .dir && empty.entries == [] && empty.childCount == 0)

            for (uri, status) in [("path=a.txt&change_id=\(root)", 404), ("path=nope.txt", 404), ("path=src/nope", 404),
                                  ("change_id=\(String(repeating: "k", count: 32))", 404),
                                  ("path=../etc/passwd", 400), ("path=src/../a.txt", 400), ("path=/etc/passwd", 400),
                                  ("path=a%00b", 400), ("change_id=main", 400), ("change_id=\(first.id)x", 400),
                                  ("depth=11", 400), ("depth=-1", 400), ("depth=deep", 400)] {
                let reply = try await send(client, .get, "/v1/acme/ws/content?\(uri)", key: f.admin)
                #expect(reply.status == status, "\(uri): \(reply.text)")
                #expect(reply.envelope?.message.isEmpty == false)
            }
            reply = try await send(client, .get, "/v1/acme/nope/content", key: f.admin)
            #expect(reply.status == 404)
            // metadata filters are accepted and ignored.
            reply = try await send(client, .get, "/v1/acme/ws/content?metadata%5Bowner%5D=ada", key: f.admin)
            #expect(reply.status == 200)
        }
    }

    @Test func blobsExtensionServesBlobsByOidOnly() async throws {
        let f = try Fixture()
        _ = try layout(f)
        try f.seed("other", files: ["x.txt": "other repo\n"])
        try await f.run { client in
            let dir = try await send(client, .get, "/v1/acme/ws/content", key: f.admin).json(RESTContent.self)
            let fileSHA = try #require(dir.entries?.first { $0.name == "a.txt" }?.sha)
            let treeSHA = try #require(dir.entries?.first { $0.name == "src" }?.sha)
            let otherDir = try await send(client, .get, "/v1/acme/other/content", key: f.admin).json(RESTContent.self)
            let otherSHA = try #require(otherDir.entries?.first?.sha)

            var reply = try await send(client, .get, "/v1/acme/ws/blobs/\(fileSHA)", key: f.admin)
            #expect(reply.status == 200 && reply.text == "hello\n")
            #expect(reply.headers[.eTag] == "\"\(fileSHA)\"" && reply.headers[.contentType] == "application/octet-stream")
            reply = try await send(client, .get, "/v1/acme/ws/blobs/\(fileSHA.uppercased())", key: f.admin)
            #expect(reply.status == 200, "hex case does not matter")

            for (sha, status) in [(treeSHA, 404), (otherSHA, 404), (String(repeating: "ab", count: 20), 404),
                                  ("xyz", 400), (String(fileSHA.dropLast()), 400), (fileSHA + "0", 400)] {
                reply = try await send(client, .get, "/v1/acme/ws/blobs/\(sha)", key: f.admin)
                #expect(reply.status == status, "\(sha): \(reply.text)")
                #expect(!reply.code.isEmpty)
            }
        }
    }

    @Test func diffAnswersJSONOrAUnifiedPatch() async throws {
        let f = try Fixture()
        _ = try f.store.createRepo(org: "acme", name: "ws")
        let base = try f.store.createChange(org: "acme", repo: "ws", base: .root, files: [
            .upsert(path: "a.txt", content: Array("one\ntwo\nthree\n".utf8)),
            .upsert(path: "old.txt", content: Array("gone\n".utf8)),
            .upsert(path: "img.bin", content: [0, 1, 2, 0, 0xff]),
        ])
        let head = try f.store.createChange(org: "acme", repo: "ws", base: base.id, files: [
            .upsert(path: "a.txt", content: Array("one\nTWO\nthree\n".utf8)),
            .delete(path: "old.txt"),
            .upsert(path: "new.txt", content: Array("fresh\n".utf8)),
            .upsert(path: "img.bin", content: [0, 1, 2, 0, 0xfe]),
        ])
        try await f.run { client in
            let uri = "/v1/acme/ws/diff?base_change_id=\(base.id)&head_change_id=\(head.id)"
            var reply = try await send(client, .get, uri, key: f.admin)
            #expect(reply.status == 200, "\(reply.text)")
            let diff = try reply.json(RESTDiff.self)
            #expect(diff.baseChangeID == base.id.description && diff.headChangeID == head.id.description)
            #expect(!diff.truncated && diff.conflictedEntries.isEmpty)
            let byPath = Dictionary(uniqueKeysWithValues: diff.entries.map { ($0.path, $0) })
            #expect(byPath["a.txt"]?.status == .modified && byPath["old.txt"]?.status == .deleted && byPath["new.txt"]?.status == .added)
            #expect(byPath["img.bin"]?.omittedReason == "binary" && byPath["img.bin"]?.hunks == nil)
            let lines = byPath["a.txt"]?.hunks?.flatMap(\.lines) ?? []
            #expect(lines.contains(DiffLine(kind: .deleted, text: "two")) && lines.contains(DiffLine(kind: .added, text: "TWO")))
            #expect(lines.contains { $0.kind == .context })
            #expect(diff.stats.entries == 4 && diff.stats.additions == 2 && diff.stats.deletions == 2 && diff.stats.changes == 4)
            #expect(reply.text.contains(#""old_path":null"#) && reply.text.contains(#""conflicted_entries":[]"#))
            // The wire form converts back into exactly the store's diff.
            #expect(try diff.diff() == (try f.store.diff(org: "acme", repo: "ws", base: base.id, head: head.id)))

            reply = try await send(client, .get, uri, key: f.admin, accept: "text/plain")
            #expect(reply.status == 200 && reply.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(reply.text.contains("diff --git a/a.txt b/a.txt") && reply.text.contains("\n-two\n") && reply.text.contains("\n+TWO\n"))

            reply = try await send(client, .get, uri + "&conflicts=exclude", key: f.admin)
            #expect(try reply.json(RESTDiff.self).entries.count == 4)
            reply = try await send(client, .get, uri + "&conflicts=only", key: f.admin)
            #expect(try reply.json(RESTDiff.self).entries.isEmpty)

            reply = try await send(client, .get, "/v1/acme/ws/diff?base_change_id=\(root)&head_change_id=\(base.id)", key: f.admin)
            #expect(try reply.json(RESTDiff.self).entries.allSatisfy { $0.status == .added })

            for (query, status, mentions) in [("head_change_id=\(head.id)", 400, "base_change_id"),
                                              ("base_change_id=\(base.id)", 400, "head_change_id"),
                                              ("base_change_id=nope&head_change_id=\(head.id)", 400, "base_change_id"),
                                              ("base_change_id=\(base.id)&head_change_id=\(head.id)&conflicts=all", 400, "conflicts"),
                                              ("base_change_id=\(base.id)&head_change_id=\(String(repeating: "l", count: 32))", 404, "does not exist")] {
                reply = try await send(client, .get, "/v1/acme/ws/diff?\(query)", key: f.admin)
                #expect(reply.status == status, "\(query): \(reply.text)")
                #expect(reply.envelope?.message.contains(mentions) == true, "\(reply.text)")
            }
        }
    }
}

/// The same answers through a real socket and Hummingbird's HTTP/1.1 server, where
/// headers, raw bodies and body limits are handled by the transport.
@Suite struct LiveTransportTests {
    @Test func rawBytesETagsPercentEncodedNamesAndBodyLimitsOverASocket() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["dir/a b.txt": "spaced\n"])
        _ = try f.store.createBookmark(org: "acme", repo: "ws", bookmark: "feature/x", at: change.id)
        try await f.run(.live, maxBodyBytes: 4096) { client in
            var reply = try await send(client, .get, "/v1/acme/ws/content?path=\(q("dir/a b.txt"))", key: f.admin,
                                       accept: "application/octet-stream")
            #expect(reply.status == 200 && reply.text == "spaced\n")
            let etag = try #require(reply.headers[.eTag])
            let sha = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            reply = try await send(client, .get, "/v1/acme/ws/blobs/\(sha)", key: f.admin)
            #expect(reply.status == 200 && reply.text == "spaced\n")

            reply = try await send(client, .get, "/v1/acme/ws/bookmarks/feature%2Fx", key: f.admin)
            #expect(reply.status == 200)
            #expect(try reply.json(RESTBookmark.self).name == "feature/x")

            reply = try await send(client, .get, "/v1/acme/ws/content?path=dir", key: f.admin, accept: "application/octet-stream")
            #expect(reply.status == 406)

            let big = try encode(RESTCreateChange(baseChangeID: root, files: [.upsert("big", [UInt8](repeating: 1, count: 8192))]))
            reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin, json: big)
            #expect(reply.status == 413)
            #expect(try f.changeCount("ws") == 1)
        }
    }
}
