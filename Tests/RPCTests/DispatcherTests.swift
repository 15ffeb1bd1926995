import Logging
import Synchronization
import Testing

@testable import RPC

/// Collects notifications instead of sending them.
final class RecordingSender: NotificationSender {
    let sent = Mutex<[(String, JSONValue?)]>([])

    func sendNotification(method: String, encodedParams: EncodedJSON?) -> Bool {
        let params = encodedParams.flatMap { try? JSONValue.parse($0.bytes) }
        sent.withLock { $0.append((method, params)) }
        return true
    }
}

struct AppError: ResponseErrorConvertible {
    var responseError: ResponseError {
        ResponseError(code: ErrorCode(-31001), message: "repository 'x' not found", errorClass: .badInput, errno: 2)
    }
}

struct Unclassified: Error {}

/// Handlers log their failures; the tests check the answers, not the log lines.
let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

@Suite("Dispatcher")
struct DispatcherTests {
    let dispatcher = makeTestDispatcher()
    let sender = RecordingSender()

    private func call(_ method: String, _ params: JSONValue?) async -> Result<JSONValue, ResponseError> {
        let context = RequestContext(
            id: .int(1), method: method, connection: ConnectionInfo(id: 0, peer: nil), peer: sender,
            logger: quietLogger)
        return await dispatcher.dispatch(method: method, params: params, context: context)
            .map { (try? JSONValue.parse($0.bytes)) ?? .string("unparseable") }
    }

    private func error(_ result: Result<JSONValue, ResponseError>) -> ResponseError? {
        if case .failure(let error) = result { error } else { nil }
    }

    @Test func typedHandlerGetsDecodedParams() async {
        #expect(await call("echo", ["text": "hi"]) == .success(["text": "hi"]))
        #expect(await call("createThing", ["name": "a", "count": 3, "extra": "ignored"]) == .success(["id": "a-3"]))
    }

    @Test func methodsWithoutParamsAcceptAbsentEmptyOrNull() async {
        for params: JSONValue? in [nil, .object([:]), .array([]), .some(.null)] {
            #expect(await call("ping", params) == .success(["pong": true]))
        }
    }

    @Test func unknownMethodIsMinus32601() async {
        let failure = error(await call("nope", nil))
        #expect(failure?.code == .methodNotFound)
        #expect(failure?.message.contains("'nope'") == true)
    }

    @Test(arguments: [
        (["name": 5, "count": 1] as JSONValue, "params.name", "must be a string"),
        (["name": "a", "count": "3"], "params.count", "must be an integer"),
        (["name": "a", "count": 1.5], "params.count", "must be an integer"),
        (["name": "a"], "params.count", "is missing"),
        (["name": nil, "count": 1], "params.name", "is null"),
        (["name": "a", "count": 1, "options": ["depth": true]], "params.options.depth", "must be an integer"),
        (["name": "a", "count": 1, "options": ["depth": 1, "tags": ["ok", 2]]], "params.options.tags[1]", "must be a string"),
        (["name": "a", "count": 1, "options": []], "params.options", "must be an object"),
        ([1, 2], "params", "must be an object"),
    ] as [(JSONValue, String, String)])
    func wrongParamTypesAreMinus32602NamingTheField(params: JSONValue, field: String, complaint: String) async {
        let failure = error(await call("createThing", params))
        #expect(failure?.code == .invalidParams)
        #expect(failure?.errorClass == .badInput)
        #expect(failure?.data?["field"] == .string(field), "\(failure?.message ?? "no error")")
        #expect(failure?.message.contains("'\(field)'") == true, "\(failure?.message ?? "no error")")
        #expect(failure?.message.contains(complaint) == true, "\(failure?.message ?? "no error")")
    }

    @Test func thrownErrorsMapToTheirCodes() async {
        let dispatcher = Dispatcher()
        dispatcher.register(method: "app") { _, _ in throw AppError() }
        dispatcher.register(method: "bug") { _, _ in throw Unclassified() }
        dispatcher.register(method: "cancelled") { _, _ in throw CancellationError() }
        let context = RequestContext(
            id: .int(1), method: "x", connection: ConnectionInfo(id: 0, peer: nil), peer: sender,
            logger: quietLogger)

        let app = error(await dispatcher.dispatch(method: "app", params: nil, context: context).map { _ in JSONValue.null })
        #expect(app?.code == ErrorCode(-31001))
        #expect(app?.errno == 2)
        let bug = error(await dispatcher.dispatch(method: "bug", params: nil, context: context).map { _ in JSONValue.null })
        #expect(bug?.code == .internalError)
        #expect(bug?.errorClass == .fatal)
        let cancelled = error(await dispatcher.dispatch(method: "cancelled", params: nil, context: context).map { _ in JSONValue.null })
        #expect(cancelled?.code == .requestCancelled)
    }

    @Test func methodNamesListEveryRegistration() {
        dispatcher.registerNotification(method: "initialized") { _, _ in }
        #expect(dispatcher.methodNames == ["createThing", "echo", "initialized", "ping", "sleep"])
        #expect(dispatcher.handles("echo"))
        #expect(!dispatcher.handles("$/cancelRequest"))
    }

    @Test func handlersReachThePeerThroughTheirContext() async {
        let dispatcher = Dispatcher()
        dispatcher.register(method: "work") { _, context in
            context.peer.sendProgress(token: .string("t"), value: WorkDoneProgress.begin(title: "Cloning", percentage: 0))
            context.peer.sendProgress(token: .string("t"), value: WorkDoneProgress.end(message: "done"))
            context.peer.logMessage(.info, "cloned")
            return .null
        }
        let context = RequestContext(
            id: .int(1), method: "work", connection: ConnectionInfo(id: 0, peer: nil), peer: sender,
            logger: quietLogger)
        _ = await dispatcher.dispatch(method: "work", params: nil, context: context)
        let sent = sender.sent.withLock { $0 }
        #expect(sent.map(\.0) == ["$/progress", "$/progress", "window/logMessage"])
        #expect(sent[0].1 == ["token": "t", "value": ["kind": "begin", "title": "Cloning", "percentage": 0]])
        #expect(sent[1].1 == ["token": "t", "value": ["kind": "end", "message": "done"]])
        #expect(sent[2].1 == ["type": 3, "message": "cloned"])
    }
}
