import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import NIOCore
import Store
import Testing

/// mesa-server's blob extensions: `POST /{org}/{repo}/blobs` takes a raw body of any
/// size (past the JSON body limit), changes reference the blob by `blob_oid`, and
/// `GET /{org}/{repo}/blobs/{sha}` streams it back.
@Suite struct BlobUploadTests {
    static func upload(_ client: any TestClientProtocol, _ uri: String, key: String?, _ bytes: [UInt8]) async throws -> Reply {
        var headers = HTTPFields()
        if let key { headers[.authorization] = "Bearer \(key)" }
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = String(bytes.count)
        let response = try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(bytes: bytes))
        return Reply(status: Int(response.status.code), body: Data(response.body.readableBytesView), headers: response.headers)
    }

    /// 3 MiB of non-repeating bytes.
    static let payload: [UInt8] = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11) }

    @Test func aBodyLargerThanTheJSONLimitUploadsAndIsReferencedByOid() async throws {
        let f = try Fixture()
        try f.seed("ws", files: ["a.txt": "a\n"])
        let head = try f.store.repo(org: "acme", name: "ws").headChangeID
        // A 1 MiB JSON limit: the 3 MiB blob could never travel inside a change.
        try await f.run(.live, maxBodyBytes: 1 << 20) { client in
            var reply = try await Self.upload(client, "/v1/acme/ws/blobs", key: f.admin, Self.payload)
            #expect(reply.status == 201, "\(reply.text)")
            let created = try reply.json(RESTBlobCreated.self)
            #expect(created.oid == HTTPBackend.gitBlobID(Self.payload) && created.size == Self.payload.count)

            let body = try encode(RESTCreateChange(baseChangeID: head.rawValue, message: "big", files: [
                .upsert("big.bin", blobOID: created.oid, mode: .executable), .upsert("small.txt", Array("s".utf8)),
            ]))
            #expect(body.contains(#""blob_oid""#))
            reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin, json: body)
            #expect(reply.status == 201, "\(reply.text)")
            let change = try reply.json(RESTChange.self)

            reply = try await send(client, .get, "/v1/acme/ws/content?change_id=\(change.id)&path=big.bin", key: f.admin)
            let file = try reply.json(RESTContent.self)
            #expect(file.sha == created.oid && file.mode == "100755" && file.size == Self.payload.count)

            reply = try await send(client, .get, "/v1/acme/ws/blobs/\(created.oid)", key: f.admin)
            #expect(reply.status == 200 && reply.bytes == Self.payload)
            #expect(reply.headers[.eTag] == "\"\(created.oid)\"" && reply.headers[.contentLength] == String(Self.payload.count))
        }
    }

    @Test func uploadsNeedAKeyWithWriteScopeOnTheRepo() async throws {
        let f = try Fixture()
        try f.seed("ws", files: ["a.txt": "a\n"])
        try f.seed("other", files: ["b.txt": "b\n"])
        let reader = try f.key([.read])
        let wsID = try f.store.repo(org: "acme", name: "ws").id
        let scoped = try f.key([.read, .write], repos: [wsID], name: "scoped")
        let bytes = Array("secret payload".utf8)
        let oid = HTTPBackend.gitBlobID(bytes)
        try await f.run(.live) { client in
            var reply = try await Self.upload(client, "/v1/acme/ws/blobs", key: nil, bytes)
            #expect(reply.status == 401 && reply.code == "UNAUTHENTICATED")
            reply = try await Self.upload(client, "/v1/acme/ws/blobs", key: "mesa_wrong", bytes)
            #expect(reply.status == 401, "\(reply.text)")
            reply = try await Self.upload(client, "/v1/acme/ws/blobs", key: reader, bytes)
            #expect(reply.status == 403, "\(reply.text)")
            reply = try await Self.upload(client, "/v1/acme/other/blobs", key: scoped, bytes)
            #expect(reply.status == 404, "a repo outside the key's scope looks missing: \(reply.text)")
            reply = try await Self.upload(client, "/v1/acme/nope/blobs", key: f.admin, bytes)
            #expect(reply.status == 404, "\(reply.text)")
            // None of the refused uploads stored anything.
            for repo in ["ws", "other"] {
                #expect(try await send(client, .get, "/v1/acme/\(repo)/blobs/\(oid)", key: f.admin).status == 404)
            }
            reply = try await Self.upload(client, "/v1/acme/ws/blobs", key: scoped, bytes)
            #expect(reply.status == 201, "\(reply.text)")
            #expect(try await send(client, .get, "/v1/acme/ws/blobs/\(oid)", key: reader).bytes == bytes)
        }
    }

    @Test func changesReferencingABadBlobAreRefusedAndWriteNothing() async throws {
        let f = try Fixture()
        let seeded = try f.seed("ws", files: ["a.txt": "a\n"])
        try f.seed("other", files: ["b.txt": "b\n"])
        try await f.run { client in
            let otherDir = try await send(client, .get, "/v1/acme/other/content", key: f.admin).json(RESTContent.self)
            let foreign = try #require(otherDir.entries?.first?.sha)
            let wsDir = try await send(client, .get, "/v1/acme/ws/content", key: f.admin).json(RESTContent.self)
            let tree = wsDir.sha
            let before = try f.changeCount("ws")
            let cases: [(RESTFileOp, Int, String)] = [
                (RESTFileOp(path: "x", action: .upsert, blobOID: "nothex"), 400, "blob_oid"),
                (RESTFileOp(path: "x", action: .upsert, blobOID: String(repeating: "0", count: 40)), 404, "not a blob"),
                (RESTFileOp(path: "x", action: .upsert, blobOID: foreign), 404, "not a blob"),
                (RESTFileOp(path: "x", action: .upsert, blobOID: tree), 404, "not a blob"),
                (RESTFileOp(path: "x", content: "YQ==", action: .upsert, blobOID: foreign), 400, "not both"),
            ]
            for (op, status, mention) in cases {
                let create = try encode(RESTCreateChange(baseChangeID: seeded.id.rawValue, files: [.upsert("ok.txt", [1]), op]))
                var reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin, json: create)
                #expect(reply.status == status, "\(op): \(reply.text)")
                #expect(reply.envelope?.message.contains(mention) == true, "\(reply.text)")
                let patch = try encode(RESTUpdateChange(files: [.upsert("ok.txt", [1]), op]))
                reply = try await send(client, .patch, "/v1/acme/ws/changes/\(seeded.id)", key: f.admin, json: patch)
                #expect(reply.status == status, "\(op): \(reply.text)")
            }
            #expect(try f.changeCount("ws") == before)
            #expect(try f.store.change(org: "acme", repo: "ws", id: seeded.id).change.commitOID == seeded.commitOID)
        }
    }
}
