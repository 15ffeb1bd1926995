import Foundation
import RPC

/// What Claude Code sends a command hook on stdin (its hooks reference): common fields
/// for every event, plus the event's own. Unknown fields are ignored, so newer Claude
/// Code versions keep working.
public struct HookPayload: Decodable, Sendable, Equatable {
    /// "unknown-session" when Claude Code sent none.
    public var sessionId: String { sentSessionId ?? "unknown-session" }
    var sentSessionId: String?
    public var transcriptPath: String?
    public var cwd: String?
    public var hookEventName: String?
    public var permissionMode: String?
    /// SessionStart: startup, resume, clear or compact.
    public var source: String?
    /// UserPromptSubmit.
    public var prompt: String?
    /// PreToolUse / PostToolUse.
    public var toolName: String?
    public var toolInput: JSONValue?
    public var toolResponse: JSONValue?
    /// Stop / SubagentStop: true when Claude already continues because of a stop hook.
    public var stopHookActive: Bool?
    /// SessionEnd.
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case sentSessionId = "session_id", transcriptPath = "transcript_path", cwd, hookEventName = "hook_event_name"
        case permissionMode = "permission_mode", source, prompt, toolName = "tool_name", toolInput = "tool_input"
        case toolResponse = "tool_response", stopHookActive = "stop_hook_active", reason
    }

    /// Parses stdin; the error says what is wrong in terms of the hook contract.
    public static func parse(_ bytes: [UInt8]) throws(HookError) -> HookPayload {
        guard !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            throw HookError("no hook input on stdin: Claude Code sends the event as a JSON object")
        }
        do {
            return try JSONDecoder().decode(HookPayload.self, from: Data(bytes))
        } catch DecodingError.typeMismatch(_, let context) {
            throw HookError("hook input field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw HookError("hook input is not a JSON object as Claude Code sends: \(error.localizedDescription)")
        }
    }

    /// Tools whose `tool_input` names the file they write.
    public static let fileTools: Set<String> = ["Write", "Edit", "MultiEdit", "NotebookEdit"]

    public var isFileEdit: Bool { toolName.map(Self.fileTools.contains) ?? false }

    /// The file a Write/Edit/MultiEdit/NotebookEdit touches, absolute (a relative one is
    /// taken from `cwd`), with `.` and `..` resolved.
    public var editedFile: String? {
        guard isFileEdit, let input = toolInput else { return nil }
        guard let raw = input["file_path"]?.stringValue ?? input["notebook_path"]?.stringValue, !raw.isEmpty else { return nil }
        return Self.absolute(raw, relativeTo: cwd)
    }

    /// The directory the agent works in, absolute.
    public var workingDirectory: String? {
        cwd.flatMap { $0.isEmpty ? nil : Self.absolute($0, relativeTo: nil) }
    }

    static func absolute(_ path: String, relativeTo base: String?) -> String {
        let joined = path.hasPrefix("/") ? path : (base ?? FileManager.default.currentDirectoryPath) + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// A hook failure with the message for stderr (what Claude Code shows).
public struct HookError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Turns the prompts of a piece of work and the files it changed into a checkpoint
/// message: a short title from the first prompt, the prompts, the files, the session.
public enum CheckpointMessage {
    public static func make(prompts: [String], files: [String], sessionId: String) -> String {
        let cleaned = prompts.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        let title: String
        if let first = cleaned.first, let line = first.split(separator: "\n").first {
            title = truncate(String(line).trimmingCharacters(in: .whitespaces), to: 72)
        } else if files.isEmpty {
            title = "Agent session \(sessionId)"
        } else {
            title = "Edit " + truncate(files.prefix(3).joined(separator: ", ") + (files.count > 3 ? ", …" : ""), to: 67)
        }
        var sections = [title]
        if !cleaned.isEmpty {
            sections.append((cleaned.count == 1 ? "Prompt:\n" : "Prompts:\n")
                            + cleaned.map { "> " + truncate($0, to: 2000).replacingOccurrences(of: "\n", with: "\n> ") }
                                .joined(separator: "\n\n"))
        }
        if !files.isEmpty {
            let shown = files.prefix(50).map { "- \($0)" }.joined(separator: "\n")
            sections.append("Files:\n" + shown + (files.count > 50 ? "\n- … and \(files.count - 50) more" : ""))
        }
        sections.append("Session: \(sessionId)")
        return sections.joined(separator: "\n\n")
    }

    static func truncate(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }
}
