import Foundation
import MesaAPI
import Model

/// The filesystem's one error type: every failure carries the errno the kernel gets,
/// plus a message for logs and RPC callers (the kernel only ever sees the number).
public struct FSError: Error, Sendable, Equatable, CustomStringConvertible {
    public let errno: Int32
    public let message: String
    /// The backend's error behind this one, so RPC callers get its code (KEY_REVOKED…)
    /// rather than a generic one derived from the errno.
    public let cause: MesaError?

    public init(_ errno: Int32, _ message: String) {
        self.errno = errno
        self.message = message
        cause = nil
    }

    private init(_ errno: Int32, _ message: String, cause: MesaError) {
        self.errno = errno
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(message) (errno \(errno))" }

    /// Sentinel: the answer needs a backend round trip and the caller asked not to
    /// block. The FUSE adapter catches it and retries the call on a worker queue, so
    /// cached answers never leave the libfuse thread and slow ones never pin it.
    static let wouldBlockErrno: Int32 = -1
    static let wouldBlock = FSError(wouldBlockErrno, "needs a backend fetch")
    public var isWouldBlock: Bool { errno == Self.wouldBlockErrno }

    static func noEntry(_ what: String) -> FSError { FSError(ENOENT, "\(what): no such file or directory") }
    static func exists(_ what: String) -> FSError { FSError(EEXIST, "\(what): already exists") }
    static func notDirectory(_ what: String) -> FSError { FSError(ENOTDIR, "\(what): not a directory") }
    static func isDirectory(_ what: String) -> FSError { FSError(EISDIR, "\(what): is a directory") }
    static func notEmpty(_ what: String) -> FSError { FSError(ENOTEMPTY, "\(what): directory not empty") }
    static let readOnly = FSError(EROFS, "this mount is read-only (mode \"ro\" or a key without the write scope)")
    static func badHandle(_ fh: UInt64) -> FSError { FSError(EBADF, "unknown file handle \(fh)") }
    static func invalid(_ message: String) -> FSError { FSError(EINVAL, message) }

    /// The errno of the current C `errno`, with what was attempted.
    static func posix(_ what: String, _ code: Int32 = Foundation.errno) -> FSError {
        FSError(code, "\(what): \(String(cString: strerror(code)))")
    }

    /// Backend failures become errnos the tools understand: a missing path is ENOENT,
    /// an outage EIO (the kernel has no better word for "try again later").
    init(_ error: MesaError) {
        switch error.code {
        case .notFound: self.init(ENOENT, error.message, cause: error)
        case .unavailable: self.init(EIO, "backend unavailable: \(error.message)", cause: error)
        default: self.init(error.errno, error.message, cause: error)
        }
    }

    static func from(_ error: any Error) -> FSError {
        if let error = error as? FSError { return error }
        return FSError(MesaError.from(error))
    }
}

/// Runs `body`, converting any error into an `FSError`.
@inline(__always)
func fsErrors<T>(_ body: () throws -> T) throws(FSError) -> T {
    do { return try body() } catch { throw FSError.from(error) }
}

extension FSError {
    /// The same failure as the RPC layer reports it.
    public var mesaError: MesaError {
        if let cause { return cause }
        return switch errno {
        case ENOENT: MesaError(.notFound, message, errno: errno)
        case EEXIST: MesaError(.alreadyExists, message, errno: errno)
        case EROFS: MesaError(.readOnly, message, errno: errno)
        case EBUSY, EAGAIN: MesaError(.conflict, message, errno: errno)
        case EIO: MesaError(.unavailable, message, errno: errno)
        case ENOSPC, EDQUOT: MesaError(.noSpace, message, errno: errno)
        case EACCES, EPERM: MesaError(.forbidden, message, errno: errno)
        case EINVAL, ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG: MesaError(.invalidArgument, message, errno: errno)
        default: MesaError(.internal, message, errno: errno)
        }
    }
}
