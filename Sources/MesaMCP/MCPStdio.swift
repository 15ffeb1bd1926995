import Foundation
import RPC
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// MCP's stdio transport: one JSON-RPC message per line on stdin, answers one per line
/// on stdout (nothing else may go there; logs go to stderr). Requests run concurrently;
/// `notifications/cancelled` cancels one. Returns when stdin ends and every request read
/// has been answered.
public final class MCPStdio: Sendable {
    let server: MCPServer
    let input: Int32
    let output: Int32
    private let writeLock = Mutex(())
    private let running = Mutex<[RequestID: Task<Void, Never>]>([:])
    /// A line longer than this is refused (and skipped) rather than buffered forever.
    static let maximumLine = 64 << 20

    public init(server: MCPServer, input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO) {
        self.server = server
        self.input = input
        self.output = output
    }

    public func run() async {
        let lines = AsyncStream<[UInt8]>.makeStream()
        let thread = Thread { [self] in readLines(into: lines.continuation) }
        thread.name = "mesad.mcp.read"
        thread.start()
        for await line in lines.stream { dispatch(line) }
        // End of input: answer what was asked before leaving.
        while let next = running.withLock({ $0.first?.value }) { await next.value }
    }

    private func readLines(into continuation: AsyncStream<[UInt8]>.Continuation) {
        var pending: [UInt8] = []
        var skipping = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            var start = 0
            for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
                if !skipping { pending += buffer[start..<index] }
                if !skipping && !pending.isEmpty { continuation.yield(pending) }
                pending = []
                skipping = false
                start = index + 1
            }
            if !skipping { pending += buffer[start..<count] }
            if pending.count > Self.maximumLine {
                pending = []
                skipping = true
                send(MessageEncoder.response(id: nil, result: .failure(.invalidRequest("message longer than \(Self.maximumLine) bytes; skipped"))))
            }
        }
        if !pending.isEmpty && !skipping { continuation.yield(pending) }
        continuation.finish()
    }

    private func dispatch(_ line: [UInt8]) {
        // Tolerate a CRLF line ending and surrounding blanks.
        let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x0D || $0 == 0x20 || $0 == 0x09 }.reversed()
        guard !trimmed.isEmpty else { return }
        switch MessageParser.parse(Array(trimmed)) {
        case .unanswerable(let error):
            send(MessageEncoder.response(id: nil, result: .failure(error)))
        case .batch:
            send(MessageEncoder.response(id: nil, result: .failure(.invalidRequest("JSON-RPC batches are not part of MCP's stdio transport; send one message per line"))))
        case .single(.invalid(let id, let error)):
            send(MessageEncoder.response(id: id, result: .failure(error)))
        case .single(.message(.notification(let notification))):
            if notification.method == "notifications/cancelled", let id = notification.params?["requestId"],
               let requestID = try? id.decode(RequestID.self) {
                running.withLock { $0[requestID] }?.cancel()
            }
        case .single(.message(.response)):
            break  // mesad sends no requests, so there is nothing to match
        case .single(.message(.request(let request))):
            start(request)
        }
    }

    private func start(_ request: Request) {
        running.withLock { tasks in
            if tasks[request.id] != nil {
                send(MessageEncoder.response(id: request.id, result: .failure(.invalidRequest("request id \(request.id) is already in use"))))
                return
            }
            // Created under the lock: the task cannot remove itself before it is registered.
            tasks[request.id] = Task { [self] in
                let result = await server.handle(method: request.method, params: request.params)
                // MCP: a request the client cancelled gets no answer.
                if !Task.isCancelled {
                    send(MessageEncoder.response(id: request.id, result: result.map(EncodedJSON.init)))
                }
                _ = self.running.withLock { $0.removeValue(forKey: request.id) }
            }
        }
    }

    /// Writes one message and its newline. A reader that went away ends nothing here:
    /// the next read sees end of input.
    private func send(_ message: [UInt8]) {
        writeLock.withLock { _ in
            let line = message + [UInt8(ascii: "\n")]
            var offset = 0
            while offset < line.count {
                let written = line[offset...].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
