import Foundation
import MesaProtocol
import RPC

/// What a hook run ends with: Claude Code reads the exit status (0 fine, 2 block with
/// stderr as the reason, anything else a non-blocking error), stdout and stderr.
public struct HookOutcome: Sendable, Equatable {
    public var status: Int32
    public var stdout: String?
    public var stderr: String?

    public static let done = HookOutcome(status: 0)
    public static func output(_ text: String) -> HookOutcome { HookOutcome(status: 0, stdout: text) }
    public static func failed(_ message: String) -> HookOutcome { HookOutcome(status: 1, stderr: "mesa: " + message) }
    public static func blocked(_ message: String) -> HookOutcome { HookOutcome(status: 2, stderr: message) }
}

public struct HookOptions: Sendable {
    /// Checkpoints move `session/<session_id>` instead of the mount's bookmark.
    public var sessionBookmarks = false
    public var paths = Paths()
    public init(sessionBookmarks: Bool = false, paths: Paths = Paths()) {
        self.sessionBookmarks = sessionBookmarks
        self.paths = paths
    }
}

/// `mesa-client hook <Event>`: one Claude Code hook event acted on against mesad.
/// Only mounts are touched: an agent working outside every mount sees no effect.
public struct HookRunner: Sendable {
    public static let events = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"]

    let event: String
    let payload: HookPayload
    let options: HookOptions
    let store: HookStateStore

    public init(event: String, payload: HookPayload, options: HookOptions) {
        self.event = event
        self.payload = payload
        self.options = options
        store = HookStateStore(paths: options.paths)
    }

    public func run() async -> HookOutcome {
        do {
            switch event {
            case "SessionStart": return try await sessionStart()
            case "UserPromptSubmit": return try await userPromptSubmit()
            case "PreToolUse": return try await preToolUse()
            case "PostToolUse": return try await postToolUse()
            // A prompt's work ends at Stop; SessionEnd saves what a session left unsaved.
            // SubagentStop is mid-prompt: nothing to do yet.
            case "Stop", "SessionEnd": return try await stop()
            default: return .done  // other events: nothing to do, never in the way
            }
        } catch let error as HookError {
            return .failed(error.message)
        } catch let failure as MesaClient.Failure {
            return .failed(failure.description)
        } catch {
            return .failed("\(error)")
        }
    }

    // MARK: Events

    private func sessionStart() async throws -> HookOutcome {
        guard let cwd = payload.workingDirectory else { return .done }
        let client = try connect(autostart: true)
        defer { client.close() }
        guard var mount = try await mountContaining(cwd, client: client, mountIfInTree: true) else { return .done }
        if options.sessionBookmarks { mount = try await ensureSessionBookmark(mount, client: client) }
        let context = """
            Mesa: \(cwd) is inside the Mesa mount of \(mount.org)/\(mount.repo) at \(mount.path) (mode \(mount.mode), \
            mount id \(mount.mountId)). Bookmark: \(mount.bookmark ?? "none (editing a change)"); base change \(mount.baseChangeId); \
            working change \(mount.workingChangeId ?? "none yet (the next write starts one)"). Every file you write here is \
            versioned: edits are uploaded into the working change, and each prompt's work is checkpointed when you stop\
            \(options.sessionBookmarks ? " onto bookmark \(sessionBookmark)" : ""). Review with `mesa log`, `mesa show`, `mesa status`.
            """
        return .output(Self.sessionStartOutput(context))
    }

    static func sessionStartOutput(_ context: String) -> String {
        let output: JSONValue = ["hookSpecificOutput": ["hookEventName": "SessionStart", "additionalContext": .string(context)]]
        return String(decoding: output.serialized, as: UTF8.self)
    }

    private func userPromptSubmit() async throws -> HookOutcome {
        let prompt = payload.prompt ?? ""
        try store.update(payload.sessionId) { session in
            if !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { session.prompts.append(prompt) }
        }
        guard options.sessionBookmarks, let cwd = payload.workingDirectory else { return .done }
        let client = try connect(autostart: false)
        defer { client.close() }
        if let mount = try await mountContaining(cwd, client: client) { _ = try await ensureSessionBookmark(mount, client: client) }
        return .done
    }

    private func preToolUse() async throws -> HookOutcome {
        guard let file = payload.editedFile else { return .done }
        let client = try connect(autostart: false)
        defer { client.close() }
        guard let mount = try await mountContaining(file, client: client), mount.mode == "ro" else { return .done }
        return .blocked("""
            mesa: refusing \(payload.toolName ?? "the edit") of \(file): it is inside the read-only mount of \
            \(mount.org)/\(mount.repo) at \(mount.path), where every write fails with EROFS. Write outside it, or ask the \
            user to mount the repo read-write (`mesa-client mount \(mount.repo) --path DIR`).
            """)
    }

    private func postToolUse() async throws -> HookOutcome {
        let target: String?
        if payload.isFileEdit { target = payload.editedFile } else if payload.toolName == "Bash" { target = payload.workingDirectory } else { target = nil }
        guard let target else { return .done }
        let client = try connect(autostart: false)
        defer { client.close() }
        let flushed: MountStatusInfo
        do { flushed = try await client.call(Flush.self, .init(path: target)) } catch {
            if Self.isNotFound(error) { return .done }
            throw error
        }
        try store.update(payload.sessionId) { session in
            if !session.mounts.contains(flushed.mountId) { session.mounts.append(flushed.mountId) }
        }
        return .done
    }

    /// Checkpoints every mount this session edited (and the one holding cwd) with a
    /// message from the prompts and the changed files; forgets those prompts after.
    private func stop() async throws -> HookOutcome {
        let session = store.load(payload.sessionId)
        let client = try connect(autostart: true)
        defer { client.close() }
        var mountIds = session.mounts
        if let cwd = payload.workingDirectory, let here = try await mountContaining(cwd, client: client), !mountIds.contains(here.mountId) {
            mountIds.append(here.mountId)
        }
        var lines: [String] = []
        for id in mountIds {
            var mount: MountStatusInfo
            do { mount = try await client.call(Flush.self, .init(mountId: id)) } catch {
                if Self.isNotFound(error) { continue }  // unmounted since
                throw error
            }
            if mount.mode == "ro" { continue }
            if options.sessionBookmarks { mount = try await ensureSessionBookmark(mount, client: client) }
            guard let working = mount.workingChangeId else { continue }
            let files = try await client.call(ShowChange.self, .init(.id(id), .init(rev: working))).change.files ?? []
            let message = CheckpointMessage.make(prompts: session.prompts, files: files, sessionId: payload.sessionId)
            let saved = try await client.call(Checkpoint.self, .init(.id(id), .init(message: message)))
            lines.append("mesa: checkpoint \(saved.savedChangeId) of \(mount.org)/\(mount.repo)"
                         + (saved.bookmark.map { " on \($0)" } ?? "") + " (\(files.count) file\(files.count == 1 ? "" : "s"))")
        }
        try store.update(payload.sessionId) { state in
            state.prompts = []
            state.mounts = []
        }
        return lines.isEmpty ? .done : .output(lines.joined(separator: "\n"))
    }

    // MARK: Helpers

    var sessionBookmark: String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        return "session/" + String(payload.sessionId.map { allowed.contains($0) ? $0 : "-" }.prefix(100))
    }

    func connect(autostart: Bool) throws -> MesaClient {
        do { return try MesaClient.connect(paths: options.paths, autostart: autostart) } catch {
            throw HookError("\(error.description) (hook \(event) did nothing)")
        }
    }

    static func isNotFound(_ error: any Error) -> Bool {
        if case .method(let response) = error as? MesaClient.Failure { return response.data?["code"]?.stringValue == "NOT_FOUND" }
        return false
    }

    /// The repo mount holding `path`; with `mountIfInTree`, a path under the mount point
    /// (`$MESA_MOUNT_POINT`, else ~/.local/share/mesa/mnt) gets the tree and its repo mounted.
    func mountContaining(_ path: String, client: MesaClient, mountIfInTree: Bool = false) async throws -> MountStatusInfo? {
        do { return try await client.call(MountStatusMethod.self, .init(path: path)).mounts.first } catch {
            guard Self.isNotFound(error) else { throw error }
        }
        guard mountIfInTree else { return nil }
        let environment = ProcessInfo.processInfo.environment
        let mountPoint = environment["MESA_MOUNT_POINT"].flatMap { $0.isEmpty ? nil : options.paths.expand($0) } ?? options.paths.defaultMountPoint
        guard path.hasPrefix(mountPoint + "/") else { return nil }
        let parts = path.dropFirst(mountPoint.count + 1).split(separator: "/").map(String.init)
        guard parts.count >= 2 else { return nil }
        do { _ = try await client.call(MountMethod.self, .init(org: parts[0], repo: parts[1])) } catch {
            if Self.isNotFound(error) { return nil }
            throw error
        }
        return try await client.call(MountStatusMethod.self, .init(path: path)).mounts.first
    }

    /// Points the mount at `session/<id>`: created at the mount's current change when
    /// missing (so nothing unsaved is lost), then switched to. An existing session
    /// bookmark is only switched to when the mount holds no unsaved work.
    func ensureSessionBookmark(_ mount: MountStatusInfo, client: MesaClient) async throws -> MountStatusInfo {
        let name = sessionBookmark
        guard mount.bookmark != name, mount.mode == "rw" else { return mount }
        do {
            _ = try await client.call(CreateBookmark.self, .init(.id(mount.mountId), .init(name: name)))
        } catch {
            guard case .method(let response) = error, response.data?["code"]?.stringValue == "ALREADY_EXISTS" else {
                throw error
            }
            let fresh = try await client.call(Flush.self, .init(mountId: mount.mountId))
            guard fresh.workingChangeId == nil else {
                throw HookError("bookmark \(name) exists, but \(mount.mountId) holds unsaved work on \(mount.bookmark ?? "a change"); not switching")
            }
        }
        return try await client.call(EditChange.self, .init(.id(mount.mountId), .init(bookmark: name)))
    }
}
