import Foundation
import HummingbirdCore
import Logging
import MesaAPI
import NIOCore
import NIOHTTP1
import Synchronization

/// Hummingbird's HTTP/1.1 child channel with a guard in its pipeline that bounds the time
/// a client may take (headers, body, idle keep-alive) and answers malformed requests in
/// the error envelope. Hummingbird's own idle timeout counts only whole HTTP parts, so a
/// client sending one header line every few seconds would never time out under it.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let http1: HTTP1Channel
    let limits: Limits
    let connections: ConnectionCount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let admitted = connections.open(limit: limits.maxConnections)
        if admitted { channel.closeFuture.whenComplete { _ in connections.close() } }
        return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            if !admitted {
                try pipeline.addHandler(Refusal(), position: .first)
                return value
            }
            let clock = ConnectionClock(limits: limits)
            // Right after the decoder: it sees parse errors before anyone else and whole
            // request parts; its own writes go straight to the encoder.
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(RequestGuard(clock), position: .after(decoder))
            // First of all: raw bytes, to start the header clock at a request's first byte.
            try pipeline.addHandler(FirstByteWatch(clock), position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

/// The connections open now, against `Limits.maxConnections`.
final class ConnectionCount: Sendable {
    private let open = Mutex(0)

    init() {}

    /// Counts a new connection, or returns false (and counts nothing) at the limit.
    func open(limit: Int) -> Bool {
        open.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func close() { open.withLock { $0 -= 1 } }
}

/// A connection past the limit: answered 503 in the envelope before it sends anything,
/// and closed, so the client learns why instead of waiting in the listen backlog.
final class Refusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        let body = (try? RESTCoding.encoder().encode(RESTErrorEnvelope(
            code: "UNAVAILABLE", message: "the server has as many connections open as it accepts; retry shortly"))) ?? Data()
        let head = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json; charset=utf-8\r\n"
            + "content-length: \(body.count)\r\nconnection: close\r\nretry-after: 1\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + body.count)
        buffer.writeString(head)
        buffer.writeBytes(body)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { [context] _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// The one deadline a connection is under, by the phase it is in. Shared by the two
/// handlers of one channel, on that channel's event loop only.
final class ConnectionClock {
    enum Phase {
        /// No request under way: `idleTimeout`.
        case idle
        /// Bytes of a request arrived, its headers are not complete: `headerTimeout`.
        case readingHead
        /// Headers read, the body is not complete: `requestTimeout`.
        case readingBody
        /// The request is read; the answer is being prepared. No deadline here: the
        /// client is not the one holding the connection.
        case answering
    }

    let limits: Limits
    private(set) var phase = Phase.idle
    private var deadline: Scheduled<Void>?
    /// A response head went out and its end did not yet.
    var responding = false
    /// Request heads read and responses ended on this connection: requests can be
    /// pipelined, and a refusal can be answered before its body is read.
    var heads = 0
    var answers = 0
    /// Set by `RequestGuard` once it is in the pipeline: what to do when time runs out.
    var onTimeout: ((Phase) -> Void)?

    init(limits: Limits) { self.limits = limits }

    func enter(_ phase: Phase, on loop: any EventLoop) {
        self.phase = phase
        deadline?.cancel()
        deadline = nil
        let limit: Duration? = switch phase {
        case .idle: limits.idleTimeout
        case .readingHead: limits.headerTimeout
        case .readingBody: limits.requestTimeout
        case .answering: nil
        }
        guard let limit else { return }
        let nanoseconds = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        deadline = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .nanoseconds(nanoseconds)) { [weak self] in
            guard let self, self.phase == phase else { return }
            self.deadline = nil
            self.onTimeout?(phase)
        }
    }

    func stop() {
        deadline?.cancel()
        deadline = nil
        onTimeout = nil
    }
}

/// Starts the header clock at the first byte of a request.
final class FirstByteWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let clock: ConnectionClock

    init(_ clock: ConnectionClock) { self.clock = clock }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if clock.phase == .idle { clock.enter(.readingHead, on: context.eventLoop) }
        context.fireChannelRead(data)
    }
}

/// Moves the clock through a request's phases, closes the connection when a deadline
/// passes (with 408 when the client is still sending a body nobody answered yet), and
/// answers an unparsable request in the error envelope instead of an empty 400.
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let clock: ConnectionClock

    init(_ clock: ConnectionClock) { self.clock = clock }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = context.loopBound
        clock.onTimeout = { [unowned self] phase in self.timedOut(phase, context: loopBound.value) }
        if context.channel.isActive { clock.enter(.idle, on: context.eventLoop) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { clock.stop() }

    func channelActive(context: ChannelHandlerContext) {
        clock.enter(.idle, on: context.eventLoop)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        clock.stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            clock.heads += 1
            clock.enter(.readingBody, on: context.eventLoop)
        case .body:
            break
        case .end:
            // A refusal may have answered before the body was read: then nothing is owed.
            clock.enter(clock.answers >= clock.heads ? .idle : .answering, on: context.eventLoop)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head:
            clock.responding = true
        case .body:
            break
        case .end:
            clock.responding = false
            clock.answers += 1
            // While a body is still arriving, its deadline keeps running.
            if clock.phase == .answering, clock.answers >= clock.heads { clock.enter(.idle, on: context.eventLoop) }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        clock.stop()
        if clock.responding {
            context.close(promise: nil)
        } else if parseError == .headerOverflow {
            answerAndClose(context, status: .init(statusCode: 431), code: "REQUEST_HEADERS_TOO_LARGE",
                           message: "the request line and headers are larger than the server accepts")
        } else {
            answerAndClose(context, status: .badRequest, code: "BAD_REQUEST",
                           message: "the request is not valid HTTP/1.1 (\(parseError))")
        }
    }

    private func timedOut(_ phase: ConnectionClock.Phase, context: ChannelHandlerContext) {
        if phase == .readingBody, !clock.responding {
            answerAndClose(context, status: .requestTimeout, code: "REQUEST_TIMEOUT",
                           message: "the request body did not arrive within \(clock.limits.requestTimeout)")
        } else {
            context.close(promise: nil)
        }
    }

    private func answerAndClose(_ context: ChannelHandlerContext, status: HTTPResponseStatus, code: String, message: String) {
        let body = (try? RESTCoding.encoder().encode(RESTErrorEnvelope(code: code, message: message))) ?? Data()
        let headers = HTTPHeaders([("content-type", "application/json; charset=utf-8"),
                                   ("content-length", String(body.count)), ("connection", "close")])
        clock.stop()
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [context] _ in context.close(promise: nil) }
    }
}
