import CCurl
import Foundation
import Synchronization

/// One HTTP request as the transport sends it. Knows nothing of Mesa.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    /// Complete header lines, `Name: value`.
    public var headers: [String]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [String] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header names lower-cased; for a repeated header the last value wins.
    public let headers: [String: String]
    public let body: [UInt8]

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// A request that got no HTTP answer: curl's error code and message.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public let code: Int
    public let message: String

    /// The request provably never reached the server (name resolution or the TCP
    /// connect failed), so even a non-idempotent request may be sent again.
    public var neverSent: Bool {
        [CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT].map { Int($0.rawValue) }.contains(code)
    }

    /// A failure a later attempt may not see (timeouts, resets, a dead connection).
    public var isTransient: Bool {
        neverSent || [CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
                      CURLE_PARTIAL_FILE].map { Int($0.rawValue) }.contains(code)
    }

    public var description: String { message }
}

/// The libcurl transport: blocking requests on a small pool of easy handles, so
/// connections (and their keep-alive) are reused across calls from any thread.
/// Nothing here logs; the caller decides what a failure means.
public final class CurlSession: Sendable {
    public struct Options: Sendable {
        public var connectTimeout: Duration
        /// The whole request, connect to last byte.
        public var requestTimeout: Duration
        public var userAgent: String
        /// Idle easy handles kept (each holds its own live connections).
        public var maxIdleHandles: Int
        /// Larger answers are refused (a blob, a listing): a guard, not a feature.
        public var maxResponseBytes: Int

        public init(connectTimeout: Duration = .seconds(5), requestTimeout: Duration = .seconds(60),
                    userAgent: String = "mesad", maxIdleHandles: Int = 4, maxResponseBytes: Int = 1 << 30) {
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.userAgent = userAgent
            self.maxIdleHandles = maxIdleHandles
            self.maxResponseBytes = maxResponseBytes
        }
    }

    /// An easy handle and its error buffer; used by one request at a time.
    private final class Handle: @unchecked Sendable {
        let curl: UnsafeMutableRawPointer
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

        init?() {
            _ = CurlSession.globalInit
            guard let curl = curl_easy_init() else { return nil }
            self.curl = curl
        }

        deinit {
            curl_easy_cleanup(curl)
            errorBuffer.deallocate()
        }
    }

    /// Where the callbacks put the answer.
    private final class Sink {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        let limit: Int
        var overflow = false
        init(limit: Int) { self.limit = limit }
    }

    /// curl_global_init is not thread-safe: run it once, before the first handle.
    private static let globalInit: Void = { _ = curl_global_init(3) }()  // CURL_GLOBAL_ALL

    public let options: Options
    private let idle = Mutex<[Handle]>([])

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Sends `request` and waits for the whole answer (any status). Throws only when
    /// no HTTP answer arrived.
    public func perform(_ request: HTTPRequest) throws(TransportError) -> HTTPResponse {
        guard let handle = idle.withLock({ $0.popLast() }) ?? Handle() else {
            throw TransportError(code: Int(CURLE_FAILED_INIT.rawValue), message: "curl_easy_init failed")
        }
        defer {
            // Reset keeps the handle's live connections, DNS cache and TLS sessions.
            curl_easy_reset(handle.curl)
            idle.withLock { if $0.count < options.maxIdleHandles { $0.append(handle) } }
        }
        let sink = Sink(limit: options.maxResponseBytes)
        let code = withExtendedLifetime(sink) { () -> CURLcode in
            let curl = handle.curl
            let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
            handle.errorBuffer[0] = 0
            _ = ccurl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, handle.errorBuffer)
            _ = ccurl_setopt_string(curl, CURLOPT_URL, request.url)
            _ = ccurl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
            _ = ccurl_setopt_long(curl, CURLOPT_TCP_KEEPALIVE, 1)
            _ = ccurl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(options.connectTimeout))
            _ = ccurl_setopt_long(curl, CURLOPT_TIMEOUT_MS, Self.milliseconds(options.requestTimeout))
            _ = ccurl_setopt_string(curl, CURLOPT_USERAGENT, options.userAgent)
            _ = ccurl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0)
            _ = ccurl_setopt_callback(curl, CURLOPT_WRITEFUNCTION, Self.writeBody)
            _ = ccurl_setopt_pointer(curl, CURLOPT_WRITEDATA, sinkPointer)
            _ = ccurl_setopt_callback(curl, CURLOPT_HEADERFUNCTION, Self.writeHeader)
            _ = ccurl_setopt_pointer(curl, CURLOPT_HEADERDATA, sinkPointer)

            var list: UnsafeMutablePointer<curl_slist>?
            // No `Expect: 100-continue` round trip for large bodies.
            for line in request.headers + ["Expect:"] { list = curl_slist_append(list, line) }
            defer { curl_slist_free_all(list) }
            _ = ccurl_setopt_pointer(curl, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))

            let method = request.method.uppercased()
            if method == "GET" && request.body == nil {
                _ = ccurl_setopt_long(curl, CURLOPT_HTTPGET, 1)
                return curl_easy_perform(curl)
            }
            if method != "POST" { _ = ccurl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, method) }
            guard let body = request.body else {
                if method == "POST" {
                    _ = ccurl_setopt_off(curl, CURLOPT_POSTFIELDSIZE_LARGE, 0)
                    _ = ccurl_setopt_string(curl, CURLOPT_POSTFIELDS, "")
                }
                return curl_easy_perform(curl)
            }
            // The body pointer must stay valid through perform: it does, inside this closure.
            return body.withUnsafeBytes { bytes -> CURLcode in
                _ = ccurl_setopt_off(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
                _ = ccurl_setopt_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(handle.errorBuffer)))
                return curl_easy_perform(curl)
            }
        }
        guard code == CURLE_OK else {
            let detail = String(cString: handle.errorBuffer)
            var message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            if sink.overflow { message = "the answer is larger than \(options.maxResponseBytes) bytes" }
            throw TransportError(code: Int(code.rawValue), message: message)
        }
        var status = 0
        _ = ccurl_getinfo_long(handle.curl, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: sink.headers, body: sink.body)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    private static let writeBody: ccurl_data_callback = { data, size, count, user in
        guard let user else { return 0 }
        let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
        let length = size * count
        guard sink.body.count + length <= sink.limit else {
            sink.overflow = true
            return 0  // makes curl fail with CURLE_WRITE_ERROR
        }
        if let data, length > 0 { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length)) }
        return length
    }

    private static let writeHeader: ccurl_data_callback = { data, size, count, user in
        guard let user, let data else { return 0 }
        let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
        let length = size * count
        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            sink.headers = [:]  // a new response (after a 100 Continue): start over
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            sink.headers[name] = value
        }
        return length
    }
}
