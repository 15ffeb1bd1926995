/// A request id: JSON-RPC allows a number or a string. Fractional numbers and null are
/// refused for requests (the spec discourages both, and both make replies ambiguous).
public enum RequestID: Hashable, Sendable, Codable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let int = try? container.decode(Int.self) {
            self = .int(int)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let i): try container.encode(i)
        case .string(let s): try container.encode(s)
        }
    }

    init?(json: JSONValue) {
        switch json {
        case .int(let i): self = .int(i)
        case .string(let s): self = .string(s)
        default: return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case .int(let i): .int(i)
        case .string(let s): .string(s)
        }
    }

    public var description: String {
        switch self {
        case .int(let i): String(i)
        case .string(let s): "\"\(s)\""
        }
    }
}

/// A request: has an id and must be answered exactly once.
public struct Request: Sendable, Hashable {
    public var id: RequestID
    public var method: String
    /// `nil` when the `params` member is absent; otherwise an array or object.
    public var params: JSONValue?

    public init(id: RequestID, method: String, params: JSONValue? = nil) {
        self.id = id
        self.method = method
        self.params = params
    }
}

/// A notification: no id, never answered, not even with an error.
public struct Notification: Sendable, Hashable {
    public var method: String
    public var params: JSONValue?

    public init(method: String, params: JSONValue? = nil) {
        self.method = method
        self.params = params
    }
}

/// A response to a request. `id` is nil only for errors about input whose id could not
/// be read (parse errors, invalid requests).
public struct Response: Sendable, Hashable {
    public var id: RequestID?
    public var result: Result<JSONValue, ResponseError>

    public init(id: RequestID?, result: Result<JSONValue, ResponseError>) {
        self.id = id
        self.result = result
    }
}

/// One JSON-RPC message.
public enum Message: Sendable, Hashable {
    case request(Request)
    case notification(Notification)
    case response(Response)
}

/// One element of what a frame contained: a valid message, or the error to answer an
/// invalid one with (`id` recovered when the input had a usable one).
public enum ParsedMessage: Sendable, Hashable {
    case message(Message)
    case invalid(id: RequestID?, error: ResponseError)
}

/// What a frame body decoded to.
public enum ParsedFrame: Sendable, Hashable {
    /// A single message (or an invalid one).
    case single(ParsedMessage)
    /// A batch. JSON-RPC answers it with one array holding the responses to its
    /// requests and invalid elements, or with nothing if it held only notifications.
    case batch([ParsedMessage])
    /// Input that gets one error response and nothing else: unparseable JSON, invalid
    /// UTF-8, or an empty batch.
    case unanswerable(ResponseError)
}

public enum MessageParser {
    /// Decodes a frame body. Never throws: every malformed input maps to the error
    /// response JSON-RPC prescribes for it.
    public static func parse(_ body: [UInt8]) -> ParsedFrame {
        let json: JSONValue
        do {
            json = try JSONParser.parse(body)
        } catch {
            switch error.kind {
            case .invalidUTF8:
                return .unanswerable(.parseError("message body is not valid UTF-8 (first bad byte at offset \(error.offset)); JSON-RPC messages must be UTF-8"))
            case .syntax, .tooDeep:
                return .unanswerable(.parseError("message body is not valid JSON: \(error)"))
            }
        }
        return classify(json)
    }

    public static func classify(_ json: JSONValue) -> ParsedFrame {
        if case .array(let elements) = json {
            if elements.isEmpty {
                return .unanswerable(.invalidRequest("empty batch: a batch must hold at least one message"))
            }
            return .batch(elements.map(classifyOne))
        }
        return .single(classifyOne(json))
    }

    public static func classifyOne(_ json: JSONValue) -> ParsedMessage {
        guard case .object(let object) = json else {
            return .invalid(id: nil, error: .invalidRequest("a message must be a JSON object, got \(json.typeName)"))
        }
        // Recover the id first so every later complaint can be addressed to it.
        let rawID = object["id"]
        let id = rawID.flatMap(RequestID.init(json:))

        guard object["jsonrpc"] == .string("2.0") else {
            return .invalid(id: id, error: .invalidRequest("member \"jsonrpc\" must be exactly \"2.0\""))
        }

        if let method = object["method"] {
            guard case .string(let name) = method else {
                return .invalid(id: id, error: .invalidRequest("member \"method\" must be a string, got \(method.typeName)"))
            }
            let params = object["params"]
            if let params {
                switch params {
                case .array, .object: break
                default:
                    return .invalid(id: id, error: .invalidRequest("member \"params\" must be an array or object, got \(params.typeName)"))
                }
            }
            guard let rawID else {
                return .message(.notification(Notification(method: name, params: params)))
            }
            guard let id else {
                return .invalid(id: nil, error: .invalidRequest("member \"id\" must be an integer or a string, got \(rawID.typeName)"))
            }
            return .message(.request(Request(id: id, method: name, params: params)))
        }

        if object["result"] != nil || object["error"] != nil {
            // A response: only meaningful to a side that sent requests.
            let responseID: RequestID?
            switch rawID {
            case .none, .some(.null): responseID = nil
            case .some(let raw):
                guard let id else {
                    return .invalid(id: nil, error: .invalidRequest("response id must be an integer, a string or null, got \(raw.typeName)"))
                }
                responseID = id
            }
            if let result = object["result"] {
                guard object["error"] == nil else {
                    return .invalid(id: responseID, error: .invalidRequest("a response must not carry both \"result\" and \"error\""))
                }
                return .message(.response(Response(id: responseID, result: .success(result))))
            }
            guard let errorJSON = object["error"], case .object(let error) = errorJSON,
                case .int(let code) = error["code"], case .string(let message) = error["message"]
            else {
                return .invalid(id: responseID, error: .invalidRequest("member \"error\" must be an object with an integer \"code\" and a string \"message\""))
            }
            let responseError = ResponseError(code: ErrorCode(code), message: message, data: error["data"])
            return .message(.response(Response(id: responseID, result: .failure(responseError))))
        }

        return .invalid(id: id, error: .invalidRequest("a message needs \"method\" (request or notification) or \"result\"/\"error\" (response)"))
    }
}

/// Serialises outgoing messages. Envelopes are assembled by hand around pre-encoded
/// `params`/`result` so a typed value is encoded once, and a result that fails to
/// encode can still be answered with an error instead of breaking a whole batch.
public enum MessageEncoder {
    public static func request(id: RequestID, method: String, params: EncodedJSON?) -> [UInt8] {
        var out = prefix
        // One allocation for the whole frame: a 1 MiB body is not copied on regrowth.
        out.reserveCapacity(64 + method.utf8.count + (params?.bytes.count ?? 0))
        out.append(contentsOf: #","id":"#.utf8)
        appendID(id, to: &out)
        appendMethodAndParams(method, params, to: &out)
        return out
    }

    public static func notification(method: String, params: EncodedJSON?) -> [UInt8] {
        var out = prefix
        appendMethodAndParams(method, params, to: &out)
        return out
    }

    public static func response(id: RequestID?, result: Result<EncodedJSON, ResponseError>) -> [UInt8] {
        var out = prefix
        if case .success(let value) = result { out.reserveCapacity(64 + value.bytes.count) }
        out.append(contentsOf: #","id":"#.utf8)
        if let id { appendID(id, to: &out) } else { out.append(contentsOf: "null".utf8) }
        switch result {
        case .success(let value):
            out.append(contentsOf: #","result":"#.utf8)
            out.append(contentsOf: value.bytes)
        case .failure(let error):
            out.append(contentsOf: #","error":"#.utf8)
            appendError(error, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Joins already-encoded messages into a batch array.
    public static func batch(_ messages: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (i, message) in messages.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: message)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    private static let prefix: [UInt8] = Array(#"{"jsonrpc":"2.0""#.utf8)

    private static func appendID(_ id: RequestID, to out: inout [UInt8]) {
        switch id {
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .string(let s): JSONSerializer.writeString(s, into: &out)
        }
    }

    private static func appendMethodAndParams(_ method: String, _ params: EncodedJSON?, to out: inout [UInt8]) {
        out.append(contentsOf: #","method":"#.utf8)
        JSONSerializer.writeString(method, into: &out)
        if let params {
            out.append(contentsOf: #","params":"#.utf8)
            out.append(contentsOf: params.bytes)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static func appendError(_ error: ResponseError, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"code":"#.utf8)
        out.append(contentsOf: String(error.code.rawValue).utf8)
        out.append(contentsOf: #","message":"#.utf8)
        JSONSerializer.writeString(error.message, into: &out)
        if let data = error.data {
            out.append(contentsOf: #","data":"#.utf8)
            JSONSerializer.write(data, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension EncodedJSON {
    /// The JSON text of a raw value.
    public init(_ value: JSONValue) {
        self.init(validJSON: value.serialized)
    }
}
