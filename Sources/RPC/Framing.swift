/// Why a byte stream could not be split into frames. Every case is fatal for the
/// stream: once a header is wrong, where the next message starts is unknowable.
public enum FramingError: Error, Sendable, Hashable, CustomStringConvertible {
    case missingContentLength
    /// The value is not a decimal number (empty, letters, a sign, …).
    case invalidContentLength(String)
    case negativeContentLength(String)
    /// Digits only, but more than fits in a machine integer.
    case contentLengthOverflow(String)
    /// Two `Content-Length` headers that disagree.
    case conflictingContentLength(String, String)
    /// A header line without a `:`.
    case malformedHeaderLine(String)
    /// No blank line within `limit` bytes.
    case headerTooLong(limit: Int)
    case frameTooLarge(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .missingContentLength:
            "frame header has no Content-Length; every message needs 'Content-Length: N\\r\\n\\r\\n' before its body"
        case .invalidContentLength(let value):
            "Content-Length '\(value)' is not a decimal byte count"
        case .negativeContentLength(let value):
            "Content-Length '\(value)' is negative"
        case .contentLengthOverflow(let value):
            "Content-Length '\(value)' is too large to represent"
        case .conflictingContentLength(let a, let b):
            "two Content-Length headers disagree ('\(a)' and '\(b)')"
        case .malformedHeaderLine(let line):
            "header line '\(line)' is not 'Name: value'"
        case .headerTooLong(let limit):
            "frame header exceeds \(limit) bytes without the blank line that ends it"
        case .frameTooLarge(let length, let limit):
            "frame of \(length) bytes exceeds the maximum of \(limit) bytes; send smaller messages or raise the server's frame limit"
        }
    }

    /// The JSON-RPC error a server answers with before closing the connection.
    public var responseError: ResponseError {
        switch self {
        case .frameTooLarge(let length, let limit):
            // The frame is well-formed; the request is refused for its size.
            ResponseError(
                code: .invalidRequest, message: description, errorClass: .badInput,
                extra: ["length": .int(length), "limit": .int(limit)])
        default:
            ResponseError(code: .parseError, message: description, errorClass: .badInput)
        }
    }
}

/// The parsed header section of one frame.
public struct FrameHeader: Sendable, Hashable {
    public var contentLength: Int
    /// Informational only: LSP allows just UTF-8, so bodies are always decoded as such.
    public var contentType: String?
}

/// An incremental splitter for LSP base-protocol framing: `Content-Length: N\r\n`,
/// optional further headers (names case-insensitive, unknown ones ignored), `\r\n`, then
/// N bytes of body.
///
/// Pure and synchronous: feed any chunking of the stream with `append`, then pull
/// complete bodies with `next()` until it returns nil. After an error the parser stays
/// failed, since the stream position is lost.
public struct FrameParser: Sendable {
    public static let defaultMaximumFrameSize = 64 << 20
    public static let defaultMaximumHeaderSize = 8 << 10

    public let maximumFrameSize: Int
    public let maximumHeaderSize: Int

    private enum State: Sendable {
        /// Looking for the blank line; `scanned` bytes after `start` hold no terminator.
        case header(scanned: Int)
        case body(length: Int)
        case failed(FramingError)
    }

    private var buffer: [UInt8] = []
    /// Bytes before `start` are consumed; compacted lazily to keep appends amortised.
    private var start = 0
    private var state = State.header(scanned: 0)

    public init(
        maximumFrameSize: Int = FrameParser.defaultMaximumFrameSize,
        maximumHeaderSize: Int = FrameParser.defaultMaximumHeaderSize
    ) {
        self.maximumFrameSize = maximumFrameSize
        self.maximumHeaderSize = maximumHeaderSize
    }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            // `scanned` counts from `start`, so it stays valid across the shift.
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        append(bytes.bindMemory(to: UInt8.self))
    }

    /// True when bytes of an unfinished frame are buffered; at end of stream this means
    /// the peer closed mid-frame.
    public var hasPartialFrame: Bool {
        switch state {
        case .body: true
        case .header: buffer.count > start
        case .failed: false
        }
    }

    /// The next complete body, nil when more bytes are needed.
    public mutating func next() throws(FramingError) -> [UInt8]? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .header(let scanned):
                let available = buffer.count - start
                // Resume the scan 3 bytes early: the terminator may straddle two chunks.
                var index = start + max(0, scanned - 3)
                var end: Int? = nil
                while index + 3 < buffer.count {
                    if buffer[index] == 0x0D && buffer[index + 1] == 0x0A && buffer[index + 2] == 0x0D
                        && buffer[index + 3] == 0x0A
                    {
                        end = index
                        break
                    }
                    index += 1
                }
                guard let end else {
                    if available > maximumHeaderSize {
                        return try fail(.headerTooLong(limit: maximumHeaderSize))
                    }
                    state = .header(scanned: available)
                    return nil
                }
                if end - start > maximumHeaderSize {
                    return try fail(.headerTooLong(limit: maximumHeaderSize))
                }
                let header: FrameHeader
                do {
                    header = try Self.parseHeader(buffer[start..<end])
                } catch {
                    return try fail(error)
                }
                if header.contentLength > maximumFrameSize {
                    return try fail(.frameTooLarge(length: header.contentLength, limit: maximumFrameSize))
                }
                start = end + 4
                state = .body(length: header.contentLength)
            case .body(let length):
                guard buffer.count - start >= length else { return nil }
                let body = Array(buffer[start..<start + length])
                start += length
                state = .header(scanned: 0)
                if start == buffer.count {
                    // Everything consumed: drop it now rather than copying it later.
                    buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
                    start = 0
                }
                return body
            }
        }
    }

    private mutating func fail(_ error: FramingError) throws(FramingError) -> [UInt8]? {
        state = .failed(error)
        buffer = []
        start = 0
        throw error
    }

    /// Parses a header section (without its final blank line). Pure, for unit tests.
    public static func parseHeader(_ bytes: some Collection<UInt8>) throws(FramingError) -> FrameHeader {
        var contentLength: (value: Int, text: String)? = nil
        var contentType: String? = nil
        for rawLine in bytes.split(separator: 0x0D, omittingEmptySubsequences: false) {
            // Lines are split on CR; every line but the first starts with the LF of CRLF.
            var line = rawLine[...]
            if line.first == 0x0A { line = line.dropFirst() }
            if line.isEmpty { continue }  // only possible for an entirely empty header
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":") else {
                throw .malformedHeaderLine(text)
            }
            let name = text[..<colon].trimmingSpaces().lowercased()
            let value = String(text[text.index(after: colon)...].trimmingSpaces())
            switch name {
            case "content-length":
                let parsed = try parseLength(value)
                if let existing = contentLength, existing.value != parsed {
                    throw .conflictingContentLength(existing.text, value)
                }
                contentLength = (parsed, value)
            case "content-type":
                contentType = value
            default:
                continue  // Unknown headers are ignored, as LSP requires.
            }
        }
        guard let contentLength else { throw .missingContentLength }
        return FrameHeader(contentLength: contentLength.value, contentType: contentType)
    }

    private static func parseLength(_ value: String) throws(FramingError) -> Int {
        let utf8 = Array(value.utf8)
        let isDigit = { (b: UInt8) in b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        if utf8.count > 1, utf8[0] == UInt8(ascii: "-"), utf8.dropFirst().allSatisfy(isDigit) {
            // "-0" is still not a byte count anyone should send.
            throw .negativeContentLength(value)
        }
        guard !utf8.isEmpty, utf8.allSatisfy(isDigit) else { throw .invalidContentLength(value) }
        var result = 0
        for byte in utf8 {
            let (times10, o1) = result.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            if o1 || o2 { throw .contentLengthOverflow(value) }
            result = next
        }
        return result
    }

    /// Frames a body: `Content-Length: N\r\n\r\n` followed by the bytes.
    public static func encode(_ body: some Collection<UInt8>) -> [UInt8] {
        var out = Array("Content-Length: \(body.count)\r\n\r\n".utf8)
        out.reserveCapacity(out.count + body.count)
        out.append(contentsOf: body)
        return out
    }
}

extension Substring {
    /// Strips spaces and tabs only: header values never legitimately end in other
    /// whitespace, and CR/LF are the line structure itself.
    fileprivate func trimmingSpaces() -> Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
