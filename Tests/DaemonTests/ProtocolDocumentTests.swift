import Foundation
@testable import MesaDaemon
import MesaMCP
import MesaProtocol
import Model
import Testing

/// protocol.md is the contract: every method the daemon registers has a section.
@Suite struct ProtocolDocumentTests {
    static var protocolDocument: String {
        // Tests/DaemonTests/<this file> → the package root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("protocol.md").path
    }

    /// `### \`name\`` headings of protocol.md.
    static func documentedMethods() throws -> Set<String> {
        let text = try String(contentsOfFile: protocolDocument, encoding: .utf8)
        var names: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("### `"), trimmed.hasSuffix("`") else { continue }
            names.insert(String(trimmed.dropFirst(5).dropLast()))
        }
        return names
    }

    @Test func protocolDocumentsEveryRegisteredMethod() throws {
        let sandbox = try Sandbox()
        let config = DaemonConfig(paths: Paths(environment: sandbox.environment()))
        let orgs = try CredentialResolver.embedded(config, logger: quietLogger)
        let daemon = Daemon(config: config, orgs: orgs, logger: quietLogger)
        let registered = daemon.methodNames
        // The daemon must register the methods of this issue at least; an empty list
        // would make the check below vacuous.
        #expect(registered.count >= 13)
        for method in ["initialize", "initialized", "shutdown", "exit", "whoami", "listOrgs", "listRepos", "getRepo",
                       "createRepo", "deleteRepo", "createEphemeralKey", "listKeys", "revokeKey"] {
            #expect(registered.contains(method), "\(method) is not registered")
        }
        let missing = try Self.undocumented(daemon)
        #expect(missing.isEmpty, "protocol.md has no `### \\`name\\`` section for: \(missing.joined(separator: ", "))")
    }

    /// Registered methods without a section in protocol.md.
    static func undocumented(_ daemon: Daemon) throws -> [String] {
        let documented = try documentedMethods()
        return daemon.methodNames.filter { !documented.contains($0) }
    }

    /// The check itself: a method registered without documentation is reported.
    @Test func anUndocumentedMethodIsDetected() throws {
        let daemon = try InProcessDaemon()
        daemon.daemon.dispatcher.register(method: "undocumentedTestMethod") { _, _ in .null }
        #expect(try Self.undocumented(daemon.daemon) == ["undocumentedTestMethod"])
    }

    /// `initialize` advertises exactly the registered methods.
    @Test func initializeListsEveryMethod() async throws {
        let daemon = try InProcessDaemon()
        let result = try await daemon.call(Initialize.self, .init(clientInfo: .init(name: "tests", version: "1")))
        #expect(result.serverInfo.name == "mesad")
        #expect(result.serverInfo.version == Daemon.version)
        #expect(result.protocolVersion == Daemon.protocolVersion)
        #expect(result.capabilities.methods == daemon.daemon.methodNames)
        #expect(result.capabilities.notifications.contains("$/progress"))
        #expect(result.capabilities.notifications.contains("window/logMessage"))
    }

    /// The params protocol.md documents for each method: the names in its section's
    /// "Params: …" text (up to "Result:"), which may wrap over lines.
    static func documentedParams() throws -> [String: Set<String>] {
        let text = try String(contentsOfFile: protocolDocument, encoding: .utf8)
        var sections: [String: String] = [:]
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("### `"), trimmed.hasSuffix("`") {
                current = String(trimmed.dropFirst(5).dropLast())
            } else if trimmed.hasPrefix("#") {
                current = nil
            } else if let current {
                sections[current, default: ""] += trimmed + " "
            }
        }
        return sections.compactMapValues { body -> Set<String>? in
            guard let start = body.range(of: "Params:") else { return nil }
            let rest = body[start.upperBound...]
            let span = rest.range(of: "Result:").map { rest[..<$0.lowerBound] } ?? rest
            let words = span.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init)
            return Set(words)
        }
    }

    /// MCP tools name mesad methods by string and carry hand-written input schemas: each
    /// must call a method the daemon registers, and every property of its schema must be
    /// a param protocol.md documents for that method (arguments are passed through as the
    /// params, and the decoder ignores unknown keys, so a misspelled property would be
    /// silently dropped).
    @Test func everyMCPToolCallsARegisteredMethodWithDocumentedParams() throws {
        let daemon = try InProcessDaemon()
        let registered = Set(daemon.daemon.methodNames)
        let documented = try Self.documentedParams()
        #expect(MCPTool.catalogue.count >= 10)
        for tool in MCPTool.catalogue {
            #expect(registered.contains(tool.method), "MCP tool \(tool.name) calls \(tool.method), which mesad does not register")
            let properties = tool.inputSchema["properties"]?.objectValue?.keys.sorted() ?? []
            let params = documented[tool.method] ?? []
            let undocumented = properties.filter { !params.contains($0) }
            #expect(undocumented.isEmpty,
                    "MCP tool \(tool.name): \(undocumented) are not params of \(tool.method) in protocol.md")
        }
    }

    /// Tools derive their schemas from the params types: arguments holding a sample value
    /// for every schema property (nested ones too) decode as the method's params and
    /// encode back with all of them, so no property is one the daemon ignores; leaving
    /// out a required property fails to decode, as it would in the daemon.
    @Test func everyMCPToolPropertyIsAParamItsMethodReads() throws {
        for tool in MCPTool.catalogue {
            let arguments = Self.sample(tool.inputSchema)
            let params = try tool.asParams(arguments)
            #expect(Self.dropped(arguments, params).isEmpty,
                    "MCP tool \(tool.name): \(Self.dropped(arguments, params)) are not read by \(tool.method)")
            for required in tool.inputSchema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                var without = arguments.objectValue ?? [:]
                without[required] = nil
                #expect(throws: DecodingError.self, "\(tool.name) works without '\(required)'") { try tool.asParams(.object(without)) }
            }
        }
    }

    /// A value of each schema type (the first of an enum, the minimum of a range).
    static func sample(_ schema: JSONValue) -> JSONValue {
        switch schema["type"]?.stringValue {
        case "object": .object(schema["properties"]?.objectValue?.mapValues(sample) ?? [:])
        case "array": [schema["items"].map(sample) ?? "x"]
        case "integer": schema["minimum"] ?? 1
        case "boolean": true
        default: schema["enum"]?.arrayValue?.first ?? "x"
        }
    }

    /// The members of `sent` (at any depth) that `read` lacks.
    static func dropped(_ sent: JSONValue, _ read: JSONValue, at path: String = "") -> [String] {
        guard let sent = sent.objectValue else { return [] }
        return sent.sorted { $0.key < $1.key }.flatMap { key, value in
            read[key].map { dropped(value, $0, at: path + key + ".") } ?? [path + key]
        }
    }

    /// The derivation check finds a property no params type reads.
    @Test func aPropertyTheMethodDoesNotReadIsDetected() throws {
        let checkpoint = try #require(MCPTool.catalogue.first { $0.method == Checkpoint.name })
        let arguments: JSONValue = ["mountId": "local/demo", "mesage": "typo", "message": "ok"]
        #expect(Self.dropped(arguments, try checkpoint.asParams(arguments)) == ["mesage"])
    }

    /// The check above finds a schema property the method does not take.
    @Test func aMisspelledToolPropertyIsDetected() throws {
        let documented = try Self.documentedParams()
        let listRepos = try #require(documented["listRepos"])
        #expect(listRepos.contains("cursor") && listRepos.contains("limit"))
        #expect(!listRepos.contains("cursorr"))
    }
}
