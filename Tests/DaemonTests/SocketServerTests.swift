import Client
import Foundation
@testable import MesaDaemon
import MesaProtocol
import Model
import RPC
import Synchronization
import Testing

/// `Daemon.serveSocket` in process, for what needs a request that takes a while: none of
/// the daemon's own methods is slow enough to cancel or to catch in flight reliably, so
/// these tests register a test-only slow method next to them.
@Suite(.timeLimit(.minutes(2))) struct SocketServerTests {
    final class Server: @unchecked Sendable {
        let inProcess: InProcessDaemon
        let task: Task<Void, any Error>
        let started = Counter()
        let finished = Counter()

        init(configure: (inout DaemonConfig) -> Void = { _ in }) async throws {
            inProcess = try InProcessDaemon(configure: configure)
            let daemon = inProcess.daemon
            let started = self.started, finished = self.finished
            // Sleeps `ms` milliseconds; cancellable unless `stubborn`.
            daemon.dispatcher.register(method: "test/sleep") { params, _ in
                started.increment()
                let milliseconds = params?["ms"]?.intValue ?? 10_000
                if params?["stubborn"]?.boolValue == true {
                    usleep(useconds_t(milliseconds * 1000))
                } else {
                    try await Task.sleep(for: .milliseconds(milliseconds))
                }
                finished.increment()
                return ["slept": .int(milliseconds)]
            }
            // As mesad does: the runtime lock (which also makes the 0700 directory) first.
            let lock = try RuntimeLock(paths: daemon.config.paths)
            task = Task {
                defer { lock.release() }
                try await daemon.serveSocket()
            }
            let socket = inProcess.daemon.config.paths.socketPath
            guard await eventually(timeout: .seconds(30), { Daemonizer.answers(socket) }) else {
                daemon.requestStop()
                throw TestFailure("in-process daemon did not listen on \(socket)")
            }
        }

        func client() throws -> MesaClient {
            try MesaClient.connect(paths: inProcess.daemon.config.paths, autostart: false)
        }

        func stop() async throws {
            inProcess.daemon.requestStop()
            try await task.value
        }
    }

    @Test func cancelRequestAnswersMinus32800() async throws {
        let server = try await Server()
        let client = try server.client()
        defer { client.close() }
        let call = Task { try await client.connection.sendRequest(method: "test/sleep", params: ["ms": 20_000]) }
        #expect(await eventually(timeout: .seconds(10)) { server.started.value == 1 })
        let began = ContinuousClock.now
        call.cancel()  // the client library sends $/cancelRequest
        do {
            _ = try await call.value
            Issue.record("the cancelled request succeeded")
        } catch let error as ResponseError {
            #expect(error.code == .requestCancelled)
            #expect(error.code.rawValue == -32800)
            #expect(error.data?["errorClass"]?.stringValue == "transient")
        }
        #expect(ContinuousClock.now - began < .seconds(10), "answered when cancelled, not when the sleep ended")
        #expect(server.finished.value == 0)
        // The connection and the daemon carry on.
        #expect(try await client.call(Whoami.self, .init()).org.slug == "local")
        try await server.stop()
    }

    @Test func cancelRequestSentByHandOverTheSocket() async throws {
        let server = try await Server()
        let socket = try RawSocket(server.inProcess.daemon.config.paths.socketPath)
        try socket.send(frame(#"{"jsonrpc":"2.0","id":"slow","method":"test/sleep","params":{"ms":20000}}"#))
        #expect(await eventually(timeout: .seconds(10)) { server.started.value == 1 })
        try socket.send(frame(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"slow"}}"#))
        let answer = try #require(await socket.reader.next(timeout: .seconds(10)))
        #expect(answer["id"] as? String == "slow")
        let error = try #require(answer["error"] as? [String: Any])
        #expect(error["code"] as? Int == -32800)
        #expect((error["data"] as? [String: Any])?["errorClass"] as? String == "transient")
        try await server.stop()
    }

    @Test func stoppingFinishesRequestsInFlight() async throws {
        let server = try await Server()
        let client = try server.client()
        defer { client.close() }
        let call = Task { try await client.connection.sendRequest(method: "test/sleep", params: ["ms": 500, "stubborn": true]) }
        #expect(await eventually(timeout: .seconds(10)) { server.started.value == 1 })
        // As SIGTERM does: stop while the request runs; it is still answered.
        server.inProcess.daemon.requestStop()
        let result = try await call.value
        #expect(result["slept"]?.intValue == 500)
        try await server.task.value
        #expect(!exists(server.inProcess.daemon.config.paths.socketPath))
        // Stopped means stopped: nobody answers any more.
        #expect(!Daemonizer.answers(server.inProcess.daemon.config.paths.socketPath))
    }
}

extension SocketServerTests {
    /// Past `[daemon] max-connections` a client gets an error frame, then end of stream;
    /// the clients already connected are unaffected, and a freed place is taken again.
    @Test func connectionsPastTheLimitAreRefusedWithAnError() async throws {
        let server = try await Server { $0.maxConnections = 2 }
        let path = server.inProcess.daemon.config.paths.socketPath
        // The readiness probe's connection may still hold a place for a moment: admit
        // each client by retrying until it is served.
        var admitted: [RawSocket] = []
        for index in 0..<2 {
            let socket = try #require(await admittedSocket(path, id: index + 1), "client \(index + 1) was not admitted")
            admitted.append(socket)
        }
        for _ in 0..<3 {
            let refused = try RawSocket(path)
            let answer = try #require(await refused.reader.next(timeout: .seconds(10)), "no refusal frame")
            #expect(answer["id"] is NSNull)
            let error = try #require(answer["error"] as? [String: Any])
            #expect(error["code"] as? Int == -32010)
            #expect((error["message"] as? String)?.contains("max-connections") == true, "\(error)")
            #expect((error["data"] as? [String: Any])?["errorClass"] as? String == "transient")
            #expect(await refused.reader.waitForEOF(timeout: .seconds(10)))
        }
        // The admitted clients carry on.
        #expect(try await admitted[0].request(10, "listOrgs")?["result"] != nil)
        // Closing one frees its place.
        admitted.removeLast()
        #expect(await admittedSocket(path, id: 11) != nil, "a freed place was not taken again")
        withExtendedLifetime(admitted) {}
        try await server.stop()
    }

    /// Connects until a client is served (the daemon sees the freed place a moment later).
    /// A connection that `listOrgs` was answered on, within 5 s.
    private func admittedSocket(_ path: String, id: Int) async -> RawSocket? {
        for _ in 0..<100 {
            if let socket = try? RawSocket(path), (try? await socket.request(id, "listOrgs"))??["result"] != nil {
                return socket
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
