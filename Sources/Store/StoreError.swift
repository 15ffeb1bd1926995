/// The one error type of the store. Every refusal says what was wrong; callers map
/// `code` to JSON-RPC errors, HTTP statuses or errnos in their own layer.
public struct StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Arguments are malformed or not allowed (bad names, paths, scopes, ranges).
        case invalidArgument = "invalid_argument"
        case notFound = "not_found"
        case alreadyExists = "already_exists"
        /// A compare-and-swap lost a race; re-read and retry.
        case conflict
        /// A merge or patch met textual conflicts; `paths` lists them.
        case mergeConflict = "merge_conflict"
        case unauthenticated
        case keyExpired = "key_expired"
        case keyRevoked = "key_revoked"
        case forbidden
        /// A bug or a broken data directory: not fixable by the caller.
        case `internal`
    }

    public let code: Code
    public let message: String
    /// Paths involved, e.g. the conflicting paths of a merge.
    public var paths: [String]

    public init(_ code: Code, _ message: String, paths: [String] = []) {
        self.code = code
        self.message = message
        self.paths = paths
    }

    public var description: String { "\(code.rawValue): \(message)" }

    static func invalid(_ message: String) -> StoreError { StoreError(.invalidArgument, message) }
    static func notFound(_ message: String) -> StoreError { StoreError(.notFound, message) }
    static func `internal`(_ message: String) -> StoreError { StoreError(.internal, message) }
}

extension StringProtocol {
    /// The value as error messages and logs quote it: a long one is cut, so a 10 MB name
    /// sent by a client is not echoed back (or logged) whole.
    public var clipped: String {
        count <= 100 ? String(self) : "\(prefix(100))… (\(utf8.count) bytes)"
    }
}
