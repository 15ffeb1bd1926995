import Foundation
import Infra
import Model

// How HTTPBackend talks: URLs, retries and the error envelope.
extension HTTPBackend {
    typealias Query = [(String, String?)]

    // MARK: Sending

    /// Decodes a 2xx JSON answer.
    func json<T: Decodable>(_ method: String, _ segments: [String], query: Query = [], body: (any Encodable)? = nil) throws -> T {
        let response = try send(method, segments, query: query, body: body)
        do {
            return try RESTCoding.decoder().decode(T.self, from: Data(response.body))
        } catch {
            throw MesaError.internal("\(method) \(redactedURL(segments)): the answer is not the expected JSON (\(error)); is \(configuration.baseURL) a Mesa API?")
        }
    }

    /// Sends one call with retries; returns the 2xx answer or throws the mapped error.
    /// `bodyFile` streams a file as the body; `responseFile` receives a 2xx body;
    /// `idempotent` overrides the method's default (a content-addressed upload may
    /// be repeated safely).
    func send(_ method: String, _ segments: [String], query: Query = [], body: (any Encodable)? = nil,
              accept: String = "application/json", bodyFile: String? = nil, responseFile: Int32? = nil,
              idempotent: Bool? = nil) throws -> HTTPResponse {
        let url = Self.url(configuration.baseURL, segments, query)
        var headers = ["Authorization: Bearer \(configuration.apiKey)", "Accept: \(accept)"]
        if bodyFile != nil { headers.append("Content-Type: application/octet-stream") }
        var bytes: [UInt8]?
        if let body {
            headers.append("Content-Type: application/json")
            do { bytes = Array(try RESTCoding.encoder().encode(body)) } catch {
                throw MesaError.internal("cannot encode the \(method) body for \(url): \(error)")
            }
        }
        let request = HTTPRequest(method: method, url: url, headers: headers, body: bytes, bodyFile: bodyFile)
        // GET and DELETE may be repeated; POST and PATCH only when they cannot have run.
        let idempotent = idempotent ?? (method == "GET" || method == "DELETE" || method == "HEAD")
        let backoff = Backoff(initial: configuration.initialBackoff, cap: configuration.maxBackoff, jitter: 0.5,
                              maxAttempts: configuration.maxAttempts, budget: configuration.retryBudget)
        do throws(Attempt) {
            return try backoff.retry(shouldRetry: { (failure: Attempt, _) in
                failure.retryable ? .retry(atLeast: failure.retryAfter ?? .zero) : .stop
            }) { attempt throws(Attempt) in
                let response: HTTPResponse
                do throws(TransportError) { response = try session.perform(request, responseFile: responseFile) } catch {
                    let tries = attempt == 1 ? "" : " (\(attempt) attempts)"
                    throw Attempt(error: MesaError(.unavailable, "\(method) \(url) failed\(tries): \(error.message)"),
                                  retryable: error.neverSent || (idempotent && error.isTransient), retryAfter: nil)
                }
                if (200..<300).contains(response.status) { return response }
                let retryable = response.status == 429 || response.status == 503
                    || (idempotent && response.status >= 500 && response.status != 501 && response.status != 505)
                let retryAfter = response.header("retry-after")
                    .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.flatMap { $0 >= 0 ? Duration.seconds($0) : nil }
                throw Attempt(error: error(for: response, method: method, url: url, attempts: attempt), retryable: retryable,
                              retryAfter: retryAfter)
            }
        } catch {
            throw error.error
        }
    }

    /// One failed attempt: the error the caller sees if it is the last, and whether
    /// another may follow (and not before what the server's Retry-After asks).
    struct Attempt: Error {
        let error: MesaError
        let retryable: Bool
        let retryAfter: Duration?
    }

    // MARK: URLs

    /// `base/seg/seg?k=v`: every segment and query value percent-encoded whole, so a
    /// bookmark `feature/x` travels as `feature%2Fx`.
    static func url(_ base: String, _ segments: [String], _ query: Query) -> String {
        var url = base + "/" + segments.map(percentEncoded).joined(separator: "/")
        let items = query.compactMap { key, value in value.map { "\(percentEncoded(key))=\(percentEncoded($0))" } }
        if !items.isEmpty { url += "?" + items.joined(separator: "&") }
        return url
    }

    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    func redactedURL(_ segments: [String]) -> String { Self.url(configuration.baseURL, segments, []) }

    static func paging(_ cursor: String?, _ limit: Int?) -> Query {
        [("cursor", cursor), ("limit", limit.map(String.init))]
    }

    // MARK: Errors

    /// The `MesaError` of a non-2xx answer: the envelope's code when it names one of
    /// ours, else the HTTP status; 5xx (and 429) mean the server is not able right now.
    func error(for response: HTTPResponse, method: String, url: String, attempts: Int) -> MesaError {
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        let envelope = object?["error"] as? [String: Any]
        let name = (envelope?["code"] as? String) ?? ""
        let serverMessage = (envelope?["message"] as? String)
            ?? String(decoding: response.body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let details = envelope?["details"] as? [String: Any]
        let paths = Self.conflictPaths(details)
        let status = response.status
        var code = Self.code(named: name) ?? Self.code(status: status)
        if status >= 500 || status == 429 { code = .unavailable }
        let what = serverMessage.isEmpty ? "HTTP \(status)" : serverMessage
        let message: String
        switch code {
        case .unauthenticated, .keyExpired, .keyRevoked:
            let whose = configuration.org.map { "the API key configured for org '\($0)'" } ?? "the API key"
            message = "\(configuration.baseURL) refused \(whose): \(what)"
                + (code == .unauthenticated ? "" : "; create a new key and update MESA_ORGS or config.toml")
        case .unavailable:
            let tries = attempts > 1 ? " after \(attempts) attempts" : ""
            message = "\(method) \(url) answered HTTP \(status)\(tries): \(what)"
        default:
            message = what
        }
        return MesaError(code, message, paths: paths)
    }

    static func code(named name: String) -> MesaError.Code? {
        switch name.uppercased() {
        case "BAD_REQUEST", "NOT_ACCEPTABLE": .invalidArgument
        case "UNAUTHORIZED": .unauthenticated
        case "INTERNAL_SERVER_ERROR": .internal
        case let name: MesaError.Code(rawValue: name)
        }
    }

    static func code(status: Int) -> MesaError.Code {
        switch status {
        case 400, 406, 413, 422: .invalidArgument
        case 401: .unauthenticated
        case 403: .forbidden
        case 404: .notFound
        case 409: .conflict
        case 429, 500...: .unavailable
        default: .internal
        }
    }

    /// `details.conflict_paths`, or the paths of per-path conflict entries.
    static func conflictPaths(_ details: [String: Any]?) -> [String] {
        guard let details else { return [] }
        if let paths = details["conflict_paths"] as? [String] { return paths }
        for key in ["conflicts", "conflicted_entries", "paths"] {
            if let list = details[key] as? [String] { return list }
            if let list = details[key] as? [[String: Any]] { return list.compactMap { $0["path"] as? String } }
        }
        return []
    }
}
