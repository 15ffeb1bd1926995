import NIOCore

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
        var credentials = UCred()
        var length = socklen_t(MemoryLayout<UCred>.size)
        let result = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length)
        guard result == 0, length == socklen_t(MemoryLayout<UCred>.size) else { return nil }
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        #else
        return nil
        #endif
    }

    /// The same for a channel NIO accepted; nil if the option cannot be read.
    static func of(channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        #if os(Linux)
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let credentials: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        return credentials.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
            .recover { _ in nil }
        #else
        return channel.eventLoop.makeSucceededFuture(nil)
        #endif
    }
}

#if os(Linux)
/// `struct ucred` is hidden behind _GNU_SOURCE in Swift's Glibc module; this struct
/// has the same layout (pid_t, uid_t, gid_t: three 32-bit fields).
private struct UCred: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
#endif

/// Low-level descriptor helpers shared by `Connection` and `UnixSocketListener`.
enum Descriptors {
    /// A peer that closes its end must not kill the daemon with SIGPIPE: ignore it once,
    /// process-wide (stdout may be a pipe).
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

    /// A close-on-exec duplicate, for handing a descriptor we do not own to a channel
    /// that closes what it is given.
    static func duplicate(_ fd: Int32) throws(SystemCallError) -> Int32 {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw SystemCallError("dup", errno: errno) }
        return copy
    }
}
