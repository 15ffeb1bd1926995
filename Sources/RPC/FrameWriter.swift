import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serialises whole frames onto one descriptor without ever blocking the caller.
///
/// Callers are request handlers on Swift's shared cooperative pool (two threads on
/// this machine). A blocking write to a peer that stops reading would pin one of those
/// threads and soon stall every connection in the process. So:
/// - sockets try a non-blocking `send` first; in the common case the whole frame fits
///   in the socket buffer and is written right there, with no thread hop;
/// - whatever does not fit (and everything for pipes, which cannot be made
///   non-blocking without changing a file description shared with other processes)
///   goes to a backlog drained by this writer's own thread with blocking writes.
/// Frames keep their order: once a backlog exists, later frames queue behind it.
final class FrameWriter: Sendable {
    enum Outcome: Equatable {
        case accepted
        /// The writer is closed; the frame was dropped.
        case closed
    }

    private struct State {
        var backlog: [UInt8] = []
        /// The writer thread owns the descriptor's output until the backlog is empty.
        var busy = false
        /// No new frames are accepted.
        var closed = false
        /// The thread exits once the backlog is empty (or dropped).
        var finishing = false
        var threadStarted = false
        var exited = false
    }

    private let fd: Int32
    private let isSocket: Bool
    private let maximumBacklog: Int
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    struct Handlers: Sendable {
        /// Called when a write fails (the peer is gone) or the backlog overflows.
        var onFailure: @Sendable (Int32) -> Void
        /// Called once when the writer has stopped touching the descriptor for good.
        var onExit: @Sendable () -> Void
    }

    /// Set after init because the owner's callbacks refer to the owner, which is not
    /// initialised yet when it creates its writer.
    private let handlers = Mutex<Handlers?>(nil)

    init(fd: Int32, isSocket: Bool, maximumBacklog: Int) {
        self.fd = fd
        self.isSocket = isSocket
        self.maximumBacklog = maximumBacklog
    }

    func setHandlers(_ handlers: Handlers) {
        self.handlers.withLock { $0 = handlers }
    }

    func start(name: String) {
        let shouldStart = state.withLock { state -> Bool in
            guard !state.threadStarted, !state.finishing else { return false }
            state.threadStarted = true
            return true
        }
        guard shouldStart else { return }
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Writes or queues one frame.
    func write(_ frame: [UInt8]) -> Outcome {
        enum Step {
            case done
            case closed
            case wakeWriter
            case failed(Int32)
            case overflow
        }
        let step = state.withLock { state -> Step in
            if state.closed { return .closed }
            if state.busy {
                state.backlog.append(contentsOf: frame)
                if state.backlog.count > maximumBacklog {
                    state.closed = true
                    state.backlog = []
                    return .overflow
                }
                return .done
            }
            var offset = 0
            if isSocket {
                // Under the lock, so frames from concurrent callers never interleave.
                switch Self.sendNonBlocking(fd, frame, from: &offset) {
                case .complete: return .done
                case .wouldBlock: break
                case .failed(let code):
                    state.closed = true
                    return .failed(code)
                }
            }
            state.backlog.append(contentsOf: frame[offset...])
            state.busy = true
            return .wakeWriter
        }
        switch step {
        case .done: return .accepted
        case .closed: return .closed
        case .wakeWriter:
            wake.signal()
            return .accepted
        case .failed(let code):
            handlers.withLock { $0 }?.onFailure(code)
            return .closed
        case .overflow:
            // The peer has left more unread output than any sane client would.
            handlers.withLock { $0 }?.onFailure(ENOBUFS)
            return .closed
        }
    }

    /// Stops accepting frames. With `dropBacklog` pending output is discarded (hard
    /// close); otherwise it is flushed first. `onExit` runs once everything stopped.
    /// May be called again to escalate from flushing to dropping.
    func finish(dropBacklog: Bool) {
        let exitNow = state.withLock { state -> Bool in
            state.closed = true
            state.finishing = true
            if dropBacklog { state.backlog = [] }
            guard !state.threadStarted, !state.exited else { return false }
            state.exited = true
            return true
        }
        if exitNow {
            handlers.withLock { $0 }?.onExit()
        } else {
            wake.signal()
        }
    }

    private func run() {
        while true {
            wake.wait()
            draining: while true {
                let action = state.withLock { state -> WriterAction in
                    if !state.backlog.isEmpty {
                        let batch = state.backlog
                        state.backlog = []
                        return .write(batch)
                    }
                    state.busy = false
                    if state.finishing {
                        state.exited = true
                        return .exit
                    }
                    return .sleep
                }
                switch action {
                case .sleep:
                    break draining
                case .exit:
                    handlers.withLock { $0 }?.onExit()
                    return
                case .write(let batch):
                    // Blocking is fine here: this thread exists for it. A hard close
                    // shuts the socket down, which ends a write stuck on a full buffer.
                    if let code = Descriptors.writeAll(fd, batch, isSocket: isSocket) {
                        state.withLock { state in
                            state.closed = true
                            state.backlog = []
                        }
                        handlers.withLock { $0 }?.onFailure(code)
                    }
                }
            }
        }
    }

    private enum WriterAction {
        case write([UInt8])
        case sleep
        case exit
    }

    private enum SendResult {
        case complete
        case wouldBlock
        case failed(Int32)
    }

    private static func sendNonBlocking(_ fd: Int32, _ bytes: [UInt8], from offset: inout Int) -> SendResult {
        bytes.withUnsafeBytes { buffer -> SendResult in
            guard let base = buffer.baseAddress else { return .complete }
            while offset < buffer.count {
                #if os(Linux)
                let flags = Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)
                #else
                let flags = Int32(MSG_DONTWAIT)
                #endif
                let sent = send(fd, base + offset, buffer.count - offset, flags)
                if sent > 0 {
                    offset += sent
                    continue
                }
                let code = sent < 0 ? errno : EIO
                switch code {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return .wouldBlock
                default: return .failed(code)
                }
            }
            return .complete
        }
    }
}
