import Testing

@testable import RPC

@Suite("Framing")
struct FramingTests {
    let bodies: [[UInt8]] = [
        Array(#"{"jsonrpc":"2.0","id":1,"method":"a"}"#.utf8),
        Array(#"{"jsonrpc":"2.0","method":"b","params":{"x":"ünïcødé"}}"#.utf8),
        [],
        Array(#"[1,2,3]"#.utf8),
    ]

    private func drain(_ parser: inout FrameParser) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let body = try parser.next() { out.append(body) }
        return out
    }

    @Test func bodiesArriveWhenFedByteByByte() throws {
        let stream = bodies.flatMap { FrameParser.encode($0) }
        var parser = FrameParser()
        var received: [[UInt8]] = []
        for byte in stream {
            parser.append([byte])
            received += try drain(&parser)
        }
        #expect(received == bodies)
        #expect(!parser.hasPartialFrame)
    }

    @Test func manyMessagesInOneChunkAreAllSplit() throws {
        let many = Array(repeating: bodies, count: 250).flatMap { $0 }
        var parser = FrameParser()
        parser.append(many.flatMap { FrameParser.encode($0) })
        #expect(try drain(&parser) == many)
    }

    @Test func chunksSplitAcrossTheHeaderTerminatorStillParse() throws {
        let stream = FrameParser.encode(Array("hello".utf8)) + FrameParser.encode(Array("world".utf8))
        // Every split point, including inside "\r\n\r\n".
        for split in 0...stream.count {
            var parser = FrameParser()
            parser.append(stream[0..<split])
            var received = try drain(&parser)
            parser.append(stream[split...])
            received += try drain(&parser)
            #expect(received == [Array("hello".utf8), Array("world".utf8)], "split at \(split)")
        }
    }

    @Test(arguments: [
        "content-length: 5\r\n\r\nhello",
        "CONTENT-LENGTH:5\r\n\r\nhello",
        "Content-Length:    5   \r\n\r\nhello",
        "Content-Length\t:\t5\r\n\r\nhello",
        "Content-Length: 5\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\nhello",
        "Content-Type: application/vscode-jsonrpc; charset=utf8\r\nContent-Length: 5\r\n\r\nhello",
        "X-Unknown: whatever: with colons\r\nContent-Length: 5\r\nX-Other:\r\n\r\nhello",
        "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "Content-Length: 005\r\n\r\nhello",
    ])
    func headerVariantsAreAccepted(stream: String) throws {
        var parser = FrameParser()
        parser.append(Array(stream.utf8))
        #expect(try drain(&parser) == [Array("hello".utf8)])
    }

    @Test func contentTypeIsReported() throws {
        let header = try FrameParser.parseHeader(Array("Content-Length: 2\r\ncontent-type: text/x".utf8))
        #expect(header == FrameHeader(contentLength: 2, contentType: "text/x"))
    }

    @Test(arguments: [
        ("Content-Type: application/json\r\n\r\n{}", FramingError.missingContentLength),
        ("\r\n\r\n{}", .missingContentLength),
        ("Content-Length: abc\r\n\r\n", .invalidContentLength("abc")),
        ("Content-Length: 5x\r\n\r\n", .invalidContentLength("5x")),
        ("Content-Length: \r\n\r\n", .invalidContentLength("")),
        ("Content-Length: +5\r\n\r\n", .invalidContentLength("+5")),
        ("Content-Length: 0x10\r\n\r\n", .invalidContentLength("0x10")),
        ("Content-Length: 1 2\r\n\r\n", .invalidContentLength("1 2")),
        ("Content-Length: 5.0\r\n\r\n", .invalidContentLength("5.0")),
        ("Content-Length: -5\r\n\r\n", .negativeContentLength("-5")),
        ("Content-Length: -0\r\n\r\n", .negativeContentLength("-0")),
        ("Content-Length: 99999999999999999999999\r\n\r\n", .contentLengthOverflow("99999999999999999999999")),
        ("Content-Length: 5\r\nContent-Length: 6\r\n\r\n", .conflictingContentLength("5", "6")),
        ("Content-Length 5\r\n\r\n", .malformedHeaderLine("Content-Length 5")),
        ("Content-Length: 5\nX: y\r\n\r\n", .invalidContentLength("5\nX: y")),
    ])
    func badHeadersAreRefusedWithTheirReason(stream: String, expected: FramingError) {
        var parser = FrameParser()
        parser.append(Array(stream.utf8))
        #expect(throws: expected) { try parser.next() }
    }

    @Test func hugeLengthIsRefusedBeforeTheBodyArrives() {
        var parser = FrameParser()
        parser.append(Array("Content-Length: 67108865\r\n\r\n".utf8))
        #expect(throws: FramingError.frameTooLarge(length: 67_108_865, limit: 64 << 20)) { try parser.next() }
    }

    @Test func frameAtTheLimitIsAcceptedAndOneByteMoreIsNot() throws {
        var parser = FrameParser(maximumFrameSize: 16)
        parser.append(FrameParser.encode([UInt8](repeating: 0x41, count: 16)))
        #expect(try parser.next()?.count == 16)
        parser.append(FrameParser.encode([UInt8](repeating: 0x41, count: 17)))
        #expect(throws: FramingError.frameTooLarge(length: 17, limit: 16)) { try parser.next() }
    }

    @Test func headerWithoutTerminatorIsRefusedPastTheLimit() throws {
        var parser = FrameParser(maximumHeaderSize: 64)
        parser.append(Array("Content-Length: 5\r\n".utf8))
        #expect(try parser.next() == nil)  // still within the limit: wait for more
        parser.append([UInt8](repeating: 0x58, count: 100))
        #expect(throws: FramingError.headerTooLong(limit: 64)) { try parser.next() }
    }

    @Test func longHeaderSectionWithTerminatorIsRefused() {
        var parser = FrameParser(maximumHeaderSize: 64)
        let header = "X-Padding: " + String(repeating: "p", count: 100) + "\r\nContent-Length: 2\r\n\r\n{}"
        parser.append(Array(header.utf8))
        #expect(throws: FramingError.headerTooLong(limit: 64)) { try parser.next() }
    }

    @Test func errorsAreStickyBecauseTheStreamPositionIsLost() {
        var parser = FrameParser()
        parser.append(Array("Content-Length: x\r\n\r\n".utf8))
        #expect(throws: FramingError.invalidContentLength("x")) { try parser.next() }
        parser.append(FrameParser.encode(Array("{}".utf8)))
        #expect(throws: FramingError.invalidContentLength("x")) { try parser.next() }
    }

    @Test func partialFrameIsReported() throws {
        var parser = FrameParser()
        #expect(!parser.hasPartialFrame)
        parser.append(Array("Content-Len".utf8))
        #expect(parser.hasPartialFrame)
        parser.append(Array("gth: 4\r\n\r\nab".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.hasPartialFrame)
        parser.append(Array("cd".utf8))
        #expect(try parser.next() == Array("abcd".utf8))
        #expect(!parser.hasPartialFrame)
    }

    @Test func encoderWritesHeaderThenBody() {
        #expect(FrameParser.encode(Array("{}".utf8)) == Array("Content-Length: 2\r\n\r\n{}".utf8))
        #expect(FrameParser.encode(Array("é".utf8)) == Array("Content-Length: 2\r\n\r\né".utf8))
    }

    @Test func framingErrorsMapToJSONRPCErrors() {
        let oversized = FramingError.frameTooLarge(length: 10, limit: 5).responseError
        #expect(oversized.code == .invalidRequest)
        #expect(oversized.errorClass == .badInput)
        #expect(oversized.data?["limit"] == 5)
        let garbled = FramingError.invalidContentLength("x").responseError
        #expect(garbled.code == .parseError)
        #expect(garbled.errorClass == .badInput)
    }
}
