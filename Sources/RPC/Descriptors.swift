#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call, with the errno it returned.
public struct SystemCallError: Error, Sendable, Hashable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The identity of the process on the other end of a Unix socket, from SO_PEERCRED.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Reads the peer of a connected Unix socket (also works on a socketpair). Nil for
    /// anything else, or on systems without SO_PEERCRED.
    public static func of(socket fd: Int32) -> PeerCredentials? {
        #if os(Linux)
        // `struct ucred` is hidden behind _GNU_SOURCE in Swift's Glibc module; this
        // struct has the same layout (pid_t, uid_t, gid_t: three 32-bit fields).
        struct UCred {
            var pid: Int32 = 0
            var uid: UInt32 = 0
            var gid: UInt32 = 0
        }
        var credentials = UCred()
        var length = socklen_t(MemoryLayout<UCred>.size)
        let result = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length)
        guard result == 0, length == socklen_t(MemoryLayout<UCred>.size) else { return nil }
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        #else
        return nil
        #endif
    }
}

/// Low-level descriptor helpers shared by `Connection` and `UnixSocketListener`.
enum Descriptors {
    /// A peer that closes its end must not kill the daemon with SIGPIPE: ignore it once,
    /// process-wide. Socket writes also pass MSG_NOSIGNAL, but stdout may be a pipe.
    static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// `close(2)` under a name that does not collide with `close()` methods. EINTR is
    /// not retried: on Linux the descriptor is released even then.
    static func closeFD(_ fd: Int32) {
        _ = close(fd)
    }

    static func isSocket(_ fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFSOCK
    }

    static func setCloseOnExec(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFD)
        if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// A pipe used only to wake a thread blocked in poll(2). Both ends non-blocking and
    /// close-on-exec, so a child process never inherits it.
    static func makeWakePipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SystemCallError("pipe", errno: errno) }
        for fd in fds {
            setCloseOnExec(fd)
            setNonBlocking(fd)
        }
        return (fds[0], fds[1])
    }

    /// Writes every byte, retrying partial writes and EINTR, and waiting out EAGAIN on a
    /// descriptor someone else made non-blocking. Returns the errno on failure.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], isSocket: Bool) -> Int32? {
        bytes.withUnsafeBytes { buffer -> Int32? in
            guard let base = buffer.baseAddress else { return nil }
            var offset = 0
            while offset < buffer.count {
                let remaining = buffer.count - offset
                let written: Int
                #if os(Linux)
                if isSocket {
                    written = send(fd, base + offset, remaining, Int32(MSG_NOSIGNAL))
                } else {
                    written = write(fd, base + offset, remaining)
                }
                #else
                written = write(fd, base + offset, remaining)
                #endif
                if written > 0 {
                    offset += written
                    continue
                }
                let code = written < 0 ? errno : EIO
                switch code {
                case EINTR:
                    continue
                case EAGAIN, EWOULDBLOCK:
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, -1)
                default:
                    return code
                }
            }
            return nil
        }
    }
}
