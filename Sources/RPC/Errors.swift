import Model

/// A JSON-RPC error code. A struct rather than an enum so that codes this module does
/// not know (application codes, a peer's private codes) still decode and round-trip.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }
    public init(_ rawValue: Int) { self.rawValue = rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(Int.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { String(rawValue) }

    /// Invalid JSON was received (or the frame around it could not be read).
    public static let parseError = ErrorCode(-32700)
    /// The JSON is not a valid request object.
    public static let invalidRequest = ErrorCode(-32600)
    public static let methodNotFound = ErrorCode(-32601)
    public static let invalidParams = ErrorCode(-32602)
    public static let internalError = ErrorCode(-32603)
    /// LSP's code for a request the client cancelled with `$/cancelRequest`.
    public static let requestCancelled = ErrorCode(-32800)
}

/// A JSON-RPC error object. `data` is always an object carrying `errorClass` and,
/// where one applies, `errno`; callers may add more members.
public struct ResponseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// The `data` member. Kept raw: errors decoded from a peer may carry anything.
    public var data: JSONValue?

    /// Builds an error whose `data` carries `errorClass`, `errno` if given, and any
    /// extra members (which cannot override the first two).
    public init(
        code: ErrorCode, message: String, errorClass: ErrorClass, errno: Int32? = nil,
        extra: [String: JSONValue] = [:]
    ) {
        self.code = code
        self.message = message
        var data = extra
        data["errorClass"] = .string(errorClass.rawValue)
        if let errno { data["errno"] = .int(Int(errno)) }
        self.data = .object(data)
    }

    /// Builds an error with an arbitrary `data` member, as decoded from a peer.
    public init(code: ErrorCode, message: String, data: JSONValue?) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var errorClass: ErrorClass? {
        data?["errorClass"]?.stringValue.flatMap(ErrorClass.init(rawValue:))
    }

    public var errno: Int32? {
        data?["errno"]?.intValue.flatMap(Int32.init(exactly:))
    }

    public var description: String { "error \(code.rawValue): \(message)" }

    public static func parseError(_ message: String) -> ResponseError {
        ResponseError(code: .parseError, message: message, errorClass: .badInput)
    }

    public static func invalidRequest(_ message: String) -> ResponseError {
        ResponseError(code: .invalidRequest, message: message, errorClass: .badInput)
    }

    public static func methodNotFound(_ method: String) -> ResponseError {
        ResponseError(
            code: .methodNotFound,
            message: "method '\(method)' not found; `initialize` lists the methods this server supports",
            errorClass: .badInput)
    }

    public static func invalidParams(_ message: String, field: String? = nil) -> ResponseError {
        ResponseError(
            code: .invalidParams, message: message, errorClass: .badInput,
            extra: field.map { ["field": .string($0)] } ?? [:])
    }

    public static func internalError(_ message: String) -> ResponseError {
        ResponseError(code: .internalError, message: message, errorClass: .fatal)
    }

    public static func cancelled(_ message: String = "request cancelled") -> ResponseError {
        // Transient: the work was stopped on the client's own request; sending it again
        // would run it.
        ResponseError(code: .requestCancelled, message: message, errorClass: .transient)
    }
}

extension ResponseError: Codable {
    private enum CodingKeys: String, CodingKey { case code, message, data }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        code = try container.decode(ErrorCode.self, forKey: .code)
        message = try container.decode(String.self, forKey: .message)
        data = try container.decodeIfPresent(JSONValue.self, forKey: .data)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
        try container.encodeIfPresent(data, forKey: .data)
    }
}

/// Errors a handler throws that carry their own JSON-RPC code, class and errno
/// instead of becoming a generic internal error.
public protocol ResponseErrorConvertible: Error {
    var responseError: ResponseError { get }
}

extension ResponseError: ResponseErrorConvertible {
    public var responseError: ResponseError { self }
}

/// A MesaError answers with its JSON-RPC code, class, errno, name (`data.code`) and paths.
extension MesaError: ResponseErrorConvertible {
    public var responseError: ResponseError {
        var extra: [String: JSONValue] = ["code": .string(name)]
        if !paths.isEmpty { extra["paths"] = .array(paths.map { .string($0) }) }
        return ResponseError(code: ErrorCode(rpcCode), message: message, errorClass: errorClass, errno: errno, extra: extra)
    }
}

/// Thrown by client-side calls when the connection closed before the answer came.
public struct ConnectionClosedError: Error, Sendable, CustomStringConvertible {
    public let reason: CloseReason
    public var description: String { "connection closed before a response arrived (\(reason))" }
}
