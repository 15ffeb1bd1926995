import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Identifies a connection to handlers: a process-unique number and, for Unix sockets,
/// the peer's credentials.
public struct ConnectionInfo: Sendable, Hashable {
    public let id: UInt64
    public let peer: PeerCredentials?

    public init(id: UInt64, peer: PeerCredentials?) {
        self.id = id
        self.peer = peer
    }
}

/// Why a connection ended.
public enum CloseReason: Sendable, Hashable, CustomStringConvertible {
    /// End of input at a message boundary.
    case peerClosed
    /// End of input inside a frame; the partial message was dropped.
    case peerClosedMidFrame
    /// `close()` or `closeAfterPendingRequests()` was called.
    case closedLocally
    /// The byte stream broke the framing rules; an error was sent before closing.
    case framingError(FramingError)
    case readFailed(errno: Int32)
    /// Writing failed (the peer is gone), or it left too much output unread (ENOBUFS).
    case writeFailed(errno: Int32)

    public var description: String {
        switch self {
        case .peerClosed: "peer closed the connection"
        case .peerClosedMidFrame: "peer closed the connection in the middle of a message"
        case .closedLocally: "closed locally"
        case .framingError(let error): "framing error: \(error)"
        case .readFailed(let code): "read failed: \(String(cString: strerror(code)))"
        case .writeFailed(let code): "write failed: \(String(cString: strerror(code)))"
        }
    }
}

private let connectionCounter = Atomic<UInt64>(0)

/// A JSON-RPC connection over a pair of file descriptors: stdin/stdout, an accepted
/// Unix socket, one end of a socketpair — the same code for all.
///
/// Threading: a dedicated thread blocks in poll/read and feeds the framer; it never
/// runs a handler. Each request runs in its own `Task`, so a slow method never stalls
/// reading and responses go out in completion order. Notifications are handled one at
/// a time, in order, by one task per connection. `$/cancelRequest` is acted on by the
/// read thread itself, at once. Output goes through a `FrameWriter`, which keeps
/// frames whole and never blocks the caller.
///
/// Lifecycle: created → running (after `start()`) → closed. Closing is either hard
/// (`close()`, framing error, write failure: running requests are cancelled, unsent
/// output is dropped) or draining (the peer's end of input, `closeAfterPendingRequests()`:
/// reading stops, but every request already read is answered and flushed before the
/// descriptors close). Either way every waiter and close handler runs exactly once,
/// and the descriptors are closed only after both threads stopped using them.
///
/// Limitation: a hard close ends a write blocked on a full socket by shutting the
/// socket down; a pipe (stdout) has no such call, so a hard close waits until the
/// reader of that pipe reads or exits.
public final class Connection: NotificationSender {
    public struct Options: Sendable {
        public var maximumFrameSize: Int = FrameParser.defaultMaximumFrameSize
        public var maximumHeaderSize: Int = FrameParser.defaultMaximumHeaderSize
        public var readBufferSize: Int = 64 << 10
        /// Unsent output above which a peer that does not read is disconnected.
        public var maximumBufferedOutput: Int = 2 * FrameParser.defaultMaximumFrameSize
        /// False leaves the descriptors open at close, for callers that own them.
        public var closesDescriptors: Bool = true

        public init() {}
    }

    public let info: ConnectionInfo
    public let dispatcher: Dispatcher
    let readFD: Int32
    let writeFD: Int32
    let writeIsSocket: Bool
    let wakeRead: Int32
    let wakeWrite: Int32
    let options: Options
    let logger: Logger
    let writer: FrameWriter
    /// Notifications waiting for the notification task, in arrival order.
    let notificationQueue = AsyncStream<Notification>.makeStream()

    struct Running {
        let token: UInt64
        let task: Task<[UInt8], Never>
    }

    enum ReaderPhase {
        case notStarted
        case running
        case finished
    }

    struct State {
        var reader = ReaderPhase.notStarted
        /// Once set: do not wait for running requests, drop unsent output.
        var hard = false
        /// Once set: the reader must stop and nothing new starts.
        var stopRequested = false
        var woken = false
        /// The writer was told to finish (and whether to drop its backlog).
        var writerFinishing = false
        var writerDropping = false
        /// The first cause of closing wins.
        var reason: CloseReason?
        var closed = false
        /// Incoming requests by id, to cancel them.
        var running: [RequestID: Running] = [:]
        var nextToken: UInt64 = 0
        /// Handler tasks (requests, notifications, batches) whose answer is not yet
        /// handed to the writer; a draining close waits for this to reach zero.
        var outstanding = 0
        /// Our own requests to the peer, awaiting answers.
        var pending: [RequestID: CheckedContinuation<JSONValue, any Error>] = [:]
        var nextOutgoingID = 0
        var closeHandlers: [@Sendable (CloseReason) -> Void] = []
        var waiters: [CheckedContinuation<CloseReason, Never>] = []
    }

    let state = Mutex(State())

    /// Wraps two descriptors (the same one twice for a socket). Fails only if the
    /// process is out of descriptors for the internal wake-up pipe.
    public init(
        readFD: Int32, writeFD: Int32, dispatcher: Dispatcher, options: Options = Options(),
        logger: Logger = Logger(label: "mesa.rpc")
    ) throws(SystemCallError) {
        _ = Descriptors.ignoreSIGPIPE
        let wake = try Descriptors.makeWakePipe()
        self.readFD = readFD
        self.writeFD = writeFD
        self.dispatcher = dispatcher
        self.options = options
        self.wakeRead = wake.read
        self.wakeWrite = wake.write
        self.writeIsSocket = Descriptors.isSocket(writeFD)
        self.writer = FrameWriter(
            fd: writeFD, isSocket: writeIsSocket, maximumBacklog: options.maximumBufferedOutput)
        let id = connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let peer = Descriptors.isSocket(readFD) ? PeerCredentials.of(socket: readFD) : nil
        self.info = ConnectionInfo(id: id, peer: peer)
        var logger = logger
        logger[metadataKey: "connection"] = "\(id)"
        self.logger = logger
        // Weak: the threads keep a running connection alive; these callbacks must not
        // keep a never-started one alive forever.
        writer.setHandlers(
            FrameWriter.Handlers(
                onFailure: { [weak self] code in
                    self?.logger.debug("write failed: \(SystemCallError("write", errno: code))")
                    self?.requestClose(reason: .writeFailed(errno: code), hard: true)
                },
                onExit: { [weak self] in self?.finalTeardown() }
            ))
    }

    /// Convenience for a socket: one descriptor for both directions.
    public convenience init(
        socket fd: Int32, dispatcher: Dispatcher, options: Options = Options(),
        logger: Logger = Logger(label: "mesa.rpc")
    ) throws(SystemCallError) {
        try self.init(readFD: fd, writeFD: fd, dispatcher: dispatcher, options: options, logger: logger)
    }

    /// Starts the read and write threads. Calling it again, or after close, does
    /// nothing.
    public func start() {
        let shouldStart = state.withLock { state -> Bool in
            guard case .notStarted = state.reader, !state.stopRequested else { return false }
            state.reader = .running
            return true
        }
        guard shouldStart else { return }
        writer.start(name: "mesa.rpc.write.\(info.id)")
        Task { [self] in await runNotifications() }
        let thread = Thread { [self] in readLoop() }
        thread.name = "mesa.rpc.read.\(info.id)"
        // The JSON parser recurses up to its nesting limit on this thread.
        thread.stackSize = 4 << 20
        thread.start()
    }

    // MARK: - Closing

    /// Closes now: stops reading, cancels running requests (their answers are dropped)
    /// and closes the descriptors. Idempotent; safe from any thread, handlers included.
    public func close() {
        requestClose(reason: .closedLocally, hard: true)
    }

    /// Stops reading, answers every request already read, then closes. For a clean
    /// shutdown (SIGTERM): in-flight work finishes, nothing new starts.
    public func closeAfterPendingRequests() {
        requestClose(reason: .closedLocally, hard: false)
    }

    /// Waits until the connection is closed and returns why.
    public func waitUntilClosed() async -> CloseReason {
        await withCheckedContinuation { continuation in
            let reason = state.withLock { state -> CloseReason? in
                if state.closed, let reason = state.reason { return reason }
                state.waiters.append(continuation)
                return nil
            }
            if let reason { continuation.resume(returning: reason) }
        }
    }

    /// Runs `handler` once when the connection closes (immediately if it already has).
    public func onClose(_ handler: @escaping @Sendable (CloseReason) -> Void) {
        let reason = state.withLock { state -> CloseReason? in
            if state.closed, let reason = state.reason { return reason }
            state.closeHandlers.append(handler)
            return nil
        }
        if let reason { handler(reason) }
    }

    /// Why the connection closed, or nil while it is open.
    public var closeReason: CloseReason? {
        state.withLock { $0.closed ? $0.reason : nil }
    }

    func requestClose(reason: CloseReason, hard: Bool) {
        let (tasks, step) = state.withLock { state -> ([Task<[UInt8], Never>], WriterStep) in
            guard !state.closed else { return ([], .none) }
            if state.reason == nil { state.reason = reason }
            state.stopRequested = true
            var tasks: [Task<[UInt8], Never>] = []
            if hard && !state.hard {
                state.hard = true
                tasks = state.running.values.map(\.task)
                if writeIsSocket {
                    // Ends a blocked write to a peer that stopped reading, so the writer
                    // thread (and so the close) cannot hang on it. Under the lock: while
                    // `closed` is false the descriptor is ours, not a reused number.
                    _ = shutdown(writeFD, Int32(SHUT_RDWR))
                }
            }
            wakeReaderLocked(&state)
            return (tasks, writerStepLocked(&state))
        }
        for task in tasks { task.cancel() }
        perform(step)
    }

    enum WriterStep {
        case none
        case finish(dropBacklog: Bool)
    }

    /// Decides, with the state lock held, whether the writer may now finish: once the
    /// reader is done and either the close is hard or every answer was handed over.
    func writerStepLocked(_ state: inout State) -> WriterStep {
        if case .running = state.reader { return .none }
        guard state.stopRequested || state.reader == .finished else { return .none }
        guard state.hard || state.outstanding == 0 else { return .none }
        if !state.writerFinishing {
            state.writerFinishing = true
            state.writerDropping = state.hard
            return .finish(dropBacklog: state.hard)
        }
        if state.hard && !state.writerDropping {
            state.writerDropping = true  // escalate a flushing close to a hard one
            return .finish(dropBacklog: true)
        }
        return .none
    }

    func perform(_ step: WriterStep) {
        if case .finish(let drop) = step { writer.finish(dropBacklog: drop) }
    }

    /// With the state lock held: the wake pipe is closed by `finalTeardown`, which sets
    /// `closed` under the same lock first, so the descriptor is still ours here.
    private func wakeReaderLocked(_ state: inout State) {
        guard !state.woken, !state.closed else { return }
        state.woken = true
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Runs once, when the writer has stopped (after the reader had): closes the
    /// descriptors and tells everyone waiting.
    private func finalTeardown() {
        let taken = state.withLock {
            state -> (CloseReason, [CheckedContinuation<JSONValue, any Error>], [@Sendable (CloseReason) -> Void], [CheckedContinuation<CloseReason, Never>])? in
            guard !state.closed else { return nil }
            state.closed = true
            let reason = state.reason ?? .closedLocally
            state.reason = reason
            let pending = Array(state.pending.values)
            state.pending = [:]
            let handlers = state.closeHandlers
            state.closeHandlers = []
            let waiters = state.waiters
            state.waiters = []
            return (reason, pending, handlers, waiters)
        }
        guard let (reason, pending, handlers, waiters) = taken else { return }
        notificationQueue.continuation.finish()
        if options.closesDescriptors {
            Descriptors.closeFD(readFD)
            if writeFD != readFD { Descriptors.closeFD(writeFD) }
        }
        Descriptors.closeFD(wakeRead)
        Descriptors.closeFD(wakeWrite)
        logger.debug("connection closed: \(reason)")
        for continuation in pending { continuation.resume(throwing: ConnectionClosedError(reason: reason)) }
        for handler in handlers { handler(reason) }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    // MARK: - Reading

    private func readLoop() {
        var framer = FrameParser(
            maximumFrameSize: options.maximumFrameSize, maximumHeaderSize: options.maximumHeaderSize)
        var buffer = [UInt8](repeating: 0, count: max(options.readBufferSize, 1024))
        var fds = [
            pollfd(fd: readFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        var exitReason: CloseReason? = nil
        var hardExit = false

        reading: while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                exitReason = .readFailed(errno: errno)
                hardExit = true
                break
            }
            if fds[1].revents != 0 { break }  // close requested
            if fds[0].revents & Int16(POLLNVAL) != 0 {
                exitReason = .readFailed(errno: EBADF)
                hardExit = true
                break
            }
            guard fds[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                // A reset from the peer is just another way of going away.
                exitReason = errno == ECONNRESET ? .peerClosed : .readFailed(errno: errno)
                hardExit = errno != ECONNRESET
                break
            }
            if count == 0 {
                exitReason = framer.hasPartialFrame ? .peerClosedMidFrame : .peerClosed
                break
            }
            buffer.withUnsafeBytes { framer.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            while true {
                let body: [UInt8]?
                do {
                    body = try framer.next()
                } catch {
                    logger.error("closing connection: \(error)")
                    writeBody(MessageEncoder.response(id: nil, result: .failure(error.responseError)))
                    exitReason = .framingError(error)
                    hardExit = true
                    break reading
                }
                guard let body else { break }
                handleFrame(body)
                if state.withLock({ $0.stopRequested }) { break reading }
            }
        }
        readerFinished(reason: exitReason, hard: hardExit)
    }

    private func readerFinished(reason: CloseReason?, hard: Bool) {
        if let reason, reason == .peerClosedMidFrame {
            logger.info("\(reason)")
        }
        let (tasks, step) = state.withLock { state -> ([Task<[UInt8], Never>], WriterStep) in
            state.reader = .finished
            if state.reason == nil { state.reason = reason ?? .closedLocally }
            var tasks: [Task<[UInt8], Never>] = []
            if hard && !state.hard {
                state.hard = true
                tasks = state.running.values.map(\.task)
            }
            return (tasks, writerStepLocked(&state))
        }
        for task in tasks { task.cancel() }
        perform(step)
    }

    // MARK: - Writing

    /// Frames and queues one message body. False if the connection is closed; a failed
    /// write means the peer is gone, so the connection closes.
    @discardableResult
    func writeBody(_ body: [UInt8]) -> Bool {
        writer.write(FrameParser.encode(body)) == .accepted
    }

    @discardableResult
    public func sendNotification(method: String, encodedParams: EncodedJSON?) -> Bool {
        writeBody(MessageEncoder.notification(method: method, params: encodedParams))
    }
}
