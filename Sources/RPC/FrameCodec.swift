import NIOCore
import NIOPosix

/// What the frame decoder hands up the pipeline.
enum InboundFrame {
    case body([UInt8])
    /// End of input; `midFrame` when bytes of an unfinished frame were left.
    case end(midFrame: Bool)
}

/// The NIO side of the LSP framing: splits the byte stream with a `FrameParser` (the
/// one implementation of the rules and limits) and throws its `FramingError`, which
/// the connection answers before closing.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = InboundFrame

    var parser: FrameParser
    private var ended = false

    init(maximumFrameSize: Int, maximumHeaderSize: Int) {
        parser = FrameParser(maximumFrameSize: maximumFrameSize, maximumHeaderSize: maximumHeaderSize)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        buffer.withUnsafeReadableBytes { parser.append($0) }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        while let body = try parser.next() {
            context.fireChannelRead(Self.wrapInboundOut(.body(body)))
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        _ = try decode(context: context, buffer: &buffer)
        if !ended {
            ended = true
            context.fireChannelRead(Self.wrapInboundOut(.end(midFrame: parser.hasPartialFrame)))
        }
        return .needMoreData
    }
}

/// The writing side: `Content-Length: N\r\n\r\n` and the body, in one buffer.
enum FrameEncoder {
    static func encode(_ body: [UInt8]) -> ByteBuffer {
        let header = "Content-Length: \(body.count)\r\n\r\n"
        var buffer = ByteBufferAllocator().buffer(capacity: header.utf8.count + body.count)
        buffer.writeString(header)
        buffer.writeBytes(body)
        return buffer
    }
}

/// Runs a connection's handler tasks on its event loop: a request is read, handled and
/// answered on one thread, with no hand-off to another (see bench/RESULTS.md). Handlers
/// must not block; mesad's run blocking work through `blocking {}`.
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// The event loops every connection and listener runs on: a fixed number of threads
/// however many clients. More than one per core because handlers run on them: a
/// handler's CPU work (encoding a large listing) holds its loop, and with 8 loops the
/// kernel interleaves such work as it did across the old per-connection threads
/// (bench/RESULTS.md: 16 concurrent clients, p50 about 350 µs with 2 loops, 280-375 µs
/// with 8, on 2 cores).
enum EventLoops {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: max(8, System.coreCount))
}
