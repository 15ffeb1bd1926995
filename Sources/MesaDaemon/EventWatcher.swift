import Foundation
import MesaProtocol
import Mount

/// What the watcher remembers of one repo mount between two looks.
struct MountSnapshot: Sendable, Equatable {
    var id: String
    var path: String
    var org: String
    var repo: String
    var baseChange: String
    var workingChange: String?
    var dirtyPaths: [String] = []
    var pendingUploads = 0
    var lastError: String?
    var lastFlush: Date?
}

extension MountSnapshot {
    init(id: String, path: String, status: MountStatus) {
        self.init(id: id, path: path, org: status.org, repo: status.repo, baseChange: status.baseChange.rawValue,
                  workingChange: status.workingChange?.rawValue, dirtyPaths: status.dirtyPaths, pendingUploads: status.pendingUploads,
                  lastError: status.lastError, lastFlush: status.lastFlush)
    }

    /// The same mount with nothing pending: where a mount opened since the last look starts.
    var clean: MountSnapshot {
        var clean = self
        (clean.dirtyPaths, clean.pendingUploads, clean.lastError) = ([], 0, nil)
        return clean
    }
}

/// Turns two looks at the daemon's mounts into events. Pure, so every rule is unit-tested.
///
/// The daemon looks every 200 ms while someone subscribed, and right after the methods
/// that change things (checkpoint, flush, unmount, bookmark moves), so events arrive in
/// the order they happened. Level changes (pending, failed, recovered, amended) are
/// edges between two looks; file changes come from the mount's change log, which keeps
/// every path touched since the last look even when it was uploaded in between.
enum EventRules {
    /// Events of one mount seen in both looks, in causal order: files, pending,
    /// amended, failed / recovered.
    static func mountEvents(previous p: MountSnapshot, current c: MountSnapshot, changed: (paths: [String], overflowed: Bool),
                            now: Date = Date()) -> [MesaEvent] {
        var events: [MesaEvent] = []
        func event(_ name: String) -> MesaEvent {
            MesaEvent(event: name, mountId: c.id, mountPath: c.path, org: c.org, repo: c.repo, time: now)
        }
        if !changed.paths.isEmpty || changed.overflowed {
            var files = event(MesaEvents.filesChanged)
            files.paths = changed.paths
            files.truncated = changed.overflowed
            events.append(files)
        }
        if p.pendingUploads == 0 && c.pendingUploads > 0 {
            var pending = event(MesaEvents.uploadPending)
            pending.pendingUploads = c.pendingUploads
            pending.paths = Array(c.dirtyPaths.prefix(100))
            events.append(pending)
        }
        if let flushed = c.lastFlush, flushed != p.lastFlush {
            var amended = event(MesaEvents.changeAmended)
            amended.changeId = c.workingChange ?? c.baseChange
            amended.pendingUploads = c.pendingUploads
            events.append(amended)
        }
        if let error = c.lastError, error != p.lastError {
            var failed = event(MesaEvents.uploadFailed)
            failed.error = error
            failed.pendingUploads = c.pendingUploads
            events.append(failed)
        } else if p.lastError != nil && c.lastError == nil {
            var recovered = event(MesaEvents.uploadRecovered)
            recovered.pendingUploads = c.pendingUploads
            events.append(recovered)
        }
        return events
    }

    /// Bookmarks of one repo that were created or moved between two looks.
    static func bookmarkEvents(org: String, repo: String, previous: [String: String], current: [String: String],
                               now: Date = Date()) -> [MesaEvent] {
        current.keys.sorted().compactMap { name in
            guard let change = current[name], previous[name] != change else { return nil }
            return MesaEvent(event: MesaEvents.bookmarkMoved, org: org, repo: repo, changeId: change,
                             fromChangeId: previous[name], bookmark: name, time: now)
        }
    }

    static func lost(_ snapshot: MountSnapshot, reason: String, now: Date = Date()) -> MesaEvent {
        MesaEvent(event: MesaEvents.mountLost, mountId: snapshot.id, mountPath: snapshot.path, org: snapshot.org,
                  repo: snapshot.repo, reason: reason, time: now)
    }
}
