import Foundation
import MesaProtocol
import Model

/// `stats`: mounts, the blob cache, pending uploads and syncs in flight, for `mesa stats`.
extension Daemon {
    /// How `stats` counts upstream syncs in flight (`syncsInFlight`, absent until set):
    /// the daemon sets it for the embedded store, which runs syncs in this process.
    public func countSyncsInFlight(with counter: @escaping @Sendable () -> Int) {
        syncsInFlight.withLock { $0 = counter }
    }

    func registerStatsMethod() {
        dispatcher.register(DaemonStats.self) { _, _ in
            var mounts: [DaemonStats.Mount] = []
            var cache: DaemonStats.Cache?
            if let manager = self.mounts {
                let statuses = Dictionary(manager.repoMounts().map { ($0.id, $0.fs.status()) }, uniquingKeysWith: { first, _ in first })
                mounts = manager.list().map { info in
                    let status = statuses[info.mountId]
                    return DaemonStats.Mount(mountId: info.mountId, path: info.path, mode: info.mode,
                                             pendingUploads: status?.pendingUploads, dirtyPaths: status?.dirtyPaths.count,
                                             lastError: status?.lastError)
                }
                let numbers = manager.cache.statistics
                cache = DaemonStats.Cache(path: manager.cache.directory, entries: numbers.entries, usedBytes: numbers.usedBytes,
                                          maxBytes: numbers.maxBytes, hits: numbers.hits, misses: numbers.misses)
            }
            let uptime = ContinuousClock.now - self.startedAt
            return DaemonStats.Result(pid: getpid(), version: Self.version, uptimeSeconds: Int(uptime.components.seconds),
                                      mounts: mounts, cache: cache, pendingUploads: mounts.reduce(0) { $0 + ($1.pendingUploads ?? 0) },
                                      syncsInFlight: self.syncsInFlight.withLock { $0 }?())
        }
    }
}
