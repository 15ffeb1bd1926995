/// Something that can send notifications to the peer. `Connection` is one; tests and
/// in-process callers can supply their own.
public protocol NotificationSender: Sendable {
    /// Sends a notification whose `params` are already encoded. Returns false when it
    /// could not be sent (the connection is closed); notifications are best-effort.
    @discardableResult
    func sendNotification(method: String, encodedParams: EncodedJSON?) -> Bool
}

extension NotificationSender {
    @discardableResult
    public func sendNotification(method: String, params: JSONValue? = nil) -> Bool {
        sendNotification(method: method, encodedParams: params.map(EncodedJSON.init))
    }

    /// Sends typed parameters. Returns false if they fail to encode or the peer is gone.
    @discardableResult
    public func sendNotification(method: String, params: some Encodable & Sendable) -> Bool {
        guard let encoded = try? EncodedJSON(encoding: params) else { return false }
        return sendNotification(method: method, encodedParams: encoded)
    }

    /// `$/progress` with an LSP token and value (`WorkDoneProgress` or any JSON).
    @discardableResult
    public func sendProgress(token: ProgressToken, value: some Encodable & Sendable) -> Bool {
        sendNotification(method: "$/progress", params: ProgressParams(token: token, value: value))
    }

    /// `window/logMessage`: a message the client may show or log.
    @discardableResult
    public func logMessage(_ type: MessageType, _ message: String) -> Bool {
        sendNotification(method: "window/logMessage", params: LogMessageParams(type: type, message: message))
    }
}

/// LSP progress token: chosen by whoever starts the work, an integer or a string.
public typealias ProgressToken = RequestID

public struct ProgressParams<Value: Encodable & Sendable>: Encodable, Sendable {
    public let token: ProgressToken
    public let value: Value
}

/// LSP's work-done progress values: one `begin`, any number of `report`, one `end`.
public enum WorkDoneProgress: Codable, Sendable, Hashable {
    case begin(title: String, message: String? = nil, percentage: Int? = nil, cancellable: Bool? = nil)
    case report(message: String? = nil, percentage: Int? = nil, cancellable: Bool? = nil)
    case end(message: String? = nil)

    private enum CodingKeys: String, CodingKey { case kind, title, message, percentage, cancellable }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .begin(let title, let message, let percentage, let cancellable):
            try container.encode("begin", forKey: .kind)
            try container.encode(title, forKey: .title)
            try container.encodeIfPresent(message, forKey: .message)
            try container.encodeIfPresent(percentage, forKey: .percentage)
            try container.encodeIfPresent(cancellable, forKey: .cancellable)
        case .report(let message, let percentage, let cancellable):
            try container.encode("report", forKey: .kind)
            try container.encodeIfPresent(message, forKey: .message)
            try container.encodeIfPresent(percentage, forKey: .percentage)
            try container.encodeIfPresent(cancellable, forKey: .cancellable)
        case .end(let message):
            try container.encode("end", forKey: .kind)
            try container.encodeIfPresent(message, forKey: .message)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let message = try container.decodeIfPresent(String.self, forKey: .message)
        let percentage = try container.decodeIfPresent(Int.self, forKey: .percentage)
        let cancellable = try container.decodeIfPresent(Bool.self, forKey: .cancellable)
        switch try container.decode(String.self, forKey: .kind) {
        case "begin":
            self = .begin(
                title: try container.decode(String.self, forKey: .title), message: message,
                percentage: percentage, cancellable: cancellable)
        case "report":
            self = .report(message: message, percentage: percentage, cancellable: cancellable)
        case "end":
            self = .end(message: message)
        case let kind:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container,
                debugDescription: "unknown progress kind '\(kind)'; expected begin, report or end")
        }
    }
}

/// `window/logMessage` severity, numbered as in LSP.
public enum MessageType: Int, Codable, Sendable, Hashable {
    case error = 1
    case warning = 2
    case info = 3
    case log = 4
}

public struct LogMessageParams: Codable, Sendable, Hashable {
    public var type: MessageType
    public var message: String

    public init(type: MessageType, message: String) {
        self.type = type
        self.message = message
    }
}

/// `$/cancelRequest` parameters.
public struct CancelParams: Codable, Sendable, Hashable {
    public var id: RequestID

    public init(id: RequestID) { self.id = id }
}
