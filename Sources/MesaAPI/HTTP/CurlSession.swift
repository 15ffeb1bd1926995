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
    /// A file sent as the body instead of `body`, read in chunks as curl sends it
    /// (POST with a Content-Length): memory stays flat whatever its size.
    public var bodyFile: String?

    public init(method: String, url: String, headers: [String] = [], body: [UInt8]? = nil, bodyFile: String? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.bodyFile = bodyFile
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

    /// Where the callbacks put the answer: a 2xx body goes to `file` when one is
    /// given (a streamed download), anything else into `body`.
    private final class Sink {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        /// From the last status line seen ("HTTP/1.1 200 OK").
        var status = 0
        let limit: Int
        var overflow = false
        let file: Int32?
        var fileError: Int32 = 0
        init(limit: Int, file: Int32?) {
            self.limit = limit
            self.file = file
        }
    }

    /// Feeds a body file to curl's read callback.
    private final class Source {
        let fd: Int32
        let size: Int
        var offset = 0
        var readError: Int32 = 0
        init(fd: Int32, size: Int) {
            self.fd = fd
            self.size = size
        }
    }

    /// curl_global_init is not thread-safe: run it once, before the first handle.
    private static let globalInit: Void = { _ = curl_global_init(3) }()  // CURL_GLOBAL_ALL

    public let options: Options
    private let idle = Mutex<[Handle]>([])

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Sends `request` and waits for the whole answer (any status). Throws only when
    /// no HTTP answer arrived. With `responseFile`, a 2xx answer's body is written to
    /// that descriptor (truncated first, so a retried download starts over) instead of
    /// being returned. Requests that stream (a body file or a response file) have no
    /// overall deadline, only a stall limit: a 1 GiB transfer may take minutes.
    public func perform(_ request: HTTPRequest, responseFile: Int32? = nil) throws(TransportError) -> HTTPResponse {
        var source: Source?
        if let path = request.bodyFile {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw TransportError(code: Int(CURLE_READ_ERROR.rawValue), message: "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            var info = Glibc.stat()
            guard fstat(fd, &info) == 0 else {
                close(fd)
                throw TransportError(code: Int(CURLE_READ_ERROR.rawValue), message: "cannot stat \(path): \(String(cString: strerror(errno)))")
            }
            source = Source(fd: fd, size: Int(info.st_size))
        }
        defer { if let source { close(source.fd) } }
        if let responseFile {
            guard ftruncate(responseFile, 0) == 0, lseek(responseFile, 0, SEEK_SET) == 0 else {
                throw TransportError(code: Int(CURLE_WRITE_ERROR.rawValue), message: "cannot reset the download file: \(String(cString: strerror(errno)))")
            }
        }
        let streaming = source != nil || responseFile != nil
        guard let handle = idle.withLock({ $0.popLast() }) ?? Handle() else {
            throw TransportError(code: Int(CURLE_FAILED_INIT.rawValue), message: "curl_easy_init failed")
        }
        defer {
            // Reset keeps the handle's live connections, DNS cache and TLS sessions.
            curl_easy_reset(handle.curl)
            idle.withLock { if $0.count < options.maxIdleHandles { $0.append(handle) } }
        }
        let sink = Sink(limit: options.maxResponseBytes, file: responseFile)
        let code = withExtendedLifetime((sink, source)) { () -> CURLcode in
            let curl = handle.curl
            let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
            handle.errorBuffer[0] = 0
            _ = ccurl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, handle.errorBuffer)
            _ = ccurl_setopt_string(curl, CURLOPT_URL, request.url)
            _ = ccurl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
            _ = ccurl_setopt_long(curl, CURLOPT_TCP_KEEPALIVE, 1)
            _ = ccurl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(options.connectTimeout))
            if streaming {
                // Abort only when under 1 KiB/s for the request timeout.
                _ = ccurl_setopt_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1024)
                _ = ccurl_setopt_long(curl, CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(options.requestTimeout) / 1000))
            } else {
                _ = ccurl_setopt_long(curl, CURLOPT_TIMEOUT_MS, Self.milliseconds(options.requestTimeout))
            }
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
            if let source {
                // POST without POSTFIELDS: curl pulls the body through the read callback.
                _ = ccurl_setopt_long(curl, CURLOPT_POST, 1)
                // 1 MiB per read callback and send instead of curl's 64 KiB: fewer calls.
                _ = ccurl_setopt_long(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1 << 20)
                _ = ccurl_setopt_off(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(source.size))
                _ = ccurl_setopt_callback(curl, CURLOPT_READFUNCTION, Self.readBody)
                _ = ccurl_setopt_pointer(curl, CURLOPT_READDATA, Unmanaged.passUnretained(source).toOpaque())
                return curl_easy_perform(curl)
            }
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
            if sink.fileError != 0 { message = "cannot write the download: \(String(cString: strerror(sink.fileError)))" }
            if let source, source.readError != 0 {
                message = "cannot read \(request.bodyFile ?? "the body file"): \(String(cString: strerror(source.readError)))"
            }
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

    private static let readBody: ccurl_data_callback = { data, size, count, user in
        guard let user, let data else { return 0x1000_0000 }  // CURL_READFUNC_ABORT
        let source = Unmanaged<Source>.fromOpaque(user).takeUnretainedValue()
        let wanted = min(size * count, source.size - source.offset)
        guard wanted > 0 else { return 0 }
        while true {
            let result = pread(source.fd, data, wanted, off_t(source.offset))
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                // A file that shrank mid-send would leave the server waiting for bytes.
                source.readError = result < 0 ? errno : EIO
                return 0x1000_0000
            }
            source.offset += result
            return result
        }
    }

    private static let writeBody: ccurl_data_callback = { data, size, count, user in
        guard let user else { return 0 }
        let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
        let length = size * count
        if let file = sink.file, (200..<300).contains(sink.status) {
            guard let data else { return length }
            var done = 0
            while done < length {
                let result = Glibc.write(file, data + done, length - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    sink.fileError = errno
                    return 0
                }
                done += result
            }
            return length
        }
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
            let fields = line.split(separator: " ")
            sink.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            sink.headers[name] = value
        }
        return length
    }
}
