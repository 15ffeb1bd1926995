import Foundation
import Store

/// How a caller should react to an error, as Mesa's SDKs classify them.
public enum ErrorClass: String, Sendable, Codable {
    /// A retry may succeed (a lost compare-and-swap race, a backend outage).
    case transient
    /// Arguments, credentials or state must change first.
    case badInput = "bad-input"
    /// A bug in mesad or a broken data directory.
    case fatal
}

/// The one error shape every layer above the store speaks. JSON-RPC errors, HTTP
/// statuses and FUSE errnos are all derived from it.
public struct MesaError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, Codable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let invalidParams = Code(rawValue: -32602)
        public static let `internal` = Code(rawValue: -32603)
        public static let notFound = Code(rawValue: -32001)
        public static let alreadyExists = Code(rawValue: -32002)
        public static let conflict = Code(rawValue: -32003)
        public static let mergeConflict = Code(rawValue: -32004)
        public static let unauthenticated = Code(rawValue: -32005)
        public static let keyExpired = Code(rawValue: -32006)
        public static let keyRevoked = Code(rawValue: -32007)
        public static let forbidden = Code(rawValue: -32008)
        public static let readOnly = Code(rawValue: -32009)
        public static let unavailable = Code(rawValue: -32010)
    }

    public var code: Code
    public var message: String
    public var errorClass: ErrorClass
    /// The errno a filesystem caller sees for this error.
    public var errno: Int32?
    /// Paths involved (merge conflicts).
    public var paths: [String]

    public init(_ code: Code, _ message: String, errorClass: ErrorClass? = nil, errno: Int32? = nil, paths: [String] = []) {
        self.code = code
        self.message = message
        self.errorClass = errorClass ?? Self.defaultClass(code)
        self.errno = errno ?? Self.defaultErrno(code)
        self.paths = paths
    }

    public var description: String { message }

    /// The code's name as used in protocol.md and REST error envelopes.
    public var name: String {
        switch code {
        case .invalidParams: "INVALID_ARGUMENT"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .conflict: "CONFLICT"
        case .mergeConflict: "MERGE_CONFLICT"
        case .unauthenticated: "UNAUTHENTICATED"
        case .keyExpired: "KEY_EXPIRED"
        case .keyRevoked: "KEY_REVOKED"
        case .forbidden: "FORBIDDEN"
        case .readOnly: "READ_ONLY"
        case .unavailable: "UNAVAILABLE"
        default: "INTERNAL"
        }
    }

    /// The HTTP status of this error in the REST API.
    public var httpStatus: Int {
        switch code {
        case .invalidParams: 400
        case .unauthenticated, .keyExpired, .keyRevoked: 401
        case .forbidden, .readOnly: 403
        case .notFound: 404
        case .alreadyExists, .conflict, .mergeConflict: 409
        case .unavailable: 503
        default: 500
        }
    }

    static func defaultClass(_ code: Code) -> ErrorClass {
        switch code {
        case .conflict, .unavailable: .transient
        case .internal: .fatal
        default: .badInput
        }
    }

    static func defaultErrno(_ code: Code) -> Int32? {
        switch code {
        case .invalidParams: EINVAL
        case .notFound: ENOENT
        case .alreadyExists: EEXIST
        case .conflict: EAGAIN
        case .mergeConflict: EBUSY
        case .unauthenticated, .keyExpired, .keyRevoked, .forbidden: EACCES
        case .readOnly: EROFS
        case .unavailable: EHOSTUNREACH
        default: EIO
        }
    }

    public static func invalid(_ message: String) -> MesaError { MesaError(.invalidParams, message) }
    public static func notFound(_ message: String) -> MesaError { MesaError(.notFound, message) }
    public static func `internal`(_ message: String) -> MesaError { MesaError(.internal, message) }
}

extension MesaError {
    /// Maps the store's error codes onto Mesa's.
    public init(_ error: StoreError) {
        let code: Code
        switch error.code {
        case .invalidArgument: code = .invalidParams
        case .notFound: code = .notFound
        case .alreadyExists: code = .alreadyExists
        case .conflict: code = .conflict
        case .mergeConflict: code = .mergeConflict
        case .unauthenticated: code = .unauthenticated
        case .keyExpired: code = .keyExpired
        case .keyRevoked: code = .keyRevoked
        case .forbidden: code = .forbidden
        case .internal: code = .internal
        }
        self.init(code, error.message, paths: error.paths)
    }

    /// Any error as a MesaError; unknown errors are our bug (`fatal`).
    public static func from(_ error: any Error) -> MesaError {
        if let error = error as? MesaError { return error }
        if let error = error as? StoreError { return MesaError(error) }
        return MesaError(.internal, "internal error: \(error)")
    }
}

/// Runs `body`, converting every thrown error into a `MesaError`.
@inlinable
public func mesaErrors<T>(_ body: () throws -> T) throws(MesaError) -> T {
    do { return try body() } catch { throw MesaError.from(error) }
}
