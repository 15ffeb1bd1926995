import Dispatch
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a listening or connecting socket could not be set up.
public enum UnixSocketError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `sun_path` holds at most 107 bytes plus the terminating NUL.
    case pathTooLong(path: String, limit: Int)
    /// Empty, or containing a NUL byte.
    case invalidPath(String)
    /// Another process is listening on the path.
    case addressInUse(path: String)
    /// Something that is not a socket sits at the path; it is never deleted.
    case notASocket(path: String)
    case system(SystemCallError, path: String)

    public var description: String {
        switch self {
        case .pathTooLong(let path, let limit):
            "socket path '\(path)' is longer than \(limit) bytes; choose a shorter runtime directory"
        case .invalidPath(let path):
            "socket path '\(path)' is empty or contains a NUL byte"
        case .addressInUse(let path):
            "another process is already listening on '\(path)'; stop it or use another runtime directory"
        case .notASocket(let path):
            "'\(path)' exists and is not a socket; remove it or use another runtime directory"
        case .system(let error, let path):
            "\(error) for '\(path)'"
        }
    }
}

/// A connection accepted by `UnixSocketListener`: serve it with
/// `Connection(accepted:dispatcher:)`, or `refuse` or `close` it.
public struct AcceptedSocket: Sendable {
    let channel: any Channel
    /// Who connected, from SO_PEERCRED; the daemon refuses other users with it.
    public let peer: PeerCredentials?

    /// Closes the connection without a word.
    public func close() { channel.close(promise: nil) }

    /// Answers with `error` (a response without an id, as for a framing error), then
    /// closes once it is written.
    public func refuse(_ error: ResponseError) {
        let frame = FrameEncoder.encode(MessageEncoder.response(id: nil, result: .failure(error)))
        channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Listens on a Unix socket path and hands each accepted connection to a callback on
/// one of the RPC event loops. Transport only: what to do with a connection,
/// and whom to refuse, is the owner's decision.
public final class UnixSocketListener: Sendable {
    public let path: String
    private let fd: Int32
    /// The socket file we created, to avoid unlinking a successor's socket at close.
    private let identity: (device: UInt64, inode: UInt64)?
    private let logger: Logger

    private enum Phase {
        case bound
        case starting
        case accepting(any Channel)
        case closed
    }

    private struct State {
        var phase = Phase.bound
        var stopRequested = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    /// Signalled when the socket has been released.
    private let finished = DispatchSemaphore(value: 0)

    /// Binds `path`, restricts it to the owner (0600) and starts listening. A leftover
    /// socket file nobody answers on (a crashed daemon's) is replaced; a live one is
    /// refused with `.addressInUse`; a non-socket file is never touched.
    public init(
        path: String, backlog: Int32 = 128, logger: Logger = Logger(label: "mesa.rpc.listener")
    ) throws(UnixSocketError) {
        _ = Descriptors.ignoreSIGPIPE
        self.path = path
        self.logger = logger
        var address = try Self.address(for: path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemCallError("socket", errno: errno), path: path) }

        func fail(_ error: UnixSocketError) -> UnixSocketError {
            Descriptors.closeFD(fd)
            return error
        }

        if Self.bind(fd, &address) != 0 {
            let code = errno
            guard code == EADDRINUSE else {
                throw fail(.system(SystemCallError("bind", errno: code), path: path))
            }
            var info = stat()
            guard lstat(path, &info) == 0 else {
                throw fail(.system(SystemCallError("lstat", errno: errno), path: path))
            }
            guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw fail(.notASocket(path: path)) }
            if Self.isAnswering(path) { throw fail(.addressInUse(path: path)) }
            logger.info("removing stale socket \(path)")
            // Racing another starter here is settled by bind: the loser gets EADDRINUSE.
            _ = unlink(path)
            if Self.bind(fd, &address) != 0 {
                let code = errno
                throw fail(code == EADDRINUSE ? .addressInUse(path: path) : .system(SystemCallError("bind", errno: code), path: path))
            }
        }
        // Before listen(): until then connects are refused, so no one can connect
        // while the file still has the umask's mode.
        guard chmod(path, 0o600) == 0 else {
            let code = errno
            _ = unlink(path)
            throw fail(.system(SystemCallError("chmod", errno: code), path: path))
        }
        guard listen(fd, backlog) == 0 else {
            let code = errno
            _ = unlink(path)
            throw fail(.system(SystemCallError("listen", errno: code), path: path))
        }
        var info = stat()
        identity = lstat(path, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : nil
        self.fd = fd
    }

    /// Starts accepting. `handler` runs on an event loop for each connection, before
    /// anything is read from it, and must not block (start a `Connection` and return).
    public func start(_ handler: @escaping @Sendable (AcceptedSocket) -> Void) {
        let shouldStart = state.withLock { state -> Bool in
            guard case .bound = state.phase, !state.stopRequested else { return false }
            state.phase = .starting
            return true
        }
        guard shouldStart else { return }
        let logger = self.logger
        ServerBootstrap(group: EventLoops.group)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Reading starts when a `Connection` has set up its pipeline.
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                PeerCredentials.of(channel: channel).map { peer in
                    handler(AcceptedSocket(channel: channel, peer: peer))
                }
            }
            .withBoundSocket(fd)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    let stop = state.withLock { state -> Bool in
                        state.phase = .accepting(channel)
                        return state.stopRequested
                    }
                    channel.closeFuture.whenComplete { [self] _ in release() }
                    if stop { channel.close(promise: nil) }
                case .failure(let error):
                    logger.critical("cannot accept on \(path): \(error)")
                    Descriptors.closeFD(fd)
                    release()
                }
            }
    }

    /// Stops accepting, closes the socket and removes its file. Connections already
    /// accepted are not affected. Idempotent. Off the event loops it returns once the
    /// socket is released; on one (an accept handler) at once, the release follows.
    public func close() {
        let step = state.withLock { state -> Phase? in
            guard !state.stopRequested else { return nil }
            state.stopRequested = true
            return state.phase
        }
        switch step {
        case nil, .closed?, .starting?: break  // `start`'s completion closes it
        case .bound?:
            Descriptors.closeFD(fd)
            release()
        case .accepting(let channel)?:
            channel.close(promise: nil)
        }
        guard MultiThreadedEventLoopGroup.currentEventLoop == nil else { return }
        finished.wait()
        finished.signal()  // pass it on, so every concurrent caller returns
    }

    /// Waits until the listener is closed.
    public func waitUntilClosed() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if case .closed = state.phase { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Removes the socket file if it is still ours; the descriptor is closed already.
    private func release() {
        var info = stat()
        if let identity, lstat(path, &info) == 0, UInt64(info.st_dev) == identity.device,
            UInt64(info.st_ino) == identity.inode
        {
            _ = unlink(path)
        }
        let waiters = state.withLock { state in
            state.phase = .closed
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        finished.signal()
        for waiter in waiters { waiter.resume() }
    }

    // MARK: - Socket helpers

    /// Connects to a Unix socket path; the caller owns the returned descriptor.
    public static func connect(path: String) throws(UnixSocketError) -> Int32 {
        var address = try address(for: path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(SystemCallError("socket", errno: errno), path: path) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            let code = errno
            Descriptors.closeFD(fd)
            throw .system(SystemCallError("connect", errno: code), path: path)
        }
        return fd
    }

    /// True when some process accepts connections on `path`.
    static func isAnswering(_ path: String) -> Bool {
        guard let fd = try? connect(path: path) else { return false }
        Descriptors.closeFD(fd)
        return true
    }

    static func address(for path: String) throws(UnixSocketError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else { throw .invalidPath(path) }
        guard bytes.count < capacity else { throw .pathTooLong(path: path, limit: capacity - 1) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    private static func bind(_ fd: Int32, _ address: inout sockaddr_un) -> Int32 {
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
