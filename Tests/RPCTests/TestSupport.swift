import Foundation
import Infra
import Synchronization
// The shared harness (TemporaryDirectory, offPool, TestFailure …).
@_exported import TestSupport
import Testing

@testable import RPC

#if canImport(Glibc)
import Glibc
#endif

/// A connected pair of Unix stream sockets, both close-on-exec.
func makeSocketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
        throw TestFailure("socketpair failed: errno \(errno)")
    }
    return (fds[0], fds[1])
}

/// Two started connections over a socket pair: `server` dispatching with `server`, the
/// caller's side with `client`. Close them with `closeAll`.
func startedPair(server: Dispatcher = makeTestDispatcher(), client: Dispatcher = Dispatcher()) throws
    -> (server: Connection, client: Connection) {
    let (a, b) = try makeSocketPair()
    let pair = (server: try Connection(socket: a, dispatcher: server), client: try Connection(socket: b, dispatcher: client))
    pair.server.start()
    pair.client.start()
    return pair
}

func closeAll(_ connections: Connection...) {
    for connection in connections { connection.close() }
}

/// Close-on-exec: processes that other tests spawn meanwhile must not inherit the
/// write end, or the reader would wait for their exit to see end of input.
func makePipe() throws -> (read: Int32, write: Int32) { try ChildProcess.pipe() }

/// The test's side of a connection, speaking raw bytes so malformed input can be sent
/// and every reply observed exactly as written. Reads block; use them via `offPool`.
final class RawPeer: @unchecked Sendable {
    // Unchecked: the framer is only touched by one test thread at a time (each test
    // awaits every read before starting the next).
    let fd: Int32
    private var framer = FrameParser()
    private var closed = false
    private let released = Mutex(false)

    init(fd: Int32) { self.fd = fd }

    func sendRaw(_ bytes: [UInt8]) throws {
        try writeAll(fd, bytes)
    }

    func sendRaw(_ string: String) throws { try sendRaw(Array(string.utf8)) }

    /// Sends one framed message body.
    func send(_ json: String) throws { try sendRaw(FrameParser.encode(Array(json.utf8))) }

    /// The next message, or nil at end of stream. Throws after `timeout` seconds.
    func receive(timeout: Double = 10) throws -> JSONValue? {
        guard let body = try receiveBody(timeout: timeout) else { return nil }
        return try JSONValue.parse(body)
    }

    func receiveBody(timeout: Double = 10) throws -> [UInt8]? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let body = try framer.next() { return body }
            if closed { return nil }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw TestFailure("timed out waiting for a message") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining * 1000, 1000)))
            if ready < 0 && errno != EINTR { throw TestFailure("poll failed: errno \(errno)") }
            if ready <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { closed = true; continue }
                throw TestFailure("read failed: errno \(errno)")
            }
            if count == 0 { closed = true; continue }
            framer.append(buffer[0..<count])
        }
    }

    /// Reads until end of stream, returning the messages that arrived before it.
    func receiveUntilEOF(timeout: Double = 10) throws -> [JSONValue] {
        var messages: [JSONValue] = []
        while let message = try receive(timeout: timeout) { messages.append(message) }
        return messages
    }

    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Idempotent: a second close must not hit a descriptor number another test reused.
    func close() {
        let first = released.withLock { released in
            defer { released = true }
            return !released
        }
        if first { Descriptors.closeFD(fd) }
    }
}

extension RawPeer {
    func receiveAsync(timeout: Double = 10) async throws -> JSONValue? {
        try await offPool { try self.receive(timeout: timeout) }
    }

    func receiveUntilEOFAsync(timeout: Double = 10) async throws -> [JSONValue] {
        try await offPool { try self.receiveUntilEOF(timeout: timeout) }
    }
}

/// Waits for a connection to close, failing the test instead of hanging.
func waitClosed(_ connection: Connection, timeout: Double = 10) async throws -> CloseReason {
    try await withThrowingTaskGroup(of: CloseReason?.self) { group in
        group.addTask { await connection.waitUntilClosed() }
        group.addTask {
            try await Task.sleep(for: .seconds(timeout))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let reason = first else {
            throw TestFailure("connection did not close within \(timeout) s")
        }
        return reason
    }
}

/// A server connection on one end of a socketpair and a raw peer on the other.
struct RawHarness {
    let server: Connection
    let peer: RawPeer

    init(dispatcher: Dispatcher, options: Connection.Options = Connection.Options()) throws {
        let (a, b) = try makeSocketPair()
        server = try Connection(socket: a, dispatcher: dispatcher, options: options)
        peer = RawPeer(fd: b)
        server.start()
    }

    /// Closes both ends; safe to call on every path.
    func cleanup() {
        server.close()
        peer.close()
    }
}

// MARK: - Methods used across tests

struct Echo: RPCMethod {
    struct Params: Codable, Sendable { var text: String }
    struct Result: Codable, Sendable { var text: String }
    static let name = "echo"
}

struct Sleep: RPCMethod {
    struct Params: Codable, Sendable { var milliseconds: Int; var tag: Int }
    struct Result: Codable, Sendable { var tag: Int }
    static let name = "sleep"
}

struct CreateThing: RPCMethod {
    struct Options: Codable, Sendable { var depth: Int; var tags: [String]? }
    struct Params: Codable, Sendable {
        var name: String
        var count: Int
        var options: Options?
    }
    struct Result: Codable, Sendable { var id: String }
    static let name = "createThing"
}

struct Ping: RPCMethod {
    typealias Params = NoParams
    struct Result: Codable, Sendable { var pong: Bool }
    static let name = "ping"
}

/// A dispatcher with the test methods; `sleep` honours cancellation.
func makeTestDispatcher() -> Dispatcher {
    let dispatcher = Dispatcher()
    dispatcher.register(Echo.self) { params, _ in Echo.Result(text: params.text) }
    dispatcher.register(Sleep.self) { params, _ in
        try await Task.sleep(for: .milliseconds(params.milliseconds))
        return Sleep.Result(tag: params.tag)
    }
    dispatcher.register(CreateThing.self) { params, _ in CreateThing.Result(id: "\(params.name)-\(params.count)") }
    dispatcher.register(Ping.self) { _, _ in Ping.Result(pong: true) }
    return dispatcher
}

func pingJSON(id: Int) -> String { #"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"# }

extension JSONValue {
    var errorCode: Int? { self["error"]?["code"]?.intValue }
    var errorMessage: String? { self["error"]?["message"]?.stringValue }
}
