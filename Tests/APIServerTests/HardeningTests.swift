import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP client that sends exactly the bytes a misbehaving client would (half a
/// header, a body held back), which an HTTP client library never does.
/// Its calls block, so they run on a dispatch queue: on the cooperative pool (two threads
/// here) they would starve the server under test of the threads its handlers run on.
final class RawClient: @unchecked Sendable {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`; reads give up after `timeout` seconds.
    init(port: Int, timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends `text`; false once the server has closed the connection.
    @discardableResult
    func send(_ text: String) async -> Bool {
        await blocking { self.sendNow(text) }
    }

    func readAll() async -> (text: String, closed: Bool) { await blocking { self.readAllNow() } }
    func readResponse() async -> (status: Int, body: String)? { await blocking { self.readResponseNow() } }

    private func blocking<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }

    private func sendNow(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Everything the server sends until it closes the connection or the read timeout.
    /// `closed` tells which of the two ended the read.
    private func readAllNow() -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { received += buffer[..<count]; continue }
            return (String(decoding: received, as: UTF8.self), count == 0 || errno == ECONNRESET)
        }
    }

    /// The first response: status and body, reading until its Content-Length is in.
    private func readResponseNow() -> (status: Int, body: String)? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let text = String(decoding: received, as: UTF8.self)
            if let split = text.range(of: "\r\n\r\n") {
                let head = text[..<split.lowerBound]
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                let body = text[split.upperBound...]
                if body.utf8.count >= length, let status = Int(head.split(separator: " ")[1]) {
                    return (status, String(body))
                }
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            received += buffer[..<count]
        }
    }
}

func envelopeCode(_ body: String) -> String {
    (try? decode(RESTErrorEnvelope.self, Data(body.utf8)).error.code) ?? ""
}

/// What a hostile or clumsy client can make the server do: read bodies for unknown keys,
/// hold connections, learn which repos exist, destroy history, get confusing errors.
@Suite struct HardeningTests {
    static func limits(_ change: (inout Limits) -> Void) -> Limits {
        var limits = Limits()
        change(&limits)
        return limits
    }

    @Test func bodiesAreNotReadBeforeTheKeyIsKnownAndOversizedOnesAreRefusedUpFront() async throws {
        let f = try Fixture()
        _ = try f.seed("ws", files: ["a": "1"])
        try await f.run(.live, limits: Self.limits { $0.maxBodyBytes = 1 << 20 }) { client in
            let port = try #require(client.port)
            // A declared 32 MiB body of which not a byte is sent: answered from the headers.
            for (key, status, code) in [("mesa_" + String(repeating: "0", count: 64), 401, "UNAUTHENTICATED"),
                                        (f.admin, 413, "PAYLOAD_TOO_LARGE")] {
                let raw = try RawClient(port: port, timeout: 30)
                await raw.send("POST /v1/acme/ws/changes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                         + "Content-Type: application/json\r\nContent-Length: \(32 << 20)\r\n\r\n")
                let reply = try #require(await raw.readResponse(), "no answer before the body was sent")
                #expect(reply.status == status && envelopeCode(reply.body) == code, "\(reply)")
            }
            #expect(try f.changeCount("ws") == 1)
        }
    }

    @Test func bodiesUnderWayShareABoundedBudget() async throws {
        let f = try Fixture()
        _ = try f.seed("ws", files: ["a": "1"])
        try await f.run(.live, limits: Self.limits { $0.maxBodyBytes = 600; $0.maxInFlightBodyBytes = 800 }) { client in
            let port = try #require(client.port)
            let body = #"{"base_change_id":"\#(root)","message":"\#(String(repeating: "m", count: 400))"}"#
            let head = "POST /v1/acme/ws/changes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(f.admin)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            // The first request reserves its size and holds its body back.
            let slow = try RawClient(port: port, timeout: 10)
            await slow.send(head + body.prefix(10))
            try await Task.sleep(for: .milliseconds(300))
            let second = try RawClient(port: port, timeout: 10)
            await second.send(head + body)
            let refused = try #require(await second.readResponse())
            #expect(refused.status == 503 && envelopeCode(refused.body) == "UNAVAILABLE", "\(refused)")
            // Once the first completes, its reservation is returned.
            await slow.send(String(body.dropFirst(10)))
            #expect(await slow.readResponse()?.status == 201)
            let third = try RawClient(port: port, timeout: 10)
            await third.send(head + body)
            #expect(await third.readResponse()?.status == 201)
            #expect(try f.changeCount("ws") == 3)
        }
    }

    @Test func slowHeadersIdleConnectionsAndStalledBodiesAreClosed() async throws {
        let f = try Fixture()
        let limits = Self.limits {
            $0.headerTimeout = .seconds(1)
            $0.idleTimeout = .seconds(1)
            $0.requestTimeout = .seconds(1)
        }
        try await f.run(.live, limits: limits) { client in
            let port = try #require(client.port)
            let start = ContinuousClock.now

            // One header line every 300 ms: each arrives well inside any per-read timeout,
            // so only a deadline on the whole head ends it (generous bounds: the suite
            // runs this beside dozens of other tests on two cores).
            let slowloris = try RawClient(port: port, timeout: 30)
            await slowloris.send("GET /v1/whoami HTTP/1.1\r\n")
            var accepted = 0
            for index in 0..<60 {
                try await Task.sleep(for: .milliseconds(300))
                guard await slowloris.send("X-Slow-\(index): 1\r\n") else { break }
                accepted += 1
            }
            #expect(await slowloris.readAll().closed)
            #expect(accepted < 60, "the server kept reading headers for \(accepted * 300) ms")

            // A connection that says nothing, and one idle after a complete request.
            let silent = try RawClient(port: port, timeout: 30)
            #expect(await silent.readAll().closed)
            let kept = try RawClient(port: port, timeout: 30)
            await kept.send("GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(f.admin)\r\n\r\n")
            #expect(await kept.readResponse()?.status == 200)
            #expect(await kept.readAll().closed)

            // A body that stops arriving: 408 in the envelope, then closed.
            let stalled = try RawClient(port: port, timeout: 30)
            await stalled.send("POST /v1/acme/repos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(f.admin)\r\n"
                         + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
            let timedOut = try #require(await stalled.readResponse())
            #expect(timedOut.status == 408 && envelopeCode(timedOut.body) == "REQUEST_TIMEOUT", "\(timedOut)")
            #expect(await stalled.readAll().closed)
            #expect(ContinuousClock.now - start < .seconds(30))
            // The server still answers new connections.
            let fresh = try RawClient(port: port)
            await fresh.send("GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(f.admin)\r\n\r\n")
            #expect(await fresh.readResponse()?.status == 200)
        }
    }

    @Test func connectionsPastTheLimitAreRefusedUntilOneCloses() async throws {
        let f = try Fixture()
        try await f.run(.live, limits: Self.limits { $0.maxConnections = 3 }) { client in
            let port = try #require(client.port)
            let request = "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(f.admin)\r\n\r\n"
            // The test client holds one connection; these two fill the limit and stay open.
            var held = [try RawClient(port: port), try RawClient(port: port)]
            for connection in held {
                await connection.send(request)
                #expect(await connection.readResponse()?.status == 200)
            }
            let refused = try RawClient(port: port)
            let reply = try #require(await refused.readResponse())
            #expect(reply.status == 503 && envelopeCode(reply.body) == "UNAVAILABLE", "\(reply)")
            #expect(await refused.readAll().closed)
            // Once one closes (the server notices the end of stream), a new one is served.
            held.removeFirst()
            var served = false
            for _ in 0..<100 where !served {
                let fresh = try RawClient(port: port, timeout: 30)
                await fresh.send(request)
                served = await fresh.readResponse()?.status == 200
                if !served { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(served, "no connection was served after one of the limit closed")
            _ = held
        }
    }

    @Test func malformedAndOversizedRequestsAnswerInTheEnvelope() async throws {
        let f = try Fixture()
        try await f.run(.live) { client in
            let port = try #require(client.port)
            let long = try RawClient(port: port)
            await long.send("GET /v1/acme/repos?q=\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\nHost: x\r\n\r\n")
            let tooLong = try #require(await long.readResponse())
            #expect(tooLong.status == 431 && envelopeCode(tooLong.body) == "REQUEST_HEADERS_TOO_LARGE", "\(tooLong)")
            let garbled = try RawClient(port: port)
            await garbled.send("GET / HTTP/1.1\r\nHost x\r\n\r\n")
            let bad = try #require(await garbled.readResponse())
            #expect(bad.status == 400 && envelopeCode(bad.body) == "BAD_REQUEST", "\(bad)")
        }
    }

    // MARK: What a key may learn and destroy

    @Test func aScopedKeyCannotTellAnInvisibleRepoFromAMissingOne() async throws {
        let f = try Fixture()
        _ = try f.seed("mine", files: ["a": "1"])
        _ = try f.seed("secret", files: ["b": "2"])
        let scoped = try f.key([.read, .write], repos: [try f.store.repo(org: "acme", name: "mine").id])
        try await f.run { client in
            for suffix in ["", "/changes", "/bookmarks", "/bookmarks/main", "/content", "/changes/\(root)"] {
                let hidden = try await send(client, .get, "/v1/acme/secret\(suffix)", key: scoped)
                let missing = try await send(client, .get, "/v1/acme/nosuch\(suffix)", key: scoped)
                #expect(hidden.status == 404 && missing.status == 404)
                #expect(hidden.text.replacingOccurrences(of: "secret", with: "NAME")
                        == missing.text.replacingOccurrences(of: "nosuch", with: "NAME"), "\(hidden.text) vs \(missing.text)")
            }
            let hidden = try await send(client, .delete, "/v1/acme/secret", key: scoped)
            let missing = try await send(client, .delete, "/v1/acme/nosuch", key: scoped)
            #expect(hidden.status == missing.status)
            // The org's repo count is what the key can see.
            let org = try await send(client, .get, "/v1/acme", key: scoped)
            #expect(try org.json(RESTOrgInfo.self).numRepos == 1, "\(org.text)")
            #expect(try await send(client, .get, "/v1/acme", key: f.admin).json(RESTOrgInfo.self).numRepos == 2)
        }
    }

    @Test func deletingARepoNeedsAdmin() async throws {
        let f = try Fixture()
        _ = try f.seed("ws", files: ["a": "1"])
        let id = try f.store.repo(org: "acme", name: "ws").id
        let sandbox = try f.key([.read, .write], repos: [id])
        let orgWriter = try f.key([.read, .write])
        try await f.run { client in
            for key in [sandbox, orgWriter] {
                let reply = try await send(client, .delete, "/v1/acme/ws", key: key)
                #expect(reply.status == 403 && reply.code == "FORBIDDEN", "\(reply.text)")
                #expect(reply.envelope?.message.contains("admin") == true, "\(reply.text)")
            }
            #expect(try f.changeCount("ws") == 1)
            let scopedAdmin = try f.key([.read, .write, .admin], repos: [id])
            #expect(try await send(client, .delete, "/v1/acme/ws", key: scopedAdmin).status < 300)
            #expect(try await send(client, .get, "/v1/acme/ws", key: f.admin).status == 404)
        }
    }

    // MARK: Error messages

    @Test func wrongTypesNameTheFieldAndLongValuesAreCut() async throws {
        let f = try Fixture()
        try await f.run { client in
            for value in ["3600.5", "1e400", "\"3600\""] {
                let reply = try await send(client, .post, "/v1/acme/api-keys", key: f.admin,
                                           json: #"{"name":"k","expires_in_seconds":\#(value)}"#)
                #expect(reply.status == 400, "\(reply.text)")
                #expect(reply.envelope?.message.contains("expires_in_seconds") == true, "\(value): \(reply.text)")
                #expect(reply.envelope?.message.contains("not valid JSON") == false, "\(value): \(reply.text)")
            }
            let huge = String(repeating: "n", count: 1 << 20)
            let reply = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: #"{"name":"\#(huge)"}"#)
            #expect(reply.status == 400)
            #expect(reply.body.count < 2000, "the error echoed \(reply.body.count) bytes")
            let lookup = try await send(client, .get, "/v1/acme/\(String(repeating: "r", count: 50_000))", key: f.admin)
            #expect(lookup.status == 404 || lookup.status == 400)
            #expect(lookup.body.count < 2000, "the error echoed \(lookup.body.count) bytes")
        }
    }
}

@Suite struct StoreFilePermissionTests {
    @Test func theDataDirectoryIsPrivateWhateverItsModeWas() throws {
        let directory = NSTemporaryDirectory() + "perm-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try Store(directory: directory)
            _ = try store.createOrg(slug: "acme")
        }
        _ = try Store(directory: directory)
        func mode(_ path: String) throws -> Int {
            try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode(directory) == 0o700)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasPrefix("meta.sqlite") {
            #expect(try mode(directory + "/" + name) == 0o600, "\(name)")
        }
    }
}
