import Foundation
import Logging
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

/// A connection accepted by `UnixSocketListener`. The receiver owns `fd` and must
/// close it (a `Connection` does so by default).
public struct AcceptedSocket: Sendable {
    public let fd: Int32
    /// Who connected, from SO_PEERCRED; the daemon refuses other users with it.
    public let peer: PeerCredentials?
}

/// Listens on a Unix socket path and hands each accepted connection to a callback on
/// its own accept thread. Transport only: what to do with a connection, and whom to
/// refuse, is the owner's decision.
public final class UnixSocketListener: Sendable {
    public let path: String
    private let fd: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// The socket file we created, to avoid unlinking a successor's socket at close.
    private let identity: (device: UInt64, inode: UInt64)?
    private let logger: Logger

    private struct State {
        var started = false
        var acceptThread: pthread_t?
        var stopRequested = false
        var closed = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    /// Signalled when the accept thread has released the socket.
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
        let wake: (read: Int32, write: Int32)
        do {
            wake = try Descriptors.makeWakePipe()
        } catch {
            _ = unlink(path)
            throw fail(.system(error, path: path))
        }
        var info = stat()
        identity = lstat(path, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : nil
        self.fd = fd
        self.wakeRead = wake.read
        self.wakeWrite = wake.write
    }

    /// Starts accepting on a dedicated thread; `handler` runs on that thread for each
    /// connection and should return quickly (start a `Connection` and return).
    public func start(_ handler: @escaping @Sendable (AcceptedSocket) -> Void) {
        let shouldStart = state.withLock { state -> Bool in
            guard !state.started, !state.stopRequested else { return false }
            state.started = true
            return true
        }
        guard shouldStart else { return }
        let thread = Thread { [self] in
            acceptLoop(handler)
            release()
        }
        thread.name = "mesa.rpc.accept"
        thread.start()
    }

    /// Stops accepting, closes the socket and removes its file. Connections already
    /// accepted are not affected. Idempotent. When called from outside the accept
    /// thread it returns only once the socket is released; from the accept handler it
    /// returns at once and the release follows when the handler returns.
    public func close() {
        let (started, alreadyStopping) = state.withLock { state -> (Bool, Bool) in
            // Only the first call wakes the thread (or releases a never-started one).
            let already = state.stopRequested
            state.stopRequested = true
            if !already && state.started {
                var byte: UInt8 = 1
                _ = write(wakeWrite, &byte, 1)
            }
            return (state.started, already)
        }
        if !started {
            if !alreadyStopping { release() }
            return
        }
        if state.withLock({ $0.acceptThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }) {
            return  // called from the handler: waiting here would deadlock
        }
        finished.wait()
        finished.signal()  // pass it on, so every concurrent caller returns
    }

    /// Waits until the listener is closed.
    public func waitUntilClosed() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.closed { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func acceptLoop(_ handler: @Sendable (AcceptedSocket) -> Void) {
        state.withLock { $0.acceptThread = pthread_self() }
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                logger.critical("poll on listening socket failed: \(SystemCallError("poll", errno: errno))")
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client = accept(fd, nil, nil)
            if client < 0 {
                switch errno {
                case EINTR, EAGAIN, EWOULDBLOCK, ECONNABORTED, EPROTO:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of resources: back off instead of spinning on a socket that
                    // stays readable; the pending client waits in the backlog.
                    logger.error("accept failed: \(SystemCallError("accept", errno: errno)); retrying in 100 ms")
                    usleep(100_000)
                    continue
                default:
                    logger.critical("accept failed: \(SystemCallError("accept", errno: errno)); listener stops")
                    return
                }
            }
            // accept4 is not exported to Swift; set close-on-exec right away instead.
            Descriptors.setCloseOnExec(client)
            handler(AcceptedSocket(fd: client, peer: PeerCredentials.of(socket: client)))
            if state.withLock({ $0.stopRequested }) { return }
        }
    }

    /// Closes the descriptors and removes the socket file if it is still ours.
    private func release() {
        Descriptors.closeFD(fd)
        Descriptors.closeFD(wakeRead)
        Descriptors.closeFD(wakeWrite)
        var info = stat()
        if let identity, lstat(path, &info) == 0, UInt64(info.st_dev) == identity.device,
            UInt64(info.st_ino) == identity.inode
        {
            _ = unlink(path)
        }
        let waiters = state.withLock { state in
            state.closed = true
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
