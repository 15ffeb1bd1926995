import Foundation
import Infra
import MesaProtocol

/// What the hooks remember of one Claude Code session between events, in
/// `~/.local/share/mesa/state/hooks/<session>.json` (0600): the prompts of the work not
/// yet checkpointed, and the mounts its edits went to.
public struct HookSession: Codable, Sendable, Equatable {
    public var sessionId: String
    public var prompts: [String] = []
    /// Mount ids flushed by PostToolUse since the last checkpoint.
    public var mounts: [String] = []
    public var updatedAt: String?

    public init(sessionId: String) { self.sessionId = sessionId }
}

/// Read-modify-write of session files under an exclusive `flock`: Claude Code runs hooks
/// in parallel (several PostToolUse at once), and none may lose another's update.
public struct HookStateStore: Sendable {
    public let directory: String

    public init(paths: Paths = Paths()) {
        directory = paths.dataHome + "/mesa/state/hooks"
    }

    public init(directory: String) { self.directory = directory }

    /// A file name for a session id: the id itself when it is tame (Claude Code's are
    /// UUIDs), else its safe characters plus a hash, so no id can escape the directory.
    public static func fileName(_ sessionId: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        let safe = String(sessionId.filter { allowed.contains($0) }.prefix(80))
        if safe == sessionId && !safe.isEmpty { return safe + ".json" }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sessionId.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return safe + "-" + String(hash, radix: 16) + ".json"
    }

    public func path(_ sessionId: String) -> String { directory + "/" + Self.fileName(sessionId) }

    public func load(_ sessionId: String) -> HookSession {
        guard let data = FileManager.default.contents(atPath: path(sessionId)),
              let session = try? JSONDecoder().decode(HookSession.self, from: data) else { return HookSession(sessionId: sessionId) }
        return session
    }

    /// Applies `change` to the session's state under the lock and saves it.
    @discardableResult
    public func update(_ sessionId: String, _ change: (inout HookSession) -> Void) throws(HookError) -> HookSession {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw HookError("cannot create \(directory): \(error.localizedDescription)")
        }
        let lockPath = directory + "/.lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw HookError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        var session = load(sessionId)
        change(&session)
        session.updatedAt = Timestamp.string(Date())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try AtomicFile.write(path(sessionId), try encoder.encode(session), mode: 0o600)
        } catch let error as AtomicFile.Failure {
            throw HookError(error.description)
        } catch {
            throw HookError("cannot save the session state: \(error)")
        }
        return session
    }
}
