import Foundation
import Testing

@testable import RPC

@Suite("Messages")
struct MessageTests {
    private func parse(_ text: String) -> ParsedFrame { MessageParser.parse(Array(text.utf8)) }

    @Test func classifiesRequestsNotificationsAndResponses() {
        #expect(
            parse(#"{"jsonrpc":"2.0","id":7,"method":"m","params":{"a":1}}"#)
                == .single(.message(.request(Request(id: .int(7), method: "m", params: ["a": 1])))))
        #expect(
            parse(#"{"jsonrpc":"2.0","id":"abc","method":"m","params":[1]}"#)
                == .single(.message(.request(Request(id: .string("abc"), method: "m", params: [1])))))
        #expect(
            parse(#"{"jsonrpc":"2.0","method":"n"}"#)
                == .single(.message(.notification(Notification(method: "n")))))
        #expect(
            parse(#"{"jsonrpc":"2.0","id":1,"result":null}"#)
                == .single(.message(.response(Response(id: .int(1), result: .success(nil))))))
        let error = ResponseError(code: ErrorCode(-1), message: "m", data: ["x": 1])
        #expect(
            parse(#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m","data":{"x":1}}}"#)
                == .single(.message(.response(Response(id: nil, result: .failure(error))))))
    }

    @Test(arguments: [
        (#"{"id":1,"method":"m"}"#, Optional(RequestID.int(1))),
        (#"{"jsonrpc":"1.0","id":1,"method":"m"}"#, .int(1)),
        (#"{"jsonrpc":"2.0","id":2,"method":5}"#, .int(2)),
        (#"{"jsonrpc":"2.0","id":3,"method":"m","params":5}"#, .int(3)),
        (#"{"jsonrpc":"2.0","id":"s","method":"m","params":"x"}"#, .string("s")),
        (#"{"jsonrpc":"2.0","id":null,"method":"m"}"#, nil),
        (#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#, nil),
        (#"{"jsonrpc":"2.0","id":true,"method":"m"}"#, nil),
        (#"{"jsonrpc":"2.0","id":{},"method":"m"}"#, nil),
        (#"{"jsonrpc":"2.0","id":4}"#, .int(4)),
        (#"{"jsonrpc":"2.0","id":5,"result":1,"error":{"code":1,"message":"x"}}"#, .int(5)),
        (#"{"jsonrpc":"2.0","id":6,"error":{"code":"x","message":"x"}}"#, .int(6)),
        (#"42"#, nil),
        (#""text""#, nil),
    ] as [(String, RequestID?)])
    func invalidRequestsGetMinus32600WithTheirIdWhenReadable(text: String, id: RequestID?) {
        guard case .single(.invalid(let gotID, let error)) = parse(text) else {
            Issue.record("expected an invalid message for \(text)")
            return
        }
        #expect(gotID == id)
        #expect(error.code == .invalidRequest)
        #expect(error.errorClass == .badInput)
    }

    @Test func invalidJSONAndInvalidUTF8AreParseErrors() {
        guard case .unanswerable(let json) = parse(#"{"jsonrpc":"2.0","#) else {
            Issue.record("expected a parse error")
            return
        }
        #expect(json.code == .parseError)
        guard case .unanswerable(let utf8) = MessageParser.parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) else {
            Issue.record("expected a parse error")
            return
        }
        #expect(utf8.code == .parseError)
        #expect(utf8.message.contains("UTF-8"))
    }

    @Test func emptyBatchIsOneInvalidRequest() {
        guard case .unanswerable(let error) = parse("[]") else {
            Issue.record("expected one error for an empty batch")
            return
        }
        #expect(error.code == .invalidRequest)
    }

    @Test func batchElementsAreClassifiedOneByOne() {
        guard case .batch(let elements) = parse(#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 1, {"jsonrpc":"2.0","method":"n"}, []]"#) else {
            Issue.record("expected a batch")
            return
        }
        #expect(elements.count == 4)
        #expect(elements[0] == .message(.request(Request(id: .int(1), method: "a"))))
        #expect(elements[2] == .message(.notification(Notification(method: "n"))))
        for index in [1, 3] {
            guard case .invalid(nil, let error) = elements[index] else {
                Issue.record("element \(index) should be invalid")
                continue
            }
            #expect(error.code == .invalidRequest)
        }
    }

    @Test func encodedMessagesAreValidJSONRPC() throws {
        let request = try JSONValue.parse(MessageEncoder.request(id: .string("a\"b"), method: "m", params: EncodedJSON(["x": 1])))
        #expect(request == ["jsonrpc": "2.0", "id": "a\"b", "method": "m", "params": ["x": 1]])
        let notification = try JSONValue.parse(MessageEncoder.notification(method: "n", params: nil))
        #expect(notification == ["jsonrpc": "2.0", "method": "n"])
        let success = try JSONValue.parse(MessageEncoder.response(id: .int(3), result: .success(EncodedJSON([1, 2]))))
        #expect(success == ["jsonrpc": "2.0", "id": 3, "result": [1, 2]])
        let failure = try JSONValue.parse(
            MessageEncoder.response(id: nil, result: .failure(.init(code: .internalError, message: "boom", errorClass: .fatal, errno: 5))))
        #expect(failure == ["jsonrpc": "2.0", "id": nil, "error": ["code": -32603, "message": "boom", "data": ["errorClass": "fatal", "errno": 5]]])
        let batch = try JSONValue.parse(MessageEncoder.batch([Array("1".utf8), Array("{}".utf8)]))
        #expect(batch == [1, [:]])
    }

    @Test func errorCodesAreOpenEnded() throws {
        let decoded = try JSONDecoder().decode(ResponseError.self, from: Data(#"{"code":-31999,"message":"app","data":{"errorClass":"transient","errno":11}}"#.utf8))
        #expect(decoded.code == ErrorCode(-31999))
        #expect(decoded.errorClass == .transient)
        #expect(decoded.errno == 11)
        #expect(ErrorCode.requestCancelled.rawValue == -32800)
        #expect([ErrorCode.parseError, .invalidRequest, .methodNotFound, .invalidParams, .internalError].map(\.rawValue)
            == [-32700, -32600, -32601, -32602, -32603])
    }

    @Test func everyErrorCarriesAnErrorClass() {
        let errors: [ResponseError] = [
            .parseError("p"), .invalidRequest("i"), .methodNotFound("m"), .invalidParams("x", field: "params.a"),
            .internalError("b"), .cancelled(),
            ResponseError(code: ErrorCode(1), message: "m", errorClass: .transient, extra: ["errorClass": "ignored"]),
        ]
        for error in errors {
            #expect(error.errorClass != nil, "\(error)")
        }
        #expect(errors.last?.errorClass == .transient)
        #expect(ResponseError.cancelled().errorClass == .transient)
        #expect(ResponseError.internalError("x").errorClass == .fatal)
    }
}
