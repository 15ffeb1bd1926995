import Foundation
import Synchronization
import Testing

@testable import RPC

#if canImport(Glibc)
import Glibc
#endif

@Suite("Connection", .timeLimit(.minutes(1)))
struct ConnectionTests {
    // MARK: Requests and responses

    @Test func requestGetsItsResponse() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"héllo"}}"#)
        let reply = try await harness.peer.receiveAsync()
        #expect(reply == ["jsonrpc": "2.0", "id": 1, "result": ["text": "héllo"]])
    }

    @Test func hundredConcurrentRequestsAreAnsweredOutOfOrderExactlyOnce() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        // Earlier requests sleep longer (300 ms down to 3 ms), so completion order is
        // roughly the reverse of sending order; all in one write.
        var batch: [UInt8] = []
        for id in 0..<100 {
            let json = #"{"jsonrpc":"2.0","id":\#(id),"method":"sleep","params":{"milliseconds":\#((100 - id) * 3),"tag":\#(id)}}"#
            batch += FrameParser.encode(Array(json.utf8))
        }
        try harness.peer.sendRaw(batch)
        var order: [Int] = []
        for _ in 0..<100 {
            let reply = try await harness.peer.receiveAsync()
            let id = try #require(reply?["id"]?.intValue)
            #expect(reply?["result"]?["tag"]?.intValue == id)
            order.append(id)
        }
        #expect(order.sorted() == Array(0..<100))  // each answered exactly once
        // Not serialised in arrival order: later (shorter) requests overtook earlier ones.
        #expect(order != Array(0..<100))
    }

    @Test func connectionToConnectionCallsRunConcurrently() async throws {
        let (server, client) = try startedPair()
        defer { closeAll(client, server) }
        let tags = try await withThrowingTaskGroup(of: Int.self) { group in
            for tag in 0..<100 {
                group.addTask {
                    try await client.send(Sleep.self, Sleep.Params(milliseconds: (tag * 37) % 50, tag: tag)).tag
                }
            }
            var tags: [Int] = []
            for try await tag in group { tags.append(tag) }
            return tags
        }
        #expect(tags.sorted() == Array(0..<100))
        let echoed = try await client.send(Echo.self, Echo.Params(text: "typed"))
        #expect(echoed.text == "typed")
        await #expect {
            _ = try await client.sendRequest(method: "missing")
        } throws: { error in
            (error as? ResponseError)?.code == .methodNotFound
        }
    }

    @Test func duplicateIdInFlightIsRefused() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"milliseconds":300,"tag":1}}"#)
        try harness.peer.send(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        let first = try await harness.peer.receiveAsync()
        #expect(first?["id"] == 1)
        #expect(first?.errorCode == -32600)
        let second = try await harness.peer.receiveAsync()
        #expect(second == ["jsonrpc": "2.0", "id": 1, "result": ["tag": 1]])
    }

    // MARK: Cancellation

    @Test func cancelRequestAnswersMinus32800ExactlyOnce() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":"slow","method":"sleep","params":{"milliseconds":60000,"tag":1}}"#)
        try harness.peer.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"slow"}}"#)
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?["id"] == "slow")
        #expect(reply?.errorCode == -32800)
        #expect(reply?["error"]?["data"]?["errorClass"] == "transient")
        // Cancelling again, or an unknown id, produces nothing; the next message is
        // the ping's answer.
        try harness.peer.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"slow"}}"#)
        try harness.peer.send(#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":999}}"#)
        try harness.peer.send(pingJSON(id: 2))
        #expect(try await harness.peer.receiveAsync() == ["jsonrpc": "2.0", "id": 2, "result": ["pong": true]])
    }

    @Test func cancellingTheCallingTaskCancelsTheRemoteRequest() async throws {
        let (server, client) = try startedPair()
        defer { closeAll(client, server) }
        let call = Task { try await client.send(Sleep.self, Sleep.Params(milliseconds: 60000, tag: 1)) }
        // Make sure the server is running the request before cancelling it.
        _ = try await client.send(Ping.self, NoParams())
        call.cancel()
        await #expect {
            _ = try await call.value
        } throws: { error in
            (error as? ResponseError)?.code == .requestCancelled
        }
    }

    // MARK: Bad input that keeps the connection open

    @Test func unknownNotificationGetsNoReply() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","method":"no/such/notification","params":{}}"#)
        try harness.peer.send(#"{"jsonrpc":"2.0","method":"$/setTrace","params":{"value":"off"}}"#)
        try harness.peer.send(pingJSON(id: 1))
        #expect(try await harness.peer.receiveAsync() == ["jsonrpc": "2.0", "id": 1, "result": ["pong": true]])
    }

    @Test func unknownRequestGetsMinus32601() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":5,"method":"no/such/method"}"#)
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?["id"] == 5)
        #expect(reply?.errorCode == -32601)
        #expect(reply?["error"]?["data"]?["errorClass"] == "bad-input")
    }

    @Test func wrongParamTypesGetMinus32602NamingTheField() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":6,"method":"createThing","params":{"name":"n","count":"three"}}"#)
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?["id"] == 6)
        #expect(reply?.errorCode == -32602)
        #expect(reply?.errorMessage?.contains("'params.count'") == true)
        #expect(reply?["error"]?["data"]?["field"] == "params.count")
    }

    @Test(arguments: [
        Array(#"{"jsonrpc":"2.0","id":1,"method":"ping""#.utf8),
        Array("not json at all".utf8),
        [],
        [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0x31, 0x7D],  // {"\xC3(":1} — invalid UTF-8
    ] as [[UInt8]])
    func unparseableBodyGetsMinus32700WithNullIdAndConnectionStaysOpen(body: [UInt8]) async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.sendRaw(FrameParser.encode(body))
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?["id"] == .null)
        #expect(reply?.errorCode == -32700)
        try harness.peer.send(pingJSON(id: 2))
        #expect(try await harness.peer.receiveAsync()?["result"] == ["pong": true])
    }

    @Test func invalidUTF8IsNamedInTheError() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.sendRaw(FrameParser.encode([0x22, 0xFF, 0x22]))
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?.errorMessage?.contains("UTF-8") == true)
    }

    @Test func invalidRequestObjectGetsMinus32600() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":9,"method":"ping","params":"scalar"}"#)
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?["id"] == 9)
        #expect(reply?.errorCode == -32600)
    }

    // MARK: Batches

    @Test func batchIsAnsweredWithOneArray() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(
            #"[{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"milliseconds":50,"tag":1}},"#
                + #"{"jsonrpc":"2.0","method":"ping"},"#
                + #"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"text":"b"}},"#
                + #"1,"#
                + #"{"jsonrpc":"2.0","id":3,"method":"nope"}]"#)
        let reply = try #require(try await harness.peer.receiveAsync()?.arrayValue)
        #expect(reply.count == 4)  // the notification gets no entry
        let byID = Dictionary(grouping: reply, by: { $0["id"] ?? .null })
        #expect(byID[1]?.first?["result"] == ["tag": 1])
        #expect(byID[2]?.first?["result"] == ["text": "b"])
        #expect(byID[3]?.first?.errorCode == -32601)
        #expect(byID[.null]?.first?.errorCode == -32600)
    }

    @Test func emptyBatchGetsOneInvalidRequestError() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send("[]")
        let reply = try await harness.peer.receiveAsync()
        #expect(reply?["id"] == .null)
        #expect(reply?.errorCode == -32600)
    }

    @Test func batchOfNotificationsGetsNoReply() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"[{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"unknown"}]"#)
        try harness.peer.send(pingJSON(id: 4))
        #expect(try await harness.peer.receiveAsync()?["id"] == 4)
    }

    // MARK: Server-to-client notifications

    @Test func progressAndLogMessagesReachThePeer() async throws {
        let dispatcher = Dispatcher()
        dispatcher.register(method: "work") { _, context in
            context.peer.sendProgress(token: .int(7), value: WorkDoneProgress.begin(title: "Working"))
            context.peer.sendProgress(token: .int(7), value: WorkDoneProgress.report(percentage: 50))
            context.peer.logMessage(.warning, "half way")
            context.peer.sendProgress(token: .int(7), value: WorkDoneProgress.end())
            return ["done": true]
        }
        let harness = try RawHarness(dispatcher: dispatcher)
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":1,"method":"work"}"#)
        var messages: [JSONValue] = []
        for _ in 0..<5 { messages.append(try #require(try await harness.peer.receiveAsync())) }
        #expect(messages[0] == ["jsonrpc": "2.0", "method": "$/progress", "params": ["token": 7, "value": ["kind": "begin", "title": "Working"]]])
        #expect(messages[1]["params"]?["value"] == ["kind": "report", "percentage": 50])
        #expect(messages[2] == ["jsonrpc": "2.0", "method": "window/logMessage", "params": ["type": 2, "message": "half way"]])
        #expect(messages[3]["params"]?["value"] == ["kind": "end"])
        #expect(messages[4] == ["jsonrpc": "2.0", "id": 1, "result": ["done": true]])
    }

    @Test func clientSideNotificationHandlersReceiveServerNotifications() async throws {
        let serverDispatcher = Dispatcher()
        serverDispatcher.register(method: "work") { _, context in
            context.peer.logMessage(.info, "from server")
            return .null
        }
        let received = Mutex<[String]>([])
        let clientDispatcher = Dispatcher()
        clientDispatcher.registerNotification(method: "window/logMessage") { params, _ in
            received.withLock { $0.append(params?["message"]?.stringValue ?? "?") }
        }
        let (server, client) = try startedPair(server: serverDispatcher, client: clientDispatcher)
        defer { closeAll(client, server) }
        _ = try await client.sendRequest(method: "work")
        // The notification was written before the response, but its handler runs in a
        // task of its own: poll briefly.
        for _ in 0..<500 where received.withLock({ $0.isEmpty }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(received.withLock { $0 } == ["from server"])
    }

    @Test func notificationsAreHandledInArrivalOrder() async throws {
        let serverDispatcher = Dispatcher()
        serverDispatcher.register(method: "work") { _, context in
            for step in 0..<200 {
                context.peer.sendProgress(token: .string("w"), value: WorkDoneProgress.report(percentage: step))
            }
            return .null
        }
        let seen = Mutex<[Int]>([])
        let clientDispatcher = Dispatcher()
        clientDispatcher.registerNotification(method: "$/progress") { params, _ in
            // Yield so that handlers running concurrently would interleave.
            await Task.yield()
            seen.withLock { $0.append(params?["value"]?["percentage"]?.intValue ?? -1) }
        }
        let (server, client) = try startedPair(server: serverDispatcher, client: clientDispatcher)
        defer { closeAll(client, server) }
        _ = try await client.sendRequest(method: "work")
        for _ in 0..<500 where seen.withLock({ $0.count }) < 200 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(seen.withLock { $0 } == Array(0..<200))
    }

    // MARK: Framing errors close the connection

    @Test(arguments: [
        "Content-Length: abc\r\n\r\n{}",
        "Content-Type: application/json\r\n\r\n{}",
        "Content-Length: -4\r\n\r\n{}",
        "Content-Length: 99999999999999999999999\r\n\r\n",
        "Garbage without a colon\r\n\r\n",
    ])
    func badHeaderGetsAnErrorThenClose(stream: String) async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.sendRaw(stream)
        let messages = try await harness.peer.receiveUntilEOFAsync()
        #expect(messages.count == 1)
        #expect(messages.first?["id"] == .null)
        #expect(messages.first?.errorCode == -32700)
        guard case .framingError = try await waitClosed(harness.server) else {
            Issue.record("expected a framing error")
            return
        }
    }

    @Test func oversizedFrameClosesOnlyThatConnection() async throws {
        var options = Connection.Options()
        options.maximumFrameSize = 1024
        let dispatcher = makeTestDispatcher()
        let victim = try RawHarness(dispatcher: dispatcher, options: options)
        let bystander = try RawHarness(dispatcher: dispatcher, options: options)
        defer {
            victim.cleanup()
            bystander.cleanup()
        }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":""# + String(repeating: "x", count: 2000) + #""}}"#
        try victim.peer.send(body)
        let messages = try await victim.peer.receiveUntilEOFAsync()
        #expect(messages.count == 1)
        #expect(messages.first?.errorCode == -32600)
        #expect(messages.first?["error"]?["data"]?["limit"] == 1024)
        #expect(try await waitClosed(victim.server) == .framingError(.frameTooLarge(length: body.utf8.count, limit: 1024)))

        try bystander.peer.send(pingJSON(id: 1))
        #expect(try await bystander.peer.receiveAsync()?["result"] == ["pong": true])
        #expect(bystander.server.closeReason == nil)
    }

    @Test func defaultLimitRefusesA64MiBPlusOneFrameWithoutReadingIt() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.sendRaw("Content-Length: \((64 << 20) + 1)\r\n\r\n{")
        let messages = try await harness.peer.receiveUntilEOFAsync()
        #expect(messages.first?.errorCode == -32600)
        #expect(messages.first?.errorMessage?.contains("67108864") == true)
    }

    // MARK: End of input

    @Test(arguments: [
        "Content-Length: 100\r\n\r\n{\"jsonrpc\":",
        "Content-Len",
        "Content-Length: 10\r\n",
    ])
    func peerClosingMidFrameClosesCleanly(partial: String) async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.sendRaw(partial)
        harness.peer.shutdownWrite()
        #expect(try await waitClosed(harness.server) == .peerClosedMidFrame)
        #expect(try await harness.peer.receiveUntilEOFAsync().isEmpty)
    }

    @Test func peerVanishingMidFrameClosesCleanly() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(pingJSON(id: 1))
        _ = try await harness.peer.receiveAsync()
        try harness.peer.sendRaw("Content-Length: 50\r\n\r\n{")
        harness.peer.close()
        let reason = try await waitClosed(harness.server)
        #expect(reason == .peerClosedMidFrame || reason == .peerClosed)
    }

    @Test func endOfInputStillAnswersRequestsInFlight() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"milliseconds":200,"tag":1}}"#)
        harness.peer.shutdownWrite()
        let messages = try await harness.peer.receiveUntilEOFAsync()
        #expect(messages == [["jsonrpc": "2.0", "id": 1, "result": ["tag": 1]]])
        #expect(try await waitClosed(harness.server) == .peerClosed)
    }

    @Test func pipesWorkLikeStdio() async throws {
        let input = try makePipe()
        let output = try makePipe()
        let server = try Connection(readFD: input.read, writeFD: output.write, dispatcher: makeTestDispatcher())
        let writer = RawPeer(fd: input.write)
        let reader = RawPeer(fd: output.read)
        defer {
            server.close()
            writer.close()
            reader.close()
        }
        server.start()
        try writer.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"milliseconds":100,"tag":3}}"#)
        try writer.send(#"{"jsonrpc":"2.0","id":2,"method":"echo","params":{"text":"stdio"}}"#)
        writer.close()  // stdin reaches end of input: answer what was asked, then close
        let messages = try await reader.receiveUntilEOFAsync()
        #expect(messages.count == 2)
        #expect(messages.first?["id"] == 2)  // the fast one first
        #expect(messages.last?["result"] == ["tag": 3])
        #expect(try await waitClosed(server) == .peerClosed)
    }

    // MARK: Slow readers

    /// Echo requests whose answers (about 1 MiB each) overflow any socket buffer.
    private func bigEchoes(count: Int) -> [UInt8] {
        let text = String(repeating: "x", count: 1 << 20)
        var stream: [UInt8] = []
        for id in 0..<count {
            stream += FrameParser.encode(Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"echo","params":{"text":"\#(text)"}}"#.utf8))
        }
        return stream
    }

    @Test func peerThatStopsReadingStallsNobodyElse() async throws {
        let dispatcher = makeTestDispatcher()
        let stalled = try RawHarness(dispatcher: dispatcher)
        let healthy = try RawHarness(dispatcher: dispatcher)
        defer {
            stalled.cleanup()
            healthy.cleanup()
        }
        // 8 MiB of answers nobody reads: if writes blocked the handlers' threads, the
        // cooperative pool (two threads here) would be pinned and the healthy peer's
        // pings would never be answered.
        let requests = bigEchoes(count: 8)
        try await offPool { try stalled.peer.sendRaw(requests) }
        for id in 0..<20 {
            try healthy.peer.send(pingJSON(id: id))
            #expect(try await healthy.peer.receiveAsync(timeout: 5)?["id"] == .int(id))
        }
        // Closing does not hang on the writer stuck on the full socket.
        stalled.server.close()
        #expect(try await waitClosed(stalled.server) == .closedLocally)
    }

    @Test func unreadOutputBeyondTheLimitDisconnectsThePeer() async throws {
        var options = Connection.Options()
        options.maximumBufferedOutput = 2 << 20
        let harness = try RawHarness(dispatcher: makeTestDispatcher(), options: options)
        defer { harness.cleanup() }
        let requests = bigEchoes(count: 8)
        try await offPool { try? harness.peer.sendRaw(requests) }
        #expect(try await waitClosed(harness.server) == .writeFailed(errno: ENOBUFS))
    }

    // MARK: Closing

    @Test func closeIsIdempotentAndNotifiesOnce() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        let calls = Mutex(0)
        harness.server.onClose { _ in calls.withLock { $0 += 1 } }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { harness.server.close() } }
        }
        #expect(try await waitClosed(harness.server) == .closedLocally)
        harness.server.close()
        #expect(calls.withLock { $0 } == 1)
        #expect(!harness.server.sendNotification(method: "late"))
        // A handler registered after closing runs at once.
        let late = Mutex<CloseReason?>(nil)
        harness.server.onClose { reason in late.withLock { $0 = reason } }
        #expect(late.withLock { $0 } == .closedLocally)
        #expect(try await harness.peer.receiveUntilEOFAsync().isEmpty)
    }

    @Test func closeCancelsRunningRequestsAndFailsTheCallersCalls() async throws {
        let (server, client) = try startedPair()
        defer { closeAll(client, server) }
        let call = Task { try await client.send(Sleep.self, Sleep.Params(milliseconds: 60000, tag: 1)) }
        _ = try await client.send(Ping.self, NoParams())
        server.close()
        await #expect(throws: ConnectionClosedError.self) { _ = try await call.value }
        #expect(try await waitClosed(client) == .peerClosed)
        await #expect(throws: ConnectionClosedError.self) { _ = try await client.sendRequest(method: "ping") }
    }

    @Test func closeAfterPendingRequestsAnswersThemFirst() async throws {
        let harness = try RawHarness(dispatcher: makeTestDispatcher())
        defer { harness.cleanup() }
        try harness.peer.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"milliseconds":200,"tag":1}}"#)
        try harness.peer.send(pingJSON(id: 2))
        #expect(try await harness.peer.receiveAsync()?["id"] == 2)  // both requests were read
        harness.server.closeAfterPendingRequests()
        let rest = try await harness.peer.receiveUntilEOFAsync()
        #expect(rest == [["jsonrpc": "2.0", "id": 1, "result": ["tag": 1]]])
        #expect(try await waitClosed(harness.server) == .closedLocally)
    }

    @Test func closeRacingPeerCloseNeverHangs() async throws {
        for round in 0..<100 {
            let harness = try RawHarness(dispatcher: makeTestDispatcher())
            if round % 2 == 0 {
                harness.peer.close()
                harness.server.close()
            } else {
                harness.server.close()
                harness.peer.close()
            }
            _ = try await waitClosed(harness.server)
            harness.cleanup()
        }
    }

    @Test func unstartedConnectionClosesImmediately() async throws {
        let (a, b) = try makeSocketPair()
        defer { Descriptors.closeFD(b) }
        let connection = try Connection(socket: a, dispatcher: Dispatcher())
        connection.close()
        #expect(try await waitClosed(connection) == .closedLocally)
        connection.start()  // no effect after close
        #expect(connection.closeReason == .closedLocally)
    }

    @Test func socketConnectionsKnowTheirPeer() throws {
        let harness = try RawHarness(dispatcher: Dispatcher())
        defer { harness.cleanup() }
        #expect(harness.server.info.peer?.uid == getuid())
        #expect(harness.server.info.peer?.pid == getpid())
    }
}
