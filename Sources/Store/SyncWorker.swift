import Foundation
import Infra
import Model

/// Sync bookkeeping held by the store: the status observer and the background worker.
struct SyncState {
    var observer: (@Sendable (Sync) -> Void)?
    var worker: PeriodicWorker?
    var policy = SyncPolicy()
}

/// How the worker retries: transient failures (network, server errors) are retried with
/// backoff up to `maxAttempts`; anything else fails the sync at once.
public struct SyncPolicy: Sendable {
    public var backoff: Backoff
    public var maxAttempts: Int

    public init(backoff: Backoff = Backoff(initial: .seconds(2), cap: .seconds(60), jitter: 0.2), maxAttempts: Int = 4) {
        self.backoff = backoff
        self.maxAttempts = maxAttempts
    }
}

extension Store {
    /// Starts the background thread that runs queued syncs (mesa-server and the
    /// embedded store call this once). Syncs left `in_progress` by a previous process are
    /// queued again first, so a restart re-runs them.
    public func startSyncWorker(policy: SyncPolicy = SyncPolicy()) throws {
        try requeueInterrupted()
        let worker = PeriodicWorker(name: "mesa-syncs", interval: .seconds(30))
        let started = syncState.withLock { state -> Bool in
            guard state.worker == nil else { return false }
            state.worker = worker
            state.policy = policy
            return true
        }
        guard started else { return }
        worker.start { [weak self] in
            guard let self else { return .stop }
            return self.runDueSyncs(isStopping: { worker.isStopping })
        }
        worker.wake()
    }

    /// Stops the worker after the sync it is running (if any) ends.
    public func stopSyncWorker() {
        let worker = syncState.withLock { state in
            defer { state.worker = nil }
            return state.worker
        }
        worker?.stop()
    }

    /// Runs every due queued sync on the calling thread (tests and tools); the worker
    /// does the same in the background. `policy` replaces the retry policy.
    public func runPendingSyncs(policy: SyncPolicy? = nil) {
        if let policy { syncState.withLock { $0.policy = policy } }
        _ = runDueSyncs()
    }

    func syncWorkerWake() {
        syncState.withLock { $0.worker }?.wake()
    }

    func requeueInterrupted() throws {
        let interrupted = try withDatabase { db in
            try db.query("SELECT id FROM syncs WHERE status = ?", [.text(SyncStatus.inProgress.rawValue)]).map { $0.string(0) }
        }
        for id in interrupted {
            logger.info("re-queueing sync interrupted by a restart", metadata: ["sync": "\(id)"])
            try transitionSync(id: id, SyncUpdate(status: .queued), from: .inProgress)
        }
    }

    /// Runs every queued sync that is due, oldest first, then says when to look again.
    func runDueSyncs(isStopping: () -> Bool = { false }) -> PeriodicWorker.Next {
        while !isStopping() {
            do {
                guard let id = try nextDueSync() else { break }
                try runSync(id: id)
            } catch {
                logger.error("sync worker: \(error)")
                return .interval
            }
        }
        let next = try? withDatabase { db in
            try db.queryOne("SELECT min(not_before) FROM syncs WHERE status = ?", [.text(SyncStatus.queued.rawValue)])?.optionalDouble(0)
        }
        guard let next = next ?? nil else { return .interval }
        return .after(.milliseconds(max(0, Int((next - Date().timeIntervalSince1970) * 1000)) + 10))
    }

    private func nextDueSync() throws -> String? {
        try withDatabase { db in
            try db.queryOne("SELECT id FROM syncs WHERE status = ? AND not_before <= ? ORDER BY seq LIMIT 1",
                            [.text(SyncStatus.queued.rawValue), .double(Date().timeIntervalSince1970)])?.string(0)
        }
    }

    /// Claims one queued sync, runs it, and records how it ended.
    func runSync(id: String) throws {
        guard let queued = try syncRow(id: id), queued.status == .queued else { return }
        guard let sync = try transitionSync(id: id, SyncUpdate(status: .inProgress, attempt: queued.attempt + 1,
                                                               startedAt: Self.now()), from: .queued) else { return }
        let policy = syncState.withLock { $0.policy }
        do {
            let outcome = try performSync(sync)
            let error = outcome.rejections.isEmpty ? nil : "rejected: " + outcome.rejections.joined(separator: "; ")
            try transitionSync(id: id, SyncUpdate(status: .completed, refs: .some(outcome.refs), error: .some(error),
                                                  finishedAt: Self.now()))
        } catch {
            let (message, transient) = Self.describe(error)
            if transient && sync.attempt < policy.maxAttempts {
                let delay = policy.backoff.delay(for: sync.attempt)
                let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
                logger.warning("sync attempt failed; retrying", metadata: ["sync": "\(id)", "attempt": "\(sync.attempt)"])
                try transitionSync(id: id, SyncUpdate(status: .queued, error: .some("attempt \(sync.attempt) failed: \(message)"),
                                                      notBefore: Date().addingTimeInterval(seconds)))
            } else {
                logger.warning("sync failed", metadata: ["sync": "\(id)", "attempt": "\(sync.attempt)"])
                try transitionSync(id: id, SyncUpdate(status: .failed, error: .some(message), finishedAt: Self.now()))
            }
        }
    }

    static func describe(_ error: any Error) -> (String, transient: Bool) {
        switch error {
        case let failure as RemoteFailure: (failure.message, failure.transient)
        case let error as MesaError: (error.message, error.code == .noSpace ? false : error.errorClass == .transient)
        default: ("\(error)", false)
        }
    }
}
