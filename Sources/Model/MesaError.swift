import Foundation

/// How a caller should react to an error, the three classes Mesa's SDKs use.
public enum ErrorClass: String, Sendable, Hashable, Codable, CaseIterable {
    /// Retrying later may succeed (a backend outage, a lost compare-and-swap race).
    case transient
    /// The request itself is wrong: arguments, credentials or state must change first.
    case badInput = "bad-input"
    /// A bug or a broken data directory; a human must look.
    case fatal
}

/// The one error of every layer, from the store to the wire. Each projection of its
/// `code` (class, errno, JSON-RPC code, HTTP status) is derived below, in one switch each.
public struct MesaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure; the raw value is its name in protocol.md and REST envelopes.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// Arguments are malformed or not allowed (bad names, paths, scopes, ranges).
        case invalidArgument = "INVALID_ARGUMENT"
        case notFound = "NOT_FOUND"
        case alreadyExists = "ALREADY_EXISTS"
        /// A compare-and-swap lost a race; re-read and retry.
        case conflict = "CONFLICT"
        /// A merge or patch met textual conflicts; `paths` lists them.
        case mergeConflict = "MERGE_CONFLICT"
        case unauthenticated = "UNAUTHENTICATED"
        case keyExpired = "KEY_EXPIRED"
        case keyRevoked = "KEY_REVOKED"
        case forbidden = "FORBIDDEN"
        case readOnly = "READ_ONLY"
        /// The backend cannot answer now (network, server overload).
        case unavailable = "UNAVAILABLE"
        /// A disk (the mount's journal, the blob cache, the store) is full or over quota.
        case noSpace = "NO_SPACE"
        /// A bug or a broken data directory: not fixable by the caller.
        case `internal` = "INTERNAL"
    }

    public var code: Code
    public var message: String
    /// Paths involved, e.g. the conflicting paths of a merge.
    public var paths: [String]
    /// The errno a filesystem caller sees: the code's unless the call knew a more precise one.
    public var errno: Int32

    public init(_ code: Code, _ message: String, errno: Int32? = nil, paths: [String] = []) {
        self.code = code
        self.message = message
        self.errno = errno ?? Self.errno(code)
        self.paths = paths
    }

    public var description: String { message }

    /// The code's name as used in protocol.md, JSON-RPC `data.code` and REST envelopes.
    public var name: String { code.rawValue }

    public var errorClass: ErrorClass {
        switch code {
        case .conflict, .unavailable, .noSpace: .transient
        case .internal: .fatal
        default: .badInput
        }
    }

    static func errno(_ code: Code) -> Int32 {
        switch code {
        case .invalidArgument: EINVAL
        case .notFound: ENOENT
        case .alreadyExists: EEXIST
        case .conflict: EAGAIN
        case .mergeConflict: EBUSY
        case .unauthenticated, .keyExpired, .keyRevoked, .forbidden: EACCES
        case .readOnly: EROFS
        case .unavailable: EHOSTUNREACH
        case .noSpace: ENOSPC
        case .internal: EIO
        }
    }

    /// The JSON-RPC error code (protocol.md).
    public var rpcCode: Int {
        switch code {
        case .invalidArgument: -32602
        case .internal: -32603
        case .notFound: -32001
        case .alreadyExists: -32002
        case .conflict: -32003
        case .mergeConflict: -32004
        case .unauthenticated: -32005
        case .keyExpired: -32006
        case .keyRevoked: -32007
        case .forbidden: -32008
        case .readOnly: -32009
        case .unavailable: -32010
        case .noSpace: -32011
        }
    }

    /// The HTTP status of this error in the REST API.
    public var httpStatus: Int {
        switch code {
        case .invalidArgument: 400
        case .unauthenticated, .keyExpired, .keyRevoked: 401
        case .forbidden, .readOnly: 403
        case .notFound: 404
        case .alreadyExists, .conflict, .mergeConflict: 409
        case .unavailable: 503
        case .noSpace: 507
        case .internal: 500
        }
    }

    public static func invalid(_ message: String) -> MesaError { MesaError(.invalidArgument, message) }
    public static func notFound(_ message: String) -> MesaError { MesaError(.notFound, message) }
    public static func `internal`(_ message: String) -> MesaError { MesaError(.internal, message) }

    /// Any error as a MesaError; unknown errors are our bug (`fatal`).
    public static func from(_ error: any Error) -> MesaError {
        if let error = error as? MesaError { return error }
        return MesaError(.internal, "internal error: \(error)")
    }
}

/// Runs `body`, converting every thrown error into a `MesaError`.
@inlinable
public func mesaErrors<T>(_ body: () throws -> T) throws(MesaError) -> T {
    do { return try body() } catch { throw MesaError.from(error) }
}
