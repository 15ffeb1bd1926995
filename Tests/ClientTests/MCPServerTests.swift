import Foundation
import MesaMCP
import RPC
import Synchronization
import Testing

/// The MCP server without a daemon: tools call a recording stand-in.
@Suite struct MCPServerTests {
    final class Recorder: Sendable {
        let calls = Mutex<[(String, JSONValue)]>([])
        var all: [(String, JSONValue)] { calls.withLock { $0 } }
    }

    static func server(_ recorder: Recorder = Recorder(),
                       answer: @escaping @Sendable (String, JSONValue) throws -> JSONValue = { _, _ in ["ok": true] }) -> MCPServer {
        MCPServer(version: "9.9.9") { method, params in
            recorder.calls.withLock { $0.append((method, params)) }
            return try answer(method, params)
        }
    }

    @Test func initializeEchoesASupportedVersionElseOffersTheLatest() async throws {
        let server = Self.server()
        for version in MCPServer.supportedProtocolVersions {
            let result = try await server.handle(method: "initialize", params: ["protocolVersion": .string(version), "capabilities": [:]]).get()
            #expect(result["protocolVersion"]?.stringValue == version)
        }
        let future = try await server.handle(method: "initialize", params: ["protocolVersion": "2099-01-01"]).get()
        #expect(future["protocolVersion"]?.stringValue == MCPServer.latestProtocolVersion)
        #expect(future["serverInfo"]?["name"]?.stringValue == "mesad")
        #expect(future["serverInfo"]?["version"]?.stringValue == "9.9.9")
        #expect(future["capabilities"]?["tools"] != nil)
    }

    @Test func listsEveryToolWithAnObjectSchemaAndDescription() async throws {
        let tools = try await Self.server().handle(method: "tools/list", params: nil).get()["tools"]?.arrayValue ?? []
        let names = tools.compactMap { $0["name"]?.stringValue }
        #expect(Set(names) == ["mount", "unmount", "list_mounts", "status", "flush", "checkpoint", "list_changes", "diff", "show",
                               "list_bookmarks", "create_bookmark", "move_bookmark", "list_repos", "create_repo", "create_ephemeral_key"])
        for tool in tools {
            #expect(tool["inputSchema"]?["type"]?.stringValue == "object", "\(tool)")
            #expect((tool["description"]?.stringValue?.count ?? 0) > 20, "\(tool)")
        }
        let createRepo = tools.first { $0["name"]?.stringValue == "create_repo" }
        #expect(createRepo?["inputSchema"]?["required"] == ["name"])
    }

    @Test func aToolCallsItsMethodWithTheArgumentsAndReturnsTextAndStructuredContent() async throws {
        let recorder = Recorder()
        let server = Self.server(recorder) { _, _ in ["repos": [], "hasMore": false] }
        let result = try await server.handle(method: "tools/call", params: ["name": "list_repos", "arguments": ["limit": 5]]).get()
        #expect(recorder.all.map(\.0) == ["listRepos"])
        #expect(recorder.all.first?.1 == ["limit": 5])
        #expect(result["isError"] == false)
        #expect(result["structuredContent"] == ["repos": [], "hasMore": false])
        let text = result["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
        #expect(try JSONValue.parse(Array(text.utf8)) == ["repos": [], "hasMore": false])
    }

    @Test func aFailingMethodIsAToolErrorTheModelCanRead() async throws {
        let server = Self.server { _, _ in
            throw ResponseError(code: ErrorCode(-32002), message: "repository 'local/demo' already exists", errorClass: .badInput,
                                extra: ["code": "ALREADY_EXISTS"])
        }
        let result = try await server.handle(method: "tools/call", params: ["name": "create_repo", "arguments": ["name": "demo"]]).get()
        #expect(result["isError"] == true)
        #expect(result["content"]?.arrayValue?.first?["text"]?.stringValue == "repository 'local/demo' already exists [ALREADY_EXISTS]")
    }

    @Test func protocolMisuseIsAJSONRPCError() async throws {
        let server = Self.server()
        guard case .failure(let unknown) = await server.handle(method: "tools/call", params: ["name": "format_disk"]) else {
            Issue.record("an unknown tool was run")
            return
        }
        #expect(unknown.code == .invalidParams)
        #expect(unknown.message.contains("format_disk"))
        guard case .failure(let missing) = await server.handle(method: "resources/list", params: nil) else {
            Issue.record("an unknown method was answered")
            return
        }
        #expect(missing.code == .methodNotFound)
        let notObject = try? await server.handle(method: "tools/call", params: ["name": "status", "arguments": [1]]).get()
        #expect(notObject?["isError"] == true)
        #expect(try await server.handle(method: "ping", params: nil).get() == .object([:]))
    }
}
