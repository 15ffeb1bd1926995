import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import MesaAPI
import Model
import NIOCore
import NIOPosix
import Store
import StoreBackend

/// mesa-server's HTTP face: the Mesa REST API (`/v1`, API-key era) over the store.
/// Every call authenticates its bearer key and goes through `LocalBackend`, so scope
/// checks (403) and invisible repos (404) are decided in one place.
public struct APIServer: Sendable {
    public let store: Store
    public let logger: Logger
    public let limits: Limits
    /// Body bytes reserved by the requests under way (`Limits.maxInFlightBodyBytes`).
    let bodyBudget: BodyBudget
    let connections = ConnectionCount()
    /// Woken after every successful write, so events go out at once, not at its next poll.
    public let webhooks: WebhookDeliverer?

    public init(store: Store, logger: Logger = Logger(label: "mesa-server"), limits: Limits = Limits(),
                webhooks: WebhookDeliverer? = nil) {
        self.store = store
        self.logger = logger
        self.limits = limits
        self.webhooks = webhooks
        bodyBudget = BodyBudget(capacity: limits.maxInFlightBodyBytes)
    }

    /// The application listening on `host:port` (port 0: any free port), with the
    /// connection limit and the connection guard's timeouts.
    public func application(host: String = "127.0.0.1", port: Int = 8420) -> some ApplicationProtocol {
        let limits = self.limits, connections = self.connections
        return Application(
            router: router(),
            server: HTTPServerBuilder { responder in
                GuardedHTTP1Channel(http1: HTTP1Channel(responder: responder), limits: limits, connections: connections)
            },
            configuration: .init(address: .hostname(host, port: port), serverName: "mesa-server"),
            logger: logger)
    }

    // MARK: Plumbing

    /// A handler body: runs off the event loop with an authenticated backend.
    typealias Body = @Sendable (LocalBackend, Call) throws -> any Encodable

    /// What a handler sees of its request.
    struct Call: Sendable {
        let parameters: [String: String]
        let query: [String: String]
        let body: ByteBuffer
        /// The `Accept` header, lower-cased ("" when absent).
        var accept: String = ""

        func param(_ name: String) -> String { parameters[name] ?? "" }

        /// True when the client asked for `mediaType` (e.g. `application/octet-stream`)
        /// explicitly; `*/*` and JSON keep the JSON answer.
        func accepts(_ mediaType: String) -> Bool {
            accept.split(separator: ",").contains { $0.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) == mediaType }
        }

        /// A required query parameter.
        func required(_ name: String) throws(MesaError) -> String {
            guard let value = query[name], !value.isEmpty else { throw .invalid("missing required query parameter '\(name)'") }
            return value
        }

        func limit() throws(MesaError) -> Int? {
            guard let text = query["limit"] else { return nil }
            guard let value = Int(text), (1...100).contains(value) else {
                throw .invalid("'limit' must be an integer from 1 to 100, got '\(text.prefix(20))'")
            }
            return value
        }

        func decode<T: Decodable>(_ type: T.Type) throws(MesaError) -> T {
            guard body.readableBytes > 0 else { throw .invalid("a JSON request body is required") }
            do {
                return try RESTCoding.decoder().decode(T.self, from: Data(body.readableBytesView))
            } catch let error as DecodingError {
                if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
                   let (field, number) = NumberProbe.firstNonInteger(in: body.readableBytesView) {
                    throw .invalid("invalid JSON body: '\(field)' must be a whole number that fits in 64 bits, got \(number.clipped)")
                }
                throw .invalid("invalid JSON body: \(Self.describe(error))")
            } catch {
                throw .invalid("invalid JSON body: \(error)")
            }
        }

        static func describe(_ error: DecodingError) -> String {
            func path(_ context: DecodingError.Context) -> String {
                let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                return keys.isEmpty ? "body" : "'" + keys.joined(separator: ".") + "'"
            }
            switch error {
            case .dataCorrupted(let context) where !context.codingPath.isEmpty:
                return "\(path(context)): \(context.debugDescription)"
            case .dataCorrupted:
                return "the body is not valid JSON"
            case .keyNotFound(let key, let context):
                return "missing required field '\(key.stringValue)'" + (context.codingPath.isEmpty ? "" : " in \(path(context))")
            case .typeMismatch(let type, let context):
                return "\(path(context)) has the wrong type; expected \(type)"
            case .valueNotFound(let type, let context):
                return "\(path(context)) must not be null; expected \(type)"
            @unknown default:
                return "\(error)"
            }
        }
    }

    static func json(_ value: any Encodable, status: HTTPResponse.Status) -> Response {
        let data = (try? RESTCoding.encoder().encode(value)) ?? Data(#"{"error":{"code":"INTERNAL","message":"encoding failed"}}"#.utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ error: MesaError) -> Response {
        json(RESTErrorEnvelope(error), status: .init(code: error.httpStatus))
    }

    static func envelope(_ status: Int, _ code: String, _ message: String) -> Response {
        json(RESTErrorEnvelope(code: code, message: message), status: .init(code: status))
    }

    /// Authenticates, collects the body, runs `body` on the thread pool and renders
    /// the result or the error envelope; logs one access line (never the key).
    func handle(_ request: Request, _ context: BasicRequestContext, status: HTTPResponse.Status = .ok,
                _ body: @escaping Body) async -> Response {
        let start = ContinuousClock.now
        let response = await respond(request, context, status: status, body)
        if request.method != .get, response.status.code < 300 { webhooks?.wake() }
        logAccess(request, response, since: start)
        return response
    }

    private func respond(_ request: Request, _ context: BasicRequestContext, status: HTTPResponse.Status,
                         _ body: @escaping Body) async -> Response {
        let secret: String
        switch Self.bearer(request) {
        case .success(let value): secret = value
        case .failure(let refusal): return Self.envelope(refusal.status, refusal.code, refusal.message)
        }
        let store = self.store
        // A request with a body is authenticated from its headers before any of the body
        // is read, and reserves its size first: unknown keys and floods cost no memory.
        var backend: LocalBackend?
        var buffer = ByteBuffer()
        var reserved = 0
        defer { if reserved > 0 { bodyBudget.release(reserved) } }
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if (declared ?? 0) > 0 || request.headers[.transferEncoding] != nil {
            do {
                backend = try await NIOThreadPool.singleton.runIfActive { try LocalBackend(store: store, secret: secret) }
            } catch {
                return render(error, request)
            }
            let limit = limits.maxBodyBytes
            if let declared, declared > limit { return Self.bodyTooLarge(limit) }
            let size = declared ?? limit
            guard bodyBudget.reserve(size) else {
                return Self.envelope(503, "UNAVAILABLE", "the server is receiving too many request bodies at once; retry shortly")
            }
            reserved = size
            do {
                buffer = try await request.body.collect(upTo: limit)
            } catch {
                return Self.bodyTooLarge(limit)
            }
        }
        let parameters = Self.parameters(context)
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let call = Call(parameters: parameters, query: query, body: buffer,
                        accept: request.headers[.accept]?.lowercased() ?? "")
        do {
            let value = try await NIOThreadPool.singleton.runIfActive { [backend] () throws -> SendableBox in
                SendableBox(try body(try backend ?? LocalBackend(store: store, secret: secret), call))
            }
            if let raw = value.value as? RawReply {
                var headers = HTTPFields()
                headers[.contentType] = raw.contentType
                if let etag = raw.etag { headers[.eTag] = "\"\(etag)\"" }
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: raw.bytes)))
            }
            return Self.json(value.value, status: status)
        } catch {
            return render(error, request)
        }
    }

    static func bodyTooLarge(_ limit: Int) -> Response {
        envelope(413, "PAYLOAD_TOO_LARGE", "request body exceeds the limit of \(limit) bytes")
    }

    /// The envelope of a failed call; server-side failures are logged.
    func render(_ error: any Error, _ request: Request) -> Response {
        switch error {
        case let error as NotImplemented:
            return Self.envelope(501, "NOT_IMPLEMENTED", "\(error.what) is not implemented by this mesa-server yet")
        case let error as HTTPRefusal:
            return Self.envelope(error.status, error.code, error.message)
        default:
            let mesa = MesaError.from(error)
            if mesa.httpStatus >= 500 {
                logger.error("request failed", metadata: ["path": "\(request.uri.path.clipped)", "error": "\(mesa.message)"])
            }
            return Self.error(mesa)
        }
    }

    /// The API key of an `Authorization: Bearer <key>` header, or the 401 refusal.
    static func bearer(_ request: Request) -> Result<String, HTTPRefusal> {
        guard let header = request.headers[.authorization] else {
            return .failure(HTTPRefusal(status: 401, code: "UNAUTHENTICATED", message: "missing 'Authorization: Bearer <API key>' header"))
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .failure(HTTPRefusal(status: 401, code: "UNAUTHENTICATED", message: "the Authorization header must be 'Bearer <API key>'"))
        }
        return .success(parts[1].trimmingCharacters(in: .whitespaces))
    }

    /// Route parameters, percent-decoded.
    static func parameters(_ context: BasicRequestContext) -> [String: String] {
        var parameters: [String: String] = [:]
        for (key, value) in context.parameters {
            let text = String(value)
            parameters[String(key)] = text.removingPercentEncoding ?? text
        }
        return parameters
    }

    /// Logs one access line (never the key).
    func logAccess(_ request: Request, _ response: Response, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info("request", metadata: ["method": "\(request.method.rawValue)", "path": "\(request.uri.path.clipped)",
                                          "status": "\(response.status.code)", "duration_ms": "\(String(format: "%.1f", ms))"])
    }

    /// A non-JSON answer (raw file bytes, a patch). Encodable only so it can travel
    /// through `Body`; `respond` writes its bytes as they are.
    struct RawReply: Encodable {
        let bytes: [UInt8]
        let contentType: String
        /// A strong validator: the git object id of the bytes.
        var etag: String?

        func encode(to encoder: any Encoder) throws {}
    }

    /// A refusal with an HTTP status no `MesaError` code maps to (406, 411, 401 before auth).
    struct HTTPRefusal: Error {
        let status: Int
        let code: String
        let message: String
    }

    /// Carries a result back from the thread pool (results are plain value types).
    struct SendableBox: @unchecked Sendable {
        let value: any Encodable
        init(_ value: any Encodable) { self.value = value }
    }

    static func changeID(_ text: String, field: String) throws(MesaError) -> ChangeID {
        do { return try ChangeID(text) } catch {
            throw .invalid("'\(field)' must be a 32-character change id ([k-z]), got '\(text.prefix(40))'")
        }
    }
}
