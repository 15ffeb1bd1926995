import Foundation
import Infra
import RPC

/// Merging mesa's hooks into a Claude Code `settings.json` and taking exactly them out
/// again. Everything else in the file is kept: other settings, other hooks, other entries
/// of the same events. Ours are recognised by their command (`…/mesa-client hook …`).
public enum ClaudeSettings {
    public struct Entry: Sendable, Equatable {
        public let event: String
        public let matcher: String?
        public let command: String
    }

    /// Seconds Claude Code gives each hook; `mesa-client hook` gives up after 10 on its own.
    public static let timeout = 20

    /// The hooks `mesa hooks install` adds, for `client` (the mesa-client to run).
    public static func entries(client: String, sessionBookmarks: Bool) -> [Entry] {
        let program = shellQuoted(client)
        let flag = sessionBookmarks ? " --session-bookmarks" : ""
        return [
            Entry(event: "SessionStart", matcher: nil, command: "\(program) hook SessionStart\(flag)"),
            Entry(event: "UserPromptSubmit", matcher: nil, command: "\(program) hook UserPromptSubmit\(flag)"),
            Entry(event: "PreToolUse", matcher: "Write|Edit|MultiEdit|NotebookEdit", command: "\(program) hook PreToolUse"),
            Entry(event: "PostToolUse", matcher: "Write|Edit|MultiEdit|NotebookEdit|Bash", command: "\(program) hook PostToolUse"),
            Entry(event: "Stop", matcher: nil, command: "\(program) hook Stop\(flag)"),
        ]
    }

    /// Whether a hook command is one of ours: `mesa-client hook …`, whatever its path.
    public static func isOurs(_ command: String) -> Bool {
        var rest = Substring(command.trimmingCharacters(in: .whitespaces))
        let program: Substring
        if let quote = rest.first, quote == "'" || quote == "\"", let end = rest.dropFirst().firstIndex(of: quote) {
            program = rest[rest.index(after: rest.startIndex)..<end]  // a quoted path may hold spaces
            rest = rest[rest.index(after: end)...]
        } else {
            program = rest.prefix { $0 != " " && $0 != "\t" }
            rest = rest.dropFirst(program.count)
        }
        let next = rest.split(whereSeparator: { $0 == " " || $0 == "\t" }).first
        return (String(program) as NSString).lastPathComponent == "mesa-client" && next == "hook"
    }

    /// `settings` (nil: no file yet) with our hooks in it, once. Installing twice gives
    /// the same file; installing with other options replaces ours.
    public static func install(into settings: JSONValue?, entries: [Entry]) throws(HookError) -> JSONValue {
        guard case .object(var root) = try uninstall(from: settings ?? .object([:])) else {
            throw HookError("settings.json must hold a JSON object")
        }
        var hooks: [String: JSONValue] = [:]
        switch root["hooks"] {
        case nil: break
        case .object(let existing)?: hooks = existing
        case let other?: throw HookError("settings.json: \"hooks\" must be an object, not \(other.typeName)")
        }
        for entry in entries {
            var groups: [JSONValue] = []
            switch hooks[entry.event] {
            case nil: break
            case .array(let existing)?: groups = existing
            case let other?: throw HookError("settings.json: hooks.\(entry.event) must be an array, not \(other.typeName)")
            }
            var group: [String: JSONValue] = [
                "hooks": [["type": "command", "command": .string(entry.command), "timeout": .int(timeout)]],
            ]
            if let matcher = entry.matcher { group["matcher"] = .string(matcher) }
            groups.append(.object(group))
            hooks[entry.event] = .array(groups)
        }
        root["hooks"] = .object(hooks)
        return .object(root)
    }

    /// `settings` without our hooks. Matcher groups, event lists and the `hooks` object
    /// are removed only when removing ours emptied them.
    public static func uninstall(from settings: JSONValue) throws(HookError) -> JSONValue {
        guard case .object(var root) = settings else { throw HookError("settings.json must hold a JSON object") }
        guard case .object(var hooks)? = root["hooks"] else { return settings }
        for (event, value) in hooks {
            guard case .array(let groups) = value else { continue }
            var kept: [JSONValue] = []
            for group in groups {
                guard case .object(var fields) = group, case .array(let commands)? = fields["hooks"] else {
                    kept.append(group)
                    continue
                }
                let others = commands.filter { !isOurs($0["command"]?.stringValue ?? "") }
                if others.count == commands.count {
                    kept.append(group)
                } else if !others.isEmpty {
                    fields["hooks"] = .array(others)
                    kept.append(.object(fields))
                }
            }
            if kept.isEmpty && !groups.isEmpty { hooks[event] = nil } else { hooks[event] = .array(kept) }
        }
        if case .object(let before)? = root["hooks"], !before.isEmpty, hooks.isEmpty {
            root["hooks"] = nil
        } else {
            root["hooks"] = .object(hooks)
        }
        return .object(root)
    }

    // MARK: Files

    /// `DIR/.claude/settings.json`, or the user's `~/.claude/settings.json`.
    public static func path(project: String?, home: String) -> String {
        if let project { return (project.hasSuffix("/") ? String(project.dropLast()) : project) + "/.claude/settings.json" }
        return home + "/.claude/settings.json"
    }

    /// The file's JSON, or nil when it does not exist (an empty file counts as `{}`).
    public static func load(_ path: String) throws(HookError) -> JSONValue? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) { throw HookError("cannot read \(path)") }
            return nil
        }
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([:]) }
        do { return try JSONValue.parse(Array(data)) } catch {
            throw HookError("\(path) is not valid JSON (\(error)); fix it first, nothing was changed")
        }
    }

    /// Writes pretty JSON atomically (temporary file + rename), keeping the file's mode.
    public static func save(_ settings: JSONValue, to path: String) throws(HookError) {
        let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? 0o644
        do { try AtomicFile.write(path, (pretty(settings) + "\n").utf8, mode: mode_t(mode)) } catch { throw HookError(error.description) }
    }

    /// JSON as people (and Claude Code) write settings files: two-space indent,
    /// `"key": value`, keys sorted (a JSON object's order carries no meaning).
    public static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let items) where !items.isEmpty:
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let fields) where !fields.isEmpty:
            return "{\n" + fields.keys.sorted().map { key in
                inner + String(decoding: JSONValue.string(key).serialized, as: UTF8.self) + ": " + pretty(fields[key] ?? .null, indent: inner)
            }.joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return String(decoding: value.serialized, as: UTF8.self)
        }
    }

    static func shellQuoted(_ text: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+=:@")
        if !text.isEmpty && text.allSatisfy(safe.contains) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
