import Foundation
import RPC

/// The Model Context Protocol face of mesad: `initialize`, `ping`, `tools/list` and
/// `tools/call`, each tool being one mesad JSON-RPC method with the same arguments.
///
/// Transport-free: `handle` maps one request to its answer, so tests drive it directly and
/// `MCPStdio` only moves lines. Tools run through `call`, which mesad points at its own
/// daemon (over the socket), so MCP, hooks and the CLIs share one daemon and its mounts.
public final class MCPServer: Sendable {
    /// Calls a mesad method with JSON params; throws `ResponseError` for mesad's errors.
    public typealias Call = @Sendable (_ method: String, _ params: JSONValue) async throws -> JSONValue

    /// Revisions of MCP this server speaks (all use the same four methods), oldest first.
    public static let supportedProtocolVersions = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]
    public static var latestProtocolVersion: String { supportedProtocolVersions[supportedProtocolVersions.count - 1] }

    let call: Call
    let version: String
    public let tools: [MCPTool]

    public init(version: String, tools: [MCPTool] = MCPTool.catalogue, call: @escaping Call) {
        self.version = version
        self.tools = tools
        self.call = call
    }

    /// Answers one request. Never throws: a failing tool is a result with `isError`, as
    /// MCP asks, so the model sees the reason; protocol misuse is a JSON-RPC error.
    public func handle(method: String, params: JSONValue?) async -> Result<JSONValue, ResponseError> {
        switch method {
        case "initialize": return .success(initialize(params))
        case "ping": return .success(.object([:]))
        case "tools/list": return .success(.object(["tools": .array(tools.map(\.listing))]))
        case "tools/call": return await callTool(params)
        default: return .failure(.methodNotFound(method))
        }
    }

    /// The client's revision when we speak it, else our newest (the client then decides).
    func initialize(_ params: JSONValue?) -> JSONValue {
        let requested = params?["protocolVersion"]?.stringValue
        let chosen = requested.flatMap { Self.supportedProtocolVersions.contains($0) ? $0 : nil } ?? Self.latestProtocolVersion
        return .object([
            "protocolVersion": .string(chosen),
            "capabilities": .object(["tools": .object(["listChanged": .bool(false)])]),
            "serverInfo": .object(["name": "mesad", "title": "Mesa versioned filesystem", "version": .string(version)]),
            "instructions": .string(Self.instructions),
        ])
    }

    static let instructions = """
        mesad mounts Mesa repositories as plain directories and versions every edit. Files written \
        in a mount are saved as a working change within about a second; `checkpoint` describes that \
        change and moves the mount's bookmark onto it. Use `list_mounts` / `status` to see where \
        repositories are mounted, `mount` to mount one, `show` / `diff` / `list_changes` to review work.
        """

    private func callTool(_ params: JSONValue?) async -> Result<JSONValue, ResponseError> {
        guard let name = params?["name"]?.stringValue else {
            return .failure(.invalidParams("tools/call needs 'name', the tool to run (see tools/list)", field: "params.name"))
        }
        guard let tool = tools.first(where: { $0.name == name }) else {
            return .failure(.invalidParams("Unknown tool: '\(name)'; tools are \(tools.map(\.name).joined(separator: ", "))",
                                           field: "params.name"))
        }
        let arguments = params?["arguments"] ?? .object([:])
        guard case .object = arguments else {
            return .success(Self.toolError("'arguments' must be a JSON object, got \(arguments.typeName)"))
        }
        do {
            let result = try await call(tool.method, arguments)
            return .success(Self.toolResult(result))
        } catch let error as ResponseError {
            let code = error.data?["code"]?.stringValue.map { " [\($0)]" } ?? ""
            return .success(Self.toolError(error.message + code))
        } catch is CancellationError {
            return .failure(.cancelled("tools/call '\(name)' was cancelled"))
        } catch {
            return .success(Self.toolError("\(error)"))
        }
    }

    /// The result as text (what every client shows the model) and as structured content.
    static func toolResult(_ value: JSONValue) -> JSONValue {
        var fields: [String: JSONValue] = [
            "content": .array([.object(["type": "text", "text": .string(prettyJSON(value))])]),
            "isError": false,
        ]
        if case .object = value { fields["structuredContent"] = value }
        return .object(fields)
    }

    static func toolError(_ message: String) -> JSONValue {
        .object(["content": .array([.object(["type": "text", "text": .string(message)])]), "isError": true])
    }

    static func prettyJSON(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return String(decoding: value.serialized, as: UTF8.self) }
        return String(decoding: data, as: UTF8.self)
    }
}
