import Client
import Foundation
import RPC
import Testing

@Suite struct ClaudeSettingsTests {
    static let entries = ClaudeSettings.entries(client: "/usr/local/bin/mesa-client", sessionBookmarks: false)

    static func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    /// Every hook command under `event`, in order.
    static func commands(_ settings: JSONValue, _ event: String) -> [String] {
        (settings["hooks"]?[event]?.arrayValue ?? []).flatMap { group in
            (group["hooks"]?.arrayValue ?? []).compactMap { $0["command"]?.stringValue }
        }
    }

    @Test func installIntoNothingAddsFiveEventsWithMatchers() throws {
        let settings = try ClaudeSettings.install(into: nil, entries: Self.entries)
        #expect(Set(settings["hooks"]?.objectValue?.keys.map { $0 } ?? []) == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"])
        #expect(Self.commands(settings, "Stop") == ["/usr/local/bin/mesa-client hook Stop"])
        #expect(settings["hooks"]?["PreToolUse"]?.arrayValue?.first?["matcher"]?.stringValue == "Write|Edit|MultiEdit|NotebookEdit")
        #expect(settings["hooks"]?["PostToolUse"]?.arrayValue?.first?["matcher"]?.stringValue == "Write|Edit|MultiEdit|NotebookEdit|Bash")
        #expect(settings["hooks"]?["Stop"]?.arrayValue?.first?["matcher"] == nil)
        let hook = settings["hooks"]?["Stop"]?.arrayValue?.first?["hooks"]?.arrayValue?.first
        #expect(hook?["type"]?.stringValue == "command")
        #expect(hook?["timeout"]?.intValue == ClaudeSettings.timeout)
    }

    @Test func installKeepsEverythingElseAndIsIdempotent() throws {
        let existing = try Self.parse("""
            {"model": "opus", "permissions": {"allow": ["Bash(git status)"]},
             "hooks": {"PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}],
                       "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}]}}
            """)
        let once = try ClaudeSettings.install(into: existing, entries: Self.entries)
        let twice = try ClaudeSettings.install(into: once, entries: Self.entries)
        #expect(once == twice)
        #expect(once["model"]?.stringValue == "opus")
        #expect(once["permissions"] == existing["permissions"])
        #expect(Self.commands(once, "PostToolUse") == ["prettier --write", "/usr/local/bin/mesa-client hook PostToolUse"])
        #expect(Self.commands(once, "Notification") == ["notify-send hi"])
    }

    @Test func reinstallingWithOtherOptionsReplacesOurs() throws {
        let plain = try ClaudeSettings.install(into: nil, entries: Self.entries)
        let withBookmarks = try ClaudeSettings.install(
            into: plain, entries: ClaudeSettings.entries(client: "/opt/mesa/bin/mesa-client", sessionBookmarks: true))
        #expect(Self.commands(withBookmarks, "Stop") == ["/opt/mesa/bin/mesa-client hook Stop --session-bookmarks"])
        #expect(Self.commands(withBookmarks, "PreToolUse") == ["/opt/mesa/bin/mesa-client hook PreToolUse"])
    }

    @Test func uninstallRemovesExactlyOurs() throws {
        let existing = try Self.parse("""
            {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"},
                                           {"type": "command", "command": "'/my dir/mesa-client' hook Stop"}]}],
                       "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}],
                       "SubagentStop": []},
             "env": {"A": "1"}}
            """)
        let installed = try ClaudeSettings.install(into: existing, entries: Self.entries)
        let removed = try ClaudeSettings.uninstall(from: installed)
        #expect(Self.commands(removed, "Stop") == ["say done"])
        #expect(Self.commands(removed, "PreToolUse") == ["guard.sh"])
        #expect(removed["hooks"]?["SessionStart"] == nil)
        #expect(removed["hooks"]?["SubagentStop"] == .array([]))
        #expect(removed["env"] == existing["env"])
        // Nothing of ours left: uninstalling again changes nothing.
        #expect(try ClaudeSettings.uninstall(from: removed) == removed)
    }

    @Test func uninstallDropsTheHooksObjectItEmptied() throws {
        let installed = try ClaudeSettings.install(into: try Self.parse(#"{"theme": "dark"}"#), entries: Self.entries)
        #expect(try ClaudeSettings.uninstall(from: installed) == (try Self.parse(#"{"theme": "dark"}"#)))
    }

    @Test func recognisesOurCommandsOnly() {
        #expect(ClaudeSettings.isOurs("mesa-client hook Stop"))
        #expect(ClaudeSettings.isOurs("/usr/local/bin/mesa-client hook PostToolUse"))
        #expect(ClaudeSettings.isOurs("'/path with space/mesa-client' hook Stop --session-bookmarks"))
        #expect(!ClaudeSettings.isOurs("mesa-client watch"))
        #expect(!ClaudeSettings.isOurs("my-mesa-client hook Stop"))
        #expect(!ClaudeSettings.isOurs("echo mesa-client hook"))
    }

    @Test func refusesWhatIsNotASettingsObject() throws {
        #expect(throws: HookError.self) { try ClaudeSettings.install(into: .array([]), entries: Self.entries) }
        #expect(throws: HookError.self) { try ClaudeSettings.install(into: try Self.parse(#"{"hooks": []}"#), entries: Self.entries) }
    }

    @Test func prettyPrintsLikeAHuman() throws {
        let value = try Self.parse(#"{"b": [1, {"x": "a/b \"q\""}], "a": {}, "c": [], "d": true}"#)
        #expect(ClaudeSettings.pretty(value) == """
            {
              "a": {},
              "b": [
                1,
                {
                  "x": "a/b \\"q\\""
                }
              ],
              "c": [],
              "d": true
            }
            """)
        #expect(try Self.parse(ClaudeSettings.pretty(value)) == value)
    }

    @Test func filesRoundTripAndKeepTheirMode() throws {
        let directory = NSTemporaryDirectory() + "mesa-settings-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = ClaudeSettings.path(project: directory, home: "/nonexistent")
        #expect(path == directory + "/.claude/settings.json")
        #expect(try ClaudeSettings.load(path) == nil)
        try ClaudeSettings.save(try ClaudeSettings.install(into: nil, entries: Self.entries), to: path)
        chmod(path, 0o600)
        try ClaudeSettings.save(try ClaudeSettings.uninstall(from: try #require(try ClaudeSettings.load(path))), to: path)
        #expect(try ClaudeSettings.load(path) == .object([:]))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        try "not json".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: HookError.self) { try ClaudeSettings.load(path) }
    }
}
