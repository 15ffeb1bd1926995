import Logging
import NIOCore
import NIOPosix
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
    /// The peer left more than `maximumBufferedOutput` unread (ENOBUFS). (A write that
    /// fails because the peer is gone closes the channel: `peerClosed`.)
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

/// A JSON-RPC connection over a SwiftNIO channel: an accepted Unix socket, one end of a
/// socketpair, or a pair of pipes (stdin/stdout) — the same code for all.
///
/// Threading: the channel lives on one thread of `EventLoops.group` (a fixed number of
/// threads, however many connections). Each request runs in its own `Task`
/// whose executor is that event loop, so a request is read, handled and answered on
/// one thread; a slow method still never stalls reading, since handlers suspend rather
/// than block, and responses go out in completion order. Notifications are handled one
/// at a time, in order, by one task per connection. `$/cancelRequest` is acted on when
/// it is read, at once.
///
/// Lifecycle: created → running (after `start()`) → closed. Closing is either hard
/// (`close()`, framing error, write failure: running requests are cancelled, unsent
/// output is dropped — except a framing error's own answer, which is flushed first) or
/// draining (the peer's end of input, `closeAfterPendingRequests()`: reading stops, but
/// every request already read is answered and flushed before the channel closes).
/// Either way every waiter and close handler runs exactly once.
public final class Connection: NotificationSender {
    public struct Options: Sendable {
        public var maximumFrameSize: Int = FrameParser.defaultMaximumFrameSize
        public var maximumHeaderSize: Int = FrameParser.defaultMaximumHeaderSize
        /// Unsent output above which a peer that does not read is disconnected.
        public var maximumBufferedOutput: Int = 2 * FrameParser.defaultMaximumFrameSize
        /// False leaves the descriptors open at close, for callers that own them
        /// (stdin/stdout): the channel gets duplicates.
        public var closesDescriptors: Bool = true

        public init() {}
    }

    /// What the channel is made from at `start()`.
    enum Transport {
        case socket(Int32)
        case pipes(read: Int32, write: Int32)
        case accepted(any Channel)
    }

    public let info: ConnectionInfo
    public let dispatcher: Dispatcher
    let options: Options
    let logger: Logger
    let transport: Transport
    let executor: EventLoopExecutor
    /// Descriptor flags to put back at close, for descriptors we share with others
    /// (NIO makes them non-blocking).
    let restoreFlags: [(fd: Int32, flags: Int32)]
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
        var channel: (any Channel)?
        /// Frames written before the channel existed, sent first once it does.
        var early: [ByteBuffer] = []
        /// Once set: do not wait for running requests, drop unsent output.
        var hard = false
        /// Once set: incoming frames are ignored and nothing new starts.
        var stopRequested = false
        /// The first cause of closing wins.
        var reason: CloseReason?
        /// No more output is accepted.
        var outputClosed = false
        /// The channel's close was started: after flushing (true) or at once (false).
        var closing: Bool?
        /// A flush of the frames written on the event loop is queued on it.
        var flushScheduled = false
        var closed = false
        /// Incoming requests by id, to cancel them.
        var running: [RequestID: Running] = [:]
        var nextToken: UInt64 = 0
        /// Handler tasks (requests, notifications, batches) whose answer is not yet
        /// handed to the channel; a draining close waits for this to reach zero.
        var outstanding = 0
        /// Our own requests to the peer, awaiting answers.
        var pending: [RequestID: CheckedContinuation<JSONValue, any Error>] = [:]
        var nextOutgoingID = 0
        var closeHandlers: [@Sendable (CloseReason) -> Void] = []
        var waiters: [CheckedContinuation<CloseReason, Never>] = []
    }

    let state = Mutex(State())

    /// Wraps two descriptors (the same one twice for a socket). With
    /// `closesDescriptors` off it works on duplicates, so it throws only when the
    /// process is out of descriptors.
    public init(
        readFD: Int32, writeFD: Int32, dispatcher: Dispatcher, options: Options = Options(),
        logger: Logger = Logger(label: "mesa.rpc")
    ) throws(SystemCallError) {
        _ = Descriptors.ignoreSIGPIPE
        let isSocket = readFD == writeFD && Descriptors.isSocket(readFD)
        var restore: [(fd: Int32, flags: Int32)] = []
        if !options.closesDescriptors {
            restore = [readFD, writeFD].map { ($0, fcntl($0, F_GETFL)) }
        }
        let owned = options.closesDescriptors ? (readFD, writeFD) : (try Descriptors.duplicate(readFD), try Descriptors.duplicate(writeFD))
        if isSocket {
            transport = .socket(owned.0)
            if owned.1 != owned.0 { Descriptors.closeFD(owned.1) }
        } else {
            // NIO wants two distinct descriptors for a pipe pair.
            transport = .pipes(read: owned.0, write: owned.0 == owned.1 ? try Descriptors.duplicate(owned.1) : owned.1)
        }
        self.restoreFlags = restore
        self.executor = EventLoopExecutor(EventLoops.group.next())
        self.dispatcher = dispatcher
        self.options = options
        let peer = Descriptors.isSocket(readFD) ? PeerCredentials.of(socket: readFD) : nil
        (self.info, self.logger) = Self.identity(peer: peer, logger: logger)
    }

    /// Convenience for a socket: one descriptor for both directions.
    public convenience init(
        socket fd: Int32, dispatcher: Dispatcher, options: Options = Options(),
        logger: Logger = Logger(label: "mesa.rpc")
    ) throws(SystemCallError) {
        try self.init(readFD: fd, writeFD: fd, dispatcher: dispatcher, options: options, logger: logger)
    }

    /// Serves a client a `UnixSocketListener` accepted.
    public init(
        accepted: AcceptedSocket, dispatcher: Dispatcher, options: Options = Options(),
        logger: Logger = Logger(label: "mesa.rpc")
    ) {
        transport = .accepted(accepted.channel)
        restoreFlags = []
        executor = EventLoopExecutor(accepted.channel.eventLoop)
        self.dispatcher = dispatcher
        self.options = options
        (self.info, self.logger) = Self.identity(peer: accepted.peer, logger: logger)
    }

    private static func identity(peer: PeerCredentials?, logger: Logger) -> (ConnectionInfo, Logger) {
        let id = connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        var logger = logger
        logger[metadataKey: "connection"] = "\(id)"
        return (ConnectionInfo(id: id, peer: peer), logger)
    }

    /// Starts reading and the notification task. Calling it again, or after close,
    /// does nothing.
    public func start() {
        let shouldStart = state.withLock { state -> Bool in
            guard case .notStarted = state.reader, !state.stopRequested else { return false }
            state.reader = .running
            return true
        }
        guard shouldStart else { return }
        Task(executorPreference: executor) { [self] in await runNotifications() }
        let eventLoop = executor.eventLoop
        let made: EventLoopFuture<any Channel>
        switch transport {
        case .socket(let fd):
            made = ClientBootstrap(group: eventLoop)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.autoRead, value: false)
                .withConnectedSocket(fd)
        case .pipes(let input, let output):
            made = NIOPipeBootstrap(group: eventLoop)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.autoRead, value: false)
                .takingOwnershipOfDescriptors(input: input, output: output)
        case .accepted(let channel):
            made = eventLoop.makeSucceededFuture(channel)
        }
        made.whenComplete { [self] result in
            switch result {
            case .success(let channel): attach(channel)
            case .failure(let error): startFailed(error)
            }
        }
    }

    /// On the event loop: wires the codec, sends what was written before, starts reading.
    private func attach(_ channel: any Channel) {
        do {
            try channel.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(
                    FrameDecoder(maximumFrameSize: options.maximumFrameSize, maximumHeaderSize: options.maximumHeaderSize)),
                ConnectionHandler(connection: self))
        } catch {
            logger.error("cannot set up the connection: \(error)")
            channel.close(promise: nil)
        }
        channel.closeFuture.whenComplete { [self] _ in finalTeardown() }
        // Unread output above the limit makes the channel unwritable: ConnectionHandler
        // then disconnects the peer.
        let limit = max(options.maximumBufferedOutput, 2)
        try? channel.syncOptions?.setOption(.writeBufferWaterMark, value: .init(low: limit / 2, high: limit))
        // Early frames first; the channel is published only once none is left, so
        // frames keep the order they were written in.
        while true {
            let early = state.withLock { state -> [ByteBuffer] in
                if state.early.isEmpty { state.channel = channel }
                defer { state.early = [] }
                return state.early
            }
            if early.isEmpty { break }
            for frame in early { channel.writeAndFlush(frame, promise: nil) }
        }
        perform(state.withLock { closeStepLocked(&$0) })
        _ = channel.setOption(.autoRead, value: true)
    }

    private func startFailed(_ error: any Error) {
        logger.error("cannot serve the connection: \(error)")
        releaseUnattachedTransport()
        state.withLock { state in
            state.reader = .finished
            if state.reason == nil { state.reason = .readFailed(errno: (error as? IOError)?.errnoCode ?? EINVAL) }
        }
        finalTeardown()
    }

    // MARK: - Closing

    /// Closes now: stops reading, cancels running requests (their answers are dropped)
    /// and closes the channel. Idempotent; safe from any thread, handlers included.
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
        beginClose(reason: reason, hard: hard) { $0.stopRequested = true }
    }

    /// Input ended or failed: nothing more will be read.
    func readerFinished(reason: CloseReason, hard: Bool) {
        if reason == .peerClosedMidFrame { logger.info("\(reason)") }
        beginClose(reason: reason, hard: hard) { $0.reader = .finished }
    }

    /// Records why (the first cause wins), cancels running requests on a hard close,
    /// and closes the channel if nothing is left to wait for.
    private func beginClose(reason: CloseReason, hard: Bool, _ mark: (inout State) -> Void) {
        let (tasks, step) = state.withLock { state -> ([Task<[UInt8], Never>], CloseStep) in
            guard !state.closed else { return ([], .none) }
            mark(&state)
            if state.reason == nil { state.reason = reason }
            var tasks: [Task<[UInt8], Never>] = []
            if hard && !state.hard {
                state.hard = true
                tasks = state.running.values.map(\.task)
            }
            return (tasks, closeStepLocked(&state))
        }
        for task in tasks { task.cancel() }
        perform(step)
    }

    /// The stream broke the framing rules: answer with the error, flush it, close.
    func framingFailed(_ error: FramingError) {
        logger.error("closing connection: \(error)")
        writeBody(MessageEncoder.response(id: nil, result: .failure(error.responseError)))
        readerFinished(reason: .framingError(error), hard: true)
    }

    enum CloseStep {
        case none
        /// Never started: nothing runs, tear down here.
        case teardown
        case closeChannel(any Channel, flush: Bool)
    }

    /// Decides, with the state lock held, whether the channel may close now: once
    /// reading is over and either the close is hard or every answer was handed over.
    func closeStepLocked(_ state: inout State) -> CloseStep {
        if state.closed { return .none }
        if case .notStarted = state.reader { return state.stopRequested ? .teardown : .none }
        guard state.stopRequested || state.reader == .finished else { return .none }
        guard state.hard || state.outstanding == 0 else { return .none }
        state.outputClosed = true
        guard let channel = state.channel else { return .none }  // `attach` asks again
        // A framing error's answer is the one output a hard close still flushes.
        let flush: Bool
        if case .framingError = state.reason { flush = true } else { flush = !state.hard }
        switch state.closing {
        case nil:
            state.closing = flush
        case true? where !flush:
            state.closing = false  // escalate a flushing close to a hard one
        default:
            return .none
        }
        return .closeChannel(channel, flush: flush)
    }

    func perform(_ step: CloseStep) {
        switch step {
        case .none: break
        case .teardown:
            finalTeardown()
        case .closeChannel(let channel, flush: false):
            channel.close(promise: nil)
        case .closeChannel(let channel, flush: true):
            // Writes complete in order: once this empty one has, everything before it
            // is written.
            channel.writeAndFlush(ByteBuffer()).whenComplete { _ in channel.close(promise: nil) }
            if case .framingError = state.withLock({ $0.reason }) {
                // The peer broke the stream; it gets 10 s to take the error, not forever.
                channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
            }
        }
    }

    /// Runs once, when the channel has closed (or a never-started connection is closed):
    /// tells everyone waiting.
    private func finalTeardown() {
        let taken = state.withLock {
            state -> (CloseReason, [CheckedContinuation<JSONValue, any Error>], [@Sendable (CloseReason) -> Void], [CheckedContinuation<CloseReason, Never>], [Task<[UInt8], Never>])? in
            guard !state.closed else { return nil }
            state.closed = true
            state.outputClosed = true
            state.stopRequested = true
            let reason = state.reason ?? .closedLocally
            state.reason = reason
            var tasks: [Task<[UInt8], Never>] = []
            if !state.hard {
                state.hard = true
                tasks = state.running.values.map(\.task)
            }
            let pending = Array(state.pending.values)
            state.pending = [:]
            let handlers = state.closeHandlers
            state.closeHandlers = []
            let waiters = state.waiters
            state.waiters = []
            return (reason, pending, handlers, waiters, tasks)
        }
        guard let (reason, pending, handlers, waiters, tasks) = taken else { return }
        for task in tasks { task.cancel() }
        notificationQueue.continuation.finish()
        if case .notStarted = state.withLock({ $0.reader }) { releaseUnattachedTransport() }
        for (fd, flags) in restoreFlags where flags >= 0 { _ = fcntl(fd, F_SETFL, flags) }
        logger.debug("connection closed: \(reason)")
        for continuation in pending { continuation.resume(throwing: ConnectionClosedError(reason: reason)) }
        for handler in handlers { handler(reason) }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    /// Closes what no channel took ownership of (never started, or the bootstrap failed).
    private func releaseUnattachedTransport() {
        switch transport {
        case .socket(let fd): Descriptors.closeFD(fd)
        case .pipes(let input, let output):
            Descriptors.closeFD(input)
            Descriptors.closeFD(output)
        case .accepted(let channel): channel.close(promise: nil)
        }
    }

    // MARK: - Reading

    /// A complete frame body from the decoder.
    func received(_ body: [UInt8]) {
        if state.withLock({ $0.stopRequested }) { return }
        handleFrame(body)
    }

    // MARK: - Writing

    /// Frames and sends one message body. False if the connection is closed. Frames
    /// written on the event loop (handlers' answers) are flushed together once the
    /// loop's current work is done: one write for a burst of answers.
    @discardableResult
    func writeBody(_ body: [UInt8]) -> Bool {
        let frame = FrameEncoder.encode(body)
        let onLoop = executor.eventLoop.inEventLoop
        enum Outcome {
            case write(any Channel, scheduleFlush: Bool)
            case writeAndFlush(any Channel)
            case queued
            case refused
        }
        let outcome = state.withLock { state -> Outcome in
            guard !state.outputClosed else { return .refused }
            guard let channel = state.channel else {
                state.early.append(frame)
                return .queued
            }
            guard onLoop else { return .writeAndFlush(channel) }
            defer { state.flushScheduled = true }
            return .write(channel, scheduleFlush: !state.flushScheduled)
        }
        switch outcome {
        case .write(let channel, let scheduleFlush):
            channel.write(frame, promise: nil)
            if scheduleFlush {
                channel.eventLoop.execute { [self] in
                    state.withLock { $0.flushScheduled = false }
                    channel.flush()
                }
            }
        case .writeAndFlush(let channel):
            channel.writeAndFlush(frame, promise: nil)
        case .queued:
            break
        case .refused:
            return false
        }
        return true
    }

    /// The peer left more than `maximumBufferedOutput` unread.
    func outputOverflowed() {
        logger.debug("peer left more than \(options.maximumBufferedOutput) bytes unread")
        requestClose(reason: .writeFailed(errno: ENOBUFS), hard: true)
    }

    @discardableResult
    public func sendNotification(method: String, encodedParams: EncodedJSON?) -> Bool {
        writeBody(MessageEncoder.notification(method: method, params: encodedParams))
    }
}

/// Feeds decoded frames and the end of input to the connection.
private final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = InboundFrame

    // Strong: the channel's pipeline keeps a running connection alive, as long as it is open.
    let connection: Connection

    init(connection: Connection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .body(let body):
            connection.received(body)
        case .end(let midFrame):
            connection.readerFinished(reason: midFrame ? .peerClosedMidFrame : .peerClosed, hard: false)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? FramingError {
            connection.framingFailed(error)
        } else if let code = (error as? IOError)?.errnoCode, code != ECONNRESET {
            connection.readerFinished(reason: .readFailed(errno: code), hard: true)
        } else {
            // A reset from the peer is just another way of going away.
            connection.readerFinished(reason: .peerClosed, hard: true)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable { connection.outputOverflowed() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.readerFinished(reason: .peerClosed, hard: true)
        context.fireChannelInactive()
    }
}
