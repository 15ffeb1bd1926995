import Foundation
import Infra
import Logging
import MesaAPI
import Model
import Mount
import Store
import Synchronization

/// A mount that switched to where someone else moved its bookmark.
public struct FollowedMove: Sendable, Equatable {
    public var mountId: String
    public var path: String
    public var org: String
    public var repo: String
    public var bookmark: String
    public var from: ChangeID?
    public var to: ChangeID
}

struct FollowerState: Sendable {
    var worker: PeriodicWorker?
    /// Per mount, the tip it was last held back from (so that is logged once at info).
    var heldBack: [String: ChangeID] = [:]
}

extension MountManager {
    /// Starts the thread that, every `follow-interval-ms`, asks each repo mount to
    /// follow its bookmark (`RepoFileSystem.followBookmark`): clean mounts show where
    /// someone else moved it, mounts with local work stay put. Runs off the FUSE
    /// threads; a round never overlaps the next. `onMove` hears of every switch.
    /// Idempotent; does nothing when the interval is 0.
    public func startFollowing(onMove: @escaping @Sendable ([FollowedMove]) -> Void = { _ in }) {
        let interval = config.followIntervalMilliseconds
        guard interval > 0 else { return }
        let worker = follower.withLock { state -> PeriodicWorker? in
            guard state.worker == nil else { return nil }
            let worker = PeriodicWorker(name: "mesad.follow", interval: .milliseconds(interval))
            state.worker = worker
            return worker
        }
        worker?.start { [weak self, weak worker] in
            guard let manager = self else { return .stop }
            let moves = manager.followOnce(worker)
            if !moves.isEmpty { onMove(moves) }
            return .interval
        }
    }

    /// Stops the follower and waits (boundedly) for a round in progress.
    public func stopFollowing() {
        guard let worker = follower.withLock({ state in defer { state.worker = nil }; return state.worker }) else { return }
        if !worker.stop(timeout: .seconds(10)) {
            logger.warning("the bookmark follower is still busy (a slow backend); not waiting for it")
        }
    }

    /// One round: every repo mount that is serving looks at its bookmark once.
    /// Errors (backend unavailable) are logged at debug; the next round retries.
    /// A round of `worker` ends early once it is stopping.
    @discardableResult
    func followOnce(_ worker: PeriodicWorker? = nil) -> [FollowedMove] {
        let lost = Set(lostMounts().map(\.id))
        var moves: [FollowedMove] = []
        for mount in repoMounts() where !lost.contains(mount.id) {
            if worker?.isStopping == true { break }
            let metadata: Logger.Metadata = ["mount": "\(mount.path)", "repo": "\(mount.fs.org)/\(mount.fs.repo)"]
            // A key revoked or expired meanwhile stops the mount even while it is idle.
            mount.fs.recheckKey()
            do {
                switch try mount.fs.followBookmark() {
                case .pinned, .unchanged:
                    break
                case .moved(let bookmark, let from, let to):
                    follower.withLock { _ = $0.heldBack.removeValue(forKey: mount.id) }
                    logger.info("mount followed its bookmark", metadata: metadata.merging(
                        ["bookmark": "\(bookmark)", "from": "\(from.map { "\($0)" } ?? "-")", "to": "\(to)"]) { $1 })
                    moves.append(FollowedMove(mountId: mount.id, path: mount.path, org: mount.fs.org, repo: mount.fs.repo,
                                              bookmark: bookmark, from: from, to: to))
                case .heldBack(let bookmark, let at, let reason):
                    let first = follower.withLock { state in
                        defer { state.heldBack[mount.id] = at }
                        return state.heldBack[mount.id] != at
                    }
                    let message: Logger.Message = "bookmark moved by someone else; mount stays put (its next checkpoint reports the conflict)"
                    let details = metadata.merging(["bookmark": "\(bookmark)", "to": "\(at)", "reason": "\(reason)"]) { $1 }
                    if first { logger.info(message, metadata: details) } else { logger.debug(message, metadata: details) }
                }
            } catch {
                logger.debug("cannot follow the bookmark; retrying next round", metadata: metadata.merging(
                    ["error": "\(error.message)"]) { $1 })
            }
        }
        return moves
    }
}
