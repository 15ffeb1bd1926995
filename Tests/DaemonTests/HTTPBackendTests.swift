import Foundation
import MesaAPI
import Model
import Store
import Testing

/// HTTPBackend against a real mesa-server process (every Backend method round-trips,
/// errors map back to MesaError) and against a scripted responder (retries, envelopes).
@Suite(.serialized, .timeLimit(.minutes(5)))
struct HTTPBackendTests {
    /// Runs one section of a long test (the closures keep `#require` and early returns local).
    static func section(_ body: () throws -> Void) rethrows { try body() }

    static func expectMesaError(_ code: MesaError.Code, mentions: [String] = [], notMentioning secret: String? = nil,
                                sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected \(code), but the call succeeded", sourceLocation: sourceLocation)
        } catch let error as MesaError {
            #expect(error.code == code, "\(error.name): \(error.message)", sourceLocation: sourceLocation)
            for text in mentions {
                #expect(error.message.contains(text), "'\(error.message)' should mention '\(text)'", sourceLocation: sourceLocation)
            }
            if let secret { #expect(!error.message.contains(secret), "the key leaked into '\(error.message)'", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("expected MesaError \(code), got \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Against mesa-server

    @Test func everyBackendMethodRoundTripsThroughMesaServer() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        try await offPool {
            let identity = try backend.whoami()
            #expect(identity.org.slug == "acme")
            #expect(identity.scopes.contains(.admin))

            let created = try backend.createRepo(org: "acme", name: "demo", defaultBookmark: nil)
            #expect(created.name == "demo" && created.defaultBookmark == "main" && created.headChangeID == .root)
            _ = try backend.createRepo(org: "acme", name: "other", defaultBookmark: "trunk")
            let first = try backend.listRepos(org: "acme", cursor: nil, limit: 1)
            #expect(first.items.count == 1 && first.hasMore)
            let second = try backend.listRepos(org: "acme", cursor: first.nextCursor, limit: 1)
            #expect(Set((first.items + second.items).map(\.name)) == ["demo", "other"])
            #expect(try backend.repo(org: "acme", name: "demo").id == created.id)

            // Keys.
            let key = try backend.createKey(org: "acme", KeyRequest(name: "agent", scopes: [.read], expiresInSeconds: 3600))
            #expect(key.secret.hasPrefix("mesa_") && key.key.scopes == [.read] && key.key.expiresAt != nil)
            #expect(try backend.listKeys(org: "acme", status: .active, cursor: nil, limit: nil).items.contains { $0.id == key.key.id })
            try backend.revokeKey(org: "acme", id: key.key.id)
            let revoked = try backend.listKeys(org: "acme", status: .revoked, cursor: nil, limit: nil).items
            #expect(revoked.map(\.id) == [key.key.id])

            // Changes: base64 files both ways.
            let binary: [UInt8] = [0, 1, 2, 255, 254, 10, 13]
            let change = try backend.createChange(org: "acme", repo: "demo", base: .root, message: "first",
                                                  files: [.upsert(path: "a.txt", content: Array("hello\n".utf8)),
                                                          .upsert(path: "dir/bin", content: binary, mode: .executable)])
            #expect(change.message == "first" && change.parents == [.root])
            let detail = try backend.change(org: "acme", repo: "demo", id: change.id)
            #expect(detail.change.commitOID == change.commitOID && Set(detail.files) == ["a.txt", "dir/bin"])

            // Bookmarks, with a name that needs percent-encoding.
            let feature = try backend.createBookmark(org: "acme", repo: "demo", name: "feature/x", at: change.id)
            #expect(feature.name == "feature/x" && feature.changeID == change.id && !feature.isDefault)
            #expect(try backend.bookmark(org: "acme", repo: "demo", name: "feature/x").changeID == change.id)
            let moved = try backend.moveBookmark(org: "acme", repo: "demo", name: "main", to: change.id, expectedFrom: .root,
                                                 allowBackwards: false)
            #expect(moved.bookmark.changeID == change.id && moved.from == .root)
            #expect(Set(try backend.listBookmarks(org: "acme", repo: "demo", cursor: nil, limit: nil).items.map(\.name)) == ["main", "feature/x"])
            let listed = try backend.listChanges(org: "acme", repo: "demo", bookmark: "feature/x", cursor: nil, limit: nil)
            #expect(listed.items.first?.id == change.id)
            // A stale expectation is a conflict, and nothing moves.
            Self.expectMesaError(.conflict, mentions: ["main"]) {
                _ = try backend.moveBookmark(org: "acme", repo: "demo", name: "main", to: .root, expectedFrom: .root, allowBackwards: true)
            }
            try backend.deleteBookmark(org: "acme", repo: "demo", name: "feature/x")
            Self.expectMesaError(.notFound) { _ = try backend.bookmark(org: "acme", repo: "demo", name: "feature/x") }

            // Content, blobs by oid, change PATCH, diff and merge (where the server has them).
            try Self.section {
                guard case .directory(_, _, let entries) = try backend.content(org: "acme", repo: "demo", at: .bookmark("main"),
                                                                               path: "", depth: 2) else {
                    Issue.record("the root is not a directory")
                    return
                }
                let bin = try #require(entries.first { $0.path == "dir/bin" })
                #expect(bin.mode == .executable && bin.size == binary.count)
                #expect(try backend.blob(org: "acme", repo: "demo", oid: bin.oid) == binary)
                guard case .file(_, let bytes, _, let oid) = try backend.content(org: "acme", repo: "demo", at: .head,
                                                                                  path: "a.txt", depth: 0) else {
                    Issue.record("a.txt is not a file")
                    return
                }
                #expect(bytes == Array("hello\n".utf8) && oid == HTTPBackend.gitBlobID(bytes))
            }
            try Self.section {
                let patched = try backend.updateChange(org: "acme", repo: "demo", id: change.id, message: "first, amended",
                                                       files: [.delete(path: "a.txt")], expectedCommit: change.commitOID)
                #expect(patched.id == change.id && patched.commitOID != change.commitOID)
                Self.expectMesaError(.conflict) {
                    _ = try backend.updateChange(org: "acme", repo: "demo", id: change.id, message: "stale", files: [],
                                                 expectedCommit: change.commitOID)
                }
            }
            try Self.section {
                let diff = try backend.diff(org: "acme", repo: "demo", base: .root, head: change.id)
                #expect(diff.entries.map(\.path).contains("dir/bin"))
            }
            try Self.section {
                let side = try backend.createChange(org: "acme", repo: "demo", base: change.id, message: "side",
                                                    files: [.upsert(path: "side.txt", content: Array("s\n".utf8))])
                _ = try backend.createBookmark(org: "acme", repo: "demo", name: "side", at: side.id)
                let merged = try backend.mergeBookmark(org: "acme", repo: "demo", target: "main", source: "side",
                                                       message: nil, allowConflicted: false)
                #expect(merged.target == "main" && !merged.isConflicted)
            }
            try backend.deleteRepo(org: "acme", name: "other")
            Self.expectMesaError(.notFound, mentions: ["other"]) { _ = try backend.repo(org: "acme", name: "other") }
        }
    }

    /// Not a benchmark, a sanity figure: sequential calls reuse the connection, so
    /// they cost a loopback round trip plus the server's work, not a TCP handshake each.
    @Test func sequentialCallsAndLargeBlobsAreFast() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        let (perCall, megabytesPerSecond) = try await offPool { () throws -> (Duration, Double) in
            _ = try backend.createRepo(org: "acme", name: "demo", defaultBookmark: nil)
            let big = (0..<(8 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
            let change = try backend.createChange(org: "acme", repo: "demo", base: .root, message: "",
                                                  files: [.upsert(path: "big.bin", content: big)])
            let calls = 200
            let start = ContinuousClock.now
            for _ in 0..<calls { _ = try backend.repo(org: "acme", name: "demo") }
            let perCall = start.duration(to: .now) / calls
            guard case .directory(_, _, let entries) = try backend.content(org: "acme", repo: "demo", at: .change(change.id),
                                                                           path: "", depth: 1),
                  let entry = entries.first else { throw TestFailure("no listing") }
            let fetchStart = ContinuousClock.now
            let bytes = try backend.blob(org: "acme", repo: "demo", oid: entry.oid)
            let seconds = Double(fetchStart.duration(to: .now).components.attoseconds) * 1e-18
                + Double(fetchStart.duration(to: .now).components.seconds)
            #expect(bytes == big)
            return (perCall, Double(big.count) / 1_048_576 / seconds)
        }
        print("HTTPBackend: \(perCall) per sequential GET /{org}/{repo}; 8 MiB blob at \(Int(megabytesPerSecond)) MiB/s")
        #expect(perCall < .milliseconds(50))
    }

    /// FUSE threads and the flusher share one backend: concurrent calls each get a
    /// handle of the pool and a correct answer.
    @Test func concurrentCallsShareTheBackend() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        try await offPool { for index in 0..<8 { _ = try backend.createRepo(org: "acme", name: "r\(index)", defaultBookmark: nil) } }
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    await offPool { () -> Bool in
                        (0..<40).allSatisfy { _ in (try? backend.repo(org: "acme", name: "r\(index)").name) == "r\(index)" }
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 8 && results.allSatisfy { $0 })
    }

    @Test func serverRefusalsMapToMesaErrorsWithClearMessages() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let admin = server.backend()
        try await offPool {
            _ = try admin.createRepo(org: "acme", name: "demo", defaultBookmark: nil)
            // 401: a key the server never issued. The message names the org and the server, never the key.
            let bogus = "mesa_0123456789abcdef0123456789abcdef0123456789abcdef012345"
            Self.expectMesaError(.unauthenticated, mentions: ["acme", server.baseURL], notMentioning: bogus) {
                _ = try server.backend(key: bogus).whoami()
            }
            // 401 KEY_REVOKED.
            let doomed = try admin.createKey(org: "acme", KeyRequest(name: "doomed", scopes: [.read]))
            try admin.revokeKey(org: "acme", id: doomed.key.id)
            Self.expectMesaError(.keyRevoked, mentions: ["acme"], notMentioning: doomed.secret) {
                _ = try server.backend(key: doomed.secret).listRepos(org: "acme", cursor: nil, limit: nil)
            }
            // 403: a read key creating a repo.
            let reader = try admin.createKey(org: "acme", KeyRequest(name: "reader", scopes: [.read]))
            Self.expectMesaError(.forbidden, notMentioning: reader.secret) {
                _ = try server.backend(key: reader.secret).createRepo(org: "acme", name: "nope", defaultBookmark: nil)
            }
            // 404, 409, 400.
            Self.expectMesaError(.notFound, mentions: ["missing"]) { _ = try admin.repo(org: "acme", name: "missing") }
            Self.expectMesaError(.alreadyExists, mentions: ["demo"]) {
                _ = try admin.createRepo(org: "acme", name: "demo", defaultBookmark: nil)
            }
            Self.expectMesaError(.invalidArgument, mentions: ["name"]) {
                _ = try admin.createRepo(org: "acme", name: "bad name!", defaultBookmark: nil)
            }
        }
    }

    @Test func anUnreachableServerIsUnavailableAfterBoundedAttempts() async throws {
        let port = try freeLoopbackPort()  // nothing listens here
        let key = "mesa_secret_never_printed_0000000000000000"
        var configuration = HTTPBackend.Configuration(baseURL: "http://127.0.0.1:\(port)/v1", apiKey: key, org: "acme")
        configuration.maxAttempts = 3
        let backend = HTTPBackend(configuration)
        let started = ContinuousClock.now
        await offPool {
            Self.expectMesaError(.unavailable, mentions: ["127.0.0.1:\(port)", "3 attempts"], notMentioning: key) {
                _ = try backend.listRepos(org: "acme", cursor: nil, limit: nil)
            }
            // A POST whose connect failed never reached the server: retried too.
            Self.expectMesaError(.unavailable, mentions: ["3 attempts"]) {
                _ = try backend.createRepo(org: "acme", name: "x", defaultBookmark: nil)
            }
        }
        #expect(started.duration(to: .now) < .seconds(10))
        #expect(MesaError(.unavailable, "").errorClass == .transient)
    }

    // MARK: Against a scripted responder

    @Test func idempotentCallsAreRetriedOn503() async throws {
        let ok = #"{"org":{"id":"org_1","slug":"acme","name":"Acme"},"key_id":"key_1","key_name":null,"scopes":["read"]}"#
        let responder = try ScriptedResponder([.init(status: 503, body: envelope("UNAVAILABLE", "busy")),
                                               .init(status: 503, body: envelope("UNAVAILABLE", "busy")),
                                               .init(status: 200, headers: ["Content-Type: application/json"], body: ok)])
        defer { responder.stop() }
        let key = "mesa_scripted_key_1111111111111111"
        let backend = HTTPBackend(.init(baseURL: responder.baseURL, apiKey: key, org: "acme"))
        let identity = try await offPool { try backend.whoami() }
        #expect(identity.org.slug == "acme" && identity.scopes == [.read])
        let requests = responder.requests
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.requestLine == "GET /v1/whoami HTTP/1.1" })
        #expect(requests.first?.headers["authorization"] == "Bearer \(key)")
        #expect(requests.first?.headers["user-agent"]?.hasPrefix("mesad") == true)
    }

    @Test func aPostIsNotRetriedOn500ButIsOn429() async throws {
        let responder = try ScriptedResponder([.init(status: 500, body: envelope("INTERNAL", "boom"))])
        defer { responder.stop() }
        let backend = HTTPBackend(.init(baseURL: responder.baseURL, apiKey: "mesa_k", org: "acme"))
        await offPool {
            Self.expectMesaError(.unavailable, mentions: ["HTTP 500", "boom", responder.baseURL]) {
                _ = try backend.createRepo(org: "acme", name: "demo", defaultBookmark: nil)
            }
        }
        #expect(responder.requests.count == 1)
        #expect(responder.requests.first?.requestLine == "POST /v1/acme/repos HTTP/1.1")
        #expect(responder.requests.first?.body.contains(#""name":"demo""#) == true)

        let repo = #"{"id":"repo_1","org":"acme","name":"demo","default_bookmark":"main","head_change_id":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","upstream":null,"created_at":"2026-01-01T00:00:00Z","tags":{}}"#
        let limited = try ScriptedResponder([.init(status: 429, headers: ["Retry-After: 1"], body: envelope("RATE_LIMITED", "slow down")),
                                             .init(status: 201, body: repo)])
        defer { limited.stop() }
        let second = HTTPBackend(.init(baseURL: limited.baseURL, apiKey: "mesa_k", org: "acme"))
        let started = ContinuousClock.now
        let created = try await offPool { try second.createRepo(org: "acme", name: "demo", defaultBookmark: nil) }
        #expect(created.id == "repo_1" && limited.requests.count == 2)
        #expect(started.duration(to: .now) >= .milliseconds(950), "Retry-After was not honoured")
    }

    @Test func errorEnvelopesMapToMesaErrorCodes() async throws {
        let cases: [(Int, String, MesaError.Code)] = [
            (401, envelope("KEY_EXPIRED", "key expired at 2026-01-01"), .keyExpired),
            (401, envelope("KEY_REVOKED", "key revoked"), .keyRevoked),
            (401, "", .unauthenticated),
            (403, envelope("FORBIDDEN", "needs write"), .forbidden),
            (404, envelope("NOT_FOUND", "no such repo"), .notFound),
            (409, envelope("CONFLICT", "moved"), .conflict),
            (409, envelope("MERGE_CONFLICT", "conflict", details: #"{"conflict_paths":["a.txt","b/c"]}"#), .mergeConflict),
            (400, envelope("INVALID_ARGUMENT", "bad name"), .invalidArgument),
            (400, envelope("bad_request", "legacy code"), .invalidArgument),
        ]
        for (status, body, code) in cases {
            let responder = try ScriptedResponder([.init(status: status, body: body)])
            defer { responder.stop() }
            let backend = HTTPBackend(.init(baseURL: responder.baseURL, apiKey: "mesa_hidden_key_42", org: "acme"))
            let error: MesaError? = await offPool {
                do { _ = try backend.bookmark(org: "acme", repo: "demo", name: "feature/x"); return nil } catch {
                    return error as? MesaError
                }
            }
            #expect(error?.code == code, "HTTP \(status) \(body) → \(String(describing: error))")
            #expect(error?.message.contains("mesa_hidden_key_42") == false)
            if code == .mergeConflict { #expect(error?.paths == ["a.txt", "b/c"]) }
            if status == 401 { #expect(error?.message.contains("org 'acme'") == true, "\(String(describing: error))") }
            // Whole-segment percent-encoding, one request (4xx is final).
            #expect(responder.requests.map(\.requestLine) == ["GET /v1/acme/demo/bookmarks/feature%2Fx HTTP/1.1"])
        }
    }

    @Test func blobBytesAreVerifiedAndAMismatchFallsBackToBlobsBySha() async throws {
        let good = Array("the real bytes\n".utf8)
        let oid = HTTPBackend.gitBlobID(good)
        // git hash-object agrees with the computed id.
        #expect(HTTPBackend.gitBlobID(Array("hello\n".utf8)) == "ce013625030ba8dba906f756967f9e9ca394464a")
        let listing = #"{"type":"dir","name":"","path":"","sha":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","child_count":1,"entries":[{"type":"file","name":"f","path":"f","sha":"\#(oid)","size":15,"mode":"100644"}]}"#
        let responder = try ScriptedResponder([
            .init(status: 200, body: listing),
            .init(status: 200, body: "stale bytes!!!\n"),  // content?path=f now differs (no ETag): mismatch
            .init(status: 200, body: "the real bytes\n"),  // /blobs/{sha}
        ])
        defer { responder.stop() }
        let backend = HTTPBackend(.init(baseURL: responder.baseURL, apiKey: "mesa_k", org: "acme"))
        let change = try ChangeID("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")
        let bytes = try await offPool { () throws -> [UInt8] in
            _ = try backend.content(org: "acme", repo: "demo", at: .change(change), path: "", depth: 1)
            return try backend.blob(org: "acme", repo: "demo", oid: oid)
        }
        #expect(bytes == good)
        let lines = responder.requests.map(\.requestLine)
        #expect(lines.count == 3)
        #expect(lines[1] == "GET /v1/acme/demo/content?change_id=\(change)&path=f HTTP/1.1")
        #expect(responder.requests[1].headers["accept"] == "application/octet-stream")
        #expect(lines[2] == "GET /v1/acme/demo/blobs/\(oid) HTTP/1.1")
    }
}
