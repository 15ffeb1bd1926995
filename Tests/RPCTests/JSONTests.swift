import Foundation
import Testing

@testable import RPC

@Suite("JSON")
struct JSONTests {
    private func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d"}, "e": ""} "#)
        #expect(value == ["a": [1, -2, 3.5, 1000.0, true, false, nil], "b": ["c": "d"], "e": ""])
    }

    @Test func integersStayExactAtTheEdges() throws {
        #expect(try parse("9223372036854775807") == .int(Int.max))
        #expect(try parse("-9223372036854775808") == .int(Int.min))
        #expect(try parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parse("-0") == .int(0))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try parse(#""\u00e9\u20AC\ud83d\ude00""#) == .string("é€😀"))
        #expect(try parse("\"é😀\"") == .string("é😀"))
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "NaN", "Infinity", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\u{01}b\"", "{\"a\" 1}", "[1 2]", "1 2", "1e999",
    ])
    func refusesMalformedJSON(text: String) {
        #expect(throws: JSONParseError.self) { try parse(text) }
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],  // never valid
        [0x22, 0xC0, 0x80, 0x22],  // overlong NUL
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-16 surrogate encoded in UTF-8
        [0x22, 0xE2, 0x82, 0x22],  // truncated sequence
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x80],  // lone continuation byte
    ] as [[UInt8]])
    func refusesInvalidUTF8WithItsOwnKind(bytes: [UInt8]) {
        #expect {
            try JSONValue.parse(bytes)
        } throws: { error in
            (error as? JSONParseError)?.kind == .invalidUTF8
        }
    }

    /// The validator and the string scanner skip ASCII eight bytes at a time: a bad byte,
    /// a quote, a backslash or a control byte must be found at every position of a word.
    @Test func wordAtATimeScanningMissesNothing() throws {
        for prefix in 0..<20 {
            let run = String(repeating: "a", count: prefix)
            // Invalid UTF-8 after an ASCII run: refused, at its exact offset.
            var bytes = Array("\"\(run)".utf8) + [0xFF] + Array("bcdefghijklmnop\"".utf8)
            #expect {
                try JSONValue.parse(bytes)
            } throws: { error in
                (error as? JSONParseError).map { $0.kind == .invalidUTF8 && $0.offset == 1 + prefix } ?? false
            }
            // Valid multi-byte UTF-8 after an ASCII run is kept.
            bytes = Array("\"\(run)é😀\(run)\"".utf8)
            #expect(try JSONValue.parse(bytes) == .string("\(run)é😀\(run)"))
            // The string ends at the first quote; escapes and controls are seen wherever they fall.
            #expect(try parse("[\"\(run)\",\"\(run)b\"]") == [.string(run), .string(run + "b")])
            #expect(try parse("\"\(run)\\n\(run)\"") == .string(run + "\n" + run))
            #expect(throws: JSONParseError.self) { try parse("\"\(run)\u{01}abcdefghij\"") }
            #expect(throws: JSONParseError.self) { try parse("\"\(run)\u{1F}abcdefghij\"") }
            // And what is written back escapes the same bytes, wherever they fall.
            let tricky = JSONValue.string(run + "\"\\\n\u{01}" + run + "/é")
            #expect(try JSONValue.parse(tricky.serialized) == tricky)
        }
        // Bytes just above the specials are plain text, not escapes.
        #expect(try parse("\" !#[]^~\u{7F}abcdefgh\"") == .string(" !#[]^~\u{7F}abcdefgh"))
    }

    @Test func deepNestingIsRefusedWithoutExhaustingTheStack() throws {
        let limit = JSONParser.maximumDepth
        let deepest = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect(throws: Never.self) { try parse(deepest) }
        let tooDeep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: JSONParseError.self) { try parse(tooDeep) }
        // A huge run of openers fails fast rather than recursing 100k frames deep.
        #expect(throws: JSONParseError.self) { try parse(String(repeating: "[", count: 100_000)) }
        #expect(throws: JSONParseError.self) { try parse(String(repeating: "{\"a\":", count: 100_000)) }
    }

    @Test func serializationRoundTrips() throws {
        let value: JSONValue = [
            "text": "quote \" backslash \\ newline \n tab \t nul \u{0} é 😀",
            "numbers": [0, -1, 1.5, 1e-7, 12345678901234],
            "nested": ["empty": [:], "list": []],
            "flags": [true, false, nil],
        ]
        #expect(try JSONValue.parse(value.serialized) == value)
        // Foundation agrees the output is JSON.
        #expect(try JSONDecoder().decode(JSONValue.self, from: Data(value.serialized)) == value)
    }

    @Test func nonFiniteDoublesSerializeAsNull() {
        #expect(JSONValue.double(.nan).serialized == Array("null".utf8))
    }

    @Test func typedValuesConvertBothWays() throws {
        let params = CreateThing.Params(name: "x", count: 2, options: .init(depth: 1, tags: ["t"]))
        let json = try JSONValue(encoding: params)
        #expect(json["options"]?["tags"] == ["t"])
        let back = try json.decode(CreateThing.Params.self)
        #expect(back.name == "x" && back.count == 2 && back.options?.depth == 1)
    }

    struct Everything: Codable, Equatable {
        var flag: Bool
        var small: UInt8
        var big: Int64
        var ratio: Double
        var name: String
        var data: Data
        var url: URL
        var date: Date
        var list: [Int]
        var nested: [[String]]
        var map: [String: Int]
        var numericKeys: [Int: String]
        var optional: String?
        var missing: Int?
        var raw: JSONValue
    }

    @Test func decoderReadsWhatFoundationsEncoderWrites() throws {
        let value = Everything(
            flag: true, small: 255, big: Int64.min, ratio: 0.25, name: "n", data: Data([0, 1, 254]),
            url: URL(string: "https://example.com/a?b=c")!, date: Date(timeIntervalSinceReferenceDate: 12.5),
            list: [1, 2], nested: [["a"], []], map: ["k": 1], numericKeys: [3: "three"], optional: nil,
            missing: nil, raw: ["anything": [1, "two"]])
        let json = try JSONValue(encoding: value)
        #expect(try json.decode(Everything.self) == value)
    }

    @Test func decoderAcceptsIntegralFloatsForIntegers() throws {
        #expect(try JSONValue.double(3.0).decode(Int.self) == 3)
        #expect(try JSONValue.int(3).decode(Double.self) == 3.0)
    }

    @Test(arguments: [
        (["flag": 1] as JSONValue, "flag"),
        (["flag": true, "small": 256], "small"),
        (["flag": true, "small": -1], "small"),
        (["flag": true, "small": 1.5], "small"),
        (["flag": true, "small": 1, "big": "7"], "big"),
    ] as [(JSONValue, String)])
    func decoderErrorsCarryTheFieldPath(json: JSONValue, field: String) {
        #expect {
            try json.decode(Everything.self)
        } throws: { error in
            guard let error = error as? DecodingError else { return false }
            switch error {
            case .typeMismatch(_, let context), .dataCorrupted(let context), .valueNotFound(_, let context):
                return context.codingPath.map(\.stringValue) == [field]
            case .keyNotFound:
                return false
            @unknown default:
                return false
            }
        }
    }
}
