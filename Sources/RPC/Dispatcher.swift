import Logging
import Synchronization

/// One JSON-RPC method: its wire name and the types of its parameters and result.
/// Adding a method means adding one such type and registering a handler for it; the
/// compiler then checks what the handler returns.
public protocol RPCMethod {
    associatedtype Params: Decodable & Sendable
    associatedtype Result: Encodable & Sendable
    static var name: String { get }
}

/// Parameters of a method that takes none: accepts an absent `params`, `{}`, `[]` or
/// anything else, so clients that always send an empty object are not refused.
public struct NoParams: Codable, Sendable, Hashable {
    public init() {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode([String: JSONValue]())
    }
}

/// A result that is JSON `null` (for example LSP's `shutdown`).
public struct NullResult: Codable, Sendable, Hashable {
    public init() {}
    public init(from decoder: any Decoder) throws {}
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encodeNil()
    }
}

/// What a handler knows about the message it serves and where it came from.
public struct RequestContext: Sendable {
    /// Nil when the message is a notification (nobody awaits the result).
    public let id: RequestID?
    public let method: String
    public let connection: ConnectionInfo
    /// Sends notifications (progress, log messages) back to the same peer.
    public let peer: any NotificationSender
    public let logger: Logger

    public init(
        id: RequestID?, method: String, connection: ConnectionInfo, peer: any NotificationSender,
        logger: Logger
    ) {
        self.id = id
        self.method = method
        self.connection = connection
        self.peer = peer
        self.logger = logger
    }

    public var isNotification: Bool { id == nil }
}

/// Routes requests and notifications to handlers by method name.
///
/// Handlers run concurrently; each is an `async` function so it can await the backend
/// and honour `Task` cancellation (a `$/cancelRequest` cancels the handler's task).
/// A handler signals failure by throwing: a `ResponseErrorConvertible` keeps its code,
/// class and errno; `CancellationError` becomes −32800; anything else is −32603.
public final class Dispatcher: Sendable {
    public typealias RawHandler = @Sendable (JSONValue?, RequestContext) async throws -> EncodedJSON

    private let handlers = Mutex<[String: RawHandler]>([:])

    public init() {}

    /// Registers the handler of a typed method. Parameters that do not decode are
    /// answered with −32602 naming the offending field; the handler never sees them.
    public func register<M: RPCMethod>(
        _ method: M.Type,
        _ handler: @escaping @Sendable (M.Params, RequestContext) async throws -> M.Result
    ) {
        let name = M.name
        register(name: name) { params, context in
            let typed: M.Params
            do {
                // An absent `params` decodes like `{}`, so all-optional structs work
                // without the client sending an empty object.
                typed = try (params ?? .object([:])).decode(M.Params.self)
            } catch let error as DecodingError {
                throw Self.invalidParams(error, method: name)
            }
            let result = try await handler(typed, context)
            do {
                return try EncodedJSON(encoding: result)
            } catch {
                throw ResponseError.internalError("could not encode the result of '\(name)': \(error)")
            }
        }
    }

    /// Registers an untyped handler working on raw JSON.
    public func register(
        method: String,
        _ handler: @escaping @Sendable (JSONValue?, RequestContext) async throws -> JSONValue
    ) {
        register(name: method) { params, context in
            EncodedJSON(try await handler(params, context))
        }
    }

    /// Registers a handler for a method meant to be sent as a notification (a
    /// `$/progress` listener on the client side, `initialized`, `exit`). Sent as a
    /// request it is answered with `null`.
    public func registerNotification(
        method: String,
        _ handler: @escaping @Sendable (JSONValue?, RequestContext) async -> Void
    ) {
        register(name: method) { params, context in
            await handler(params, context)
            return .null
        }
    }

    /// Registers a handler at the lowest level. Registering a name twice is a
    /// programming error (two modules claiming one method), caught at start-up.
    public func register(name: String, handler: @escaping RawHandler) {
        handlers.withLock { handlers in
            precondition(handlers[name] == nil, "JSON-RPC method '\(name)' registered twice")
            handlers[name] = handler
        }
    }

    /// Every registered method name, sorted: the server's capabilities, and the list a
    /// documentation test checks against protocol.md.
    public var methodNames: [String] {
        handlers.withLock { Array($0.keys) }.sorted()
    }

    public func handles(_ method: String) -> Bool {
        handlers.withLock { $0[method] != nil }
    }

    /// Runs the handler for one message and maps every outcome to a result or an error.
    /// Never throws, so a request always gets exactly one answer.
    public func dispatch(
        method: String, params: JSONValue?, context: RequestContext
    ) async -> Result<EncodedJSON, ResponseError> {
        guard let handler = handlers.withLock({ $0[method] }) else {
            return .failure(.methodNotFound(method))
        }
        do {
            return .success(try await handler(params, context))
        } catch {
            return .failure(Self.responseError(for: error, method: method, logger: context.logger))
        }
    }

    static func responseError(for error: any Error, method: String, logger: Logger) -> ResponseError {
        if error is CancellationError {
            return .cancelled("request for '\(method)' was cancelled")
        }
        if let convertible = error as? any ResponseErrorConvertible {
            return convertible.responseError
        }
        if Task.isCancelled {
            // The handler reacted to cancellation with an error of its own.
            return .cancelled("request for '\(method)' was cancelled")
        }
        // A handler let an unclassified error escape: that is our bug, not bad input.
        logger.critical("handler for '\(method)' threw an unclassified error: \(error)")
        return .internalError("internal error in '\(method)': \(error)")
    }

    /// Turns a decoding failure into a message naming the field, e.g.
    /// "invalid params for 'createRepo': field 'params.name' must be a string".
    static func invalidParams(_ error: DecodingError, method: String) -> ResponseError {
        let prefix = "invalid params for '\(method)'"
        switch error {
        case .typeMismatch(let type, let context):
            let field = fieldPath(context.codingPath)
            return .invalidParams(
                "\(prefix): field '\(field)' must be \(jsonTypeName(type))\(found(context))", field: field)
        case .valueNotFound(let type, let context):
            let field = fieldPath(context.codingPath)
            return .invalidParams(
                "\(prefix): field '\(field)' is null but must be \(jsonTypeName(type))", field: field)
        case .keyNotFound(let key, let context):
            let field = fieldPath(context.codingPath + [key])
            return .invalidParams("\(prefix): required field '\(field)' is missing", field: field)
        case .dataCorrupted(let context):
            let field = fieldPath(context.codingPath)
            return .invalidParams(
                "\(prefix): field '\(field)' is invalid: \(context.debugDescription)", field: field)
        @unknown default:
            return .invalidParams("\(prefix): \(error)")
        }
    }

    /// The "found …" part of our decoder's description, if it has one.
    private static func found(_ context: DecodingError.Context) -> String {
        guard let range = context.debugDescription.range(of: ", found ") else { return "" }
        return " (found " + context.debugDescription[range.upperBound...] + ")"
    }

    static func fieldPath(_ path: [any CodingKey]) -> String {
        var result = "params"
        for key in path {
            // Array positions are named "Index N" (ours and Foundation's); an object key
            // that merely looks numeric stays a key.
            if let index = key.intValue, key.stringValue.hasPrefix("Index ") {
                result += "[\(index)]"
            } else {
                result += ".\(key.stringValue)"
            }
        }
        return result
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Substring.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int8.Type, is Int16.Type, is Int32.Type, is Int64.Type,
            is UInt.Type, is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
            return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Dictionary") || name.hasPrefix("[String") { return "an object" }
            if name.hasPrefix("Array") || name.hasPrefix("[") { return "an array" }
            return "a valid \(name)"
        }
    }
}
