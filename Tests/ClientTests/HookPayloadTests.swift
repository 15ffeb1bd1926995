import Client
import Foundation
import RPC
import Testing

/// Recorded hook inputs (Tests/Fixtures/claude-hooks) with their placeholders filled.
enum HookFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/claude-hooks").path

    static func text(_ name: String, session: String = "0f5b3c2e-7d4a-4a8e-9a43-1c2d3e4f5a6b", cwd: String = "/work/repo",
                     file: String = "/work/repo/src/hello.py", relative: String = "src/hello.py") throws -> String {
        let raw = try String(contentsOfFile: directory + "/\(name).json", encoding: .utf8)
        return raw.replacingOccurrences(of: "{{SESSION}}", with: session).replacingOccurrences(of: "{{CWD}}", with: cwd)
            .replacingOccurrences(of: "{{FILE}}", with: file).replacingOccurrences(of: "{{RELATIVE}}", with: relative)
    }

    static func payload(_ name: String, cwd: String = "/work/repo") throws -> HookPayload {
        try HookPayload.parse(Array(try text(name, cwd: cwd).utf8))
    }
}

@Suite struct HookPayloadTests {
    @Test func sessionStartCarriesSessionCwdAndSource() throws {
        let payload = try HookFixture.payload("SessionStart")
        #expect(payload.sessionId == "0f5b3c2e-7d4a-4a8e-9a43-1c2d3e4f5a6b")
        #expect(payload.hookEventName == "SessionStart")
        #expect(payload.source == "startup")
        #expect(payload.workingDirectory == "/work/repo")
        #expect(payload.editedFile == nil)
    }

    @Test func userPromptSubmitKeepsThePromptVerbatim() throws {
        let payload = try HookFixture.payload("UserPromptSubmit")
        #expect(payload.prompt == "Add a greeting module\n\nIt should print \"hello\" and take a name.")
        #expect(payload.permissionMode == "default")
    }

    @Test func writeAndMultiEditNameTheirFile() throws {
        for name in ["PreToolUse-Write", "PostToolUse-Write", "PostToolUse-MultiEdit"] {
            let payload = try HookFixture.payload(name)
            #expect(payload.isFileEdit, "\(name)")
            #expect(payload.editedFile == "/work/repo/src/hello.py", "\(name)")
        }
        #expect(try HookFixture.payload("PostToolUse-Write").toolResponse?["type"]?.stringValue == "create")
    }

    @Test func aRelativeFilePathIsTakenFromCwd() throws {
        let payload = try HookFixture.payload("PostToolUse-Edit", cwd: "/work/repo/sub")
        #expect(payload.editedFile == "/work/repo/sub/src/hello.py")
        let dotted = try HookPayload.parse(Array(#"{"session_id":"s","cwd":"/a/b","tool_name":"Edit","tool_input":{"file_path":"../c/./d.txt"}}"#.utf8))
        #expect(dotted.editedFile == "/a/c/d.txt")
    }

    @Test func bashIsNotAFileEditButKeepsItsCommand() throws {
        let payload = try HookFixture.payload("PostToolUse-Bash")
        #expect(payload.toolName == "Bash")
        #expect(!payload.isFileEdit)
        #expect(payload.editedFile == nil)
        #expect(payload.toolInput?["command"]?.stringValue == "mkdir -p docs && echo notes > docs/notes.md")
        #expect(payload.toolResponse?["interrupted"]?.boolValue == false)
    }

    @Test func stopReadsStopHookActive() throws {
        #expect(try HookFixture.payload("Stop").stopHookActive == false)
    }

    @Test func unknownFieldsAreIgnoredAndMissingOnesTolerated() throws {
        let payload = try HookPayload.parse(Array(#"{"session_id":"x","hook_event_name":"Notification","message":"hi","future_field":{"a":[1]}}"#.utf8))
        #expect(payload.sessionId == "x")
        #expect(payload.cwd == nil)
        #expect(try HookPayload.parse(Array("{}".utf8)).sessionId == "unknown-session")
    }

    @Test func badInputIsExplained() {
        #expect(throws: HookError.self) { try HookPayload.parse([]) }
        do {
            _ = try HookPayload.parse(Array("not json".utf8))
            Issue.record("parsed garbage")
        } catch {
            #expect(error.message.contains("JSON object"))
        }
        do {
            _ = try HookPayload.parse(Array(#"{"session_id":"s","prompt":42}"#.utf8))
            Issue.record("accepted a number as prompt")
        } catch {
            #expect(error.message.contains("prompt"), "\(error.message)")
        }
    }
}

@Suite struct CheckpointMessageTests {
    @Test func titleComesFromTheFirstPromptLineAndBodyListsPromptsAndFiles() {
        let message = CheckpointMessage.make(prompts: ["Add a greeting module\n\nprint hello", "  also a test  "],
                                             files: ["src/hello.py", "tests/test_hello.py"], sessionId: "s1")
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "Add a greeting module")
        #expect(message.contains("Prompts:\n> Add a greeting module\n> \n> print hello\n\n> also a test"))
        #expect(message.contains("Files:\n- src/hello.py\n- tests/test_hello.py"))
        #expect(message.hasSuffix("Session: s1"))
    }

    @Test func withoutPromptsTheFilesMakeTheTitle() {
        #expect(CheckpointMessage.make(prompts: [], files: ["a", "b", "c", "d"], sessionId: "s").hasPrefix("Edit a, b, c, …\n"))
        #expect(CheckpointMessage.make(prompts: ["   "], files: [], sessionId: "s").hasPrefix("Agent session s\n"))
    }

    @Test func longTitlesAndFileListsAreCut() {
        let message = CheckpointMessage.make(prompts: [String(repeating: "x", count: 200)], files: (1...60).map { "f\($0)" }, sessionId: "s")
        #expect(message.split(separator: "\n").first?.count == 72)
        #expect(message.contains("- … and 10 more"))
        #expect(!message.contains("- f51\n"))
    }
}

@Suite struct HookStateTests {
    @Test func sessionIdsBecomeSafeFileNames() {
        #expect(HookStateStore.fileName("0f5b3c2e-7d4a") == "0f5b3c2e-7d4a.json")
        let hostile = HookStateStore.fileName("../../etc/passwd")
        #expect(!hostile.contains("/"))
        #expect(hostile != HookStateStore.fileName("etcpasswd"))
        #expect(HookStateStore.fileName("") .hasSuffix(".json"))
    }

    @Test func updatesPersistAndAccumulate() throws {
        let directory = NSTemporaryDirectory() + "mesa-hookstate-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = HookStateStore(directory: directory)
        try store.update("s") { $0.prompts.append("one") }
        try store.update("s") { $0.prompts.append("two"); $0.mounts.append("local/demo") }
        let loaded = store.load("s")
        #expect(loaded.prompts == ["one", "two"])
        #expect(loaded.mounts == ["local/demo"])
        #expect(store.load("other").prompts.isEmpty)
        let mode = try FileManager.default.attributesOfItem(atPath: store.path("s"))[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
    }
}
