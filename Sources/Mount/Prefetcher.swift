import Foundation
import MesaAPI
import Model
import Synchronization

/// What a mount fetches in the background when it opens.
public enum PrefetchMode: String, Sendable, Codable, CaseIterable {
    /// Nothing: directories are listed when first visited.
    case off
    /// Every directory listing, breadth-first (metadata only; cheap).
    case layout
    /// The layout, then the bytes of small files into the blob cache.
    case content
}

/// Progress of a mount's prefetch, for `status`.
public struct PrefetchProgress: Sendable, Equatable {
    public enum Phase: String, Sendable {
        case running, done, stopped
    }
    public var mode: PrefetchMode
    public var phase: Phase
    /// Directories listed so far (by the prefetch or already by the mount).
    public var directoriesListed: Int
    /// Directories found and not listed yet: the total is only known at the end.
    public var directoriesPending: Int
    public var filesFetched: Int
    public var bytesFetched: UInt64
    /// Listings or blobs that failed (skipped; a visit fetches them again).
    public var failures: Int
    /// Why it stopped early or what last failed ("blob cache 50% full", "unmounted").
    public var note: String?
}

/// Walks the mount's revision breadth-first on a few threads of its own, filling the
/// directory listings (`layout`) and then the blob cache (`content`). It never holds
/// the core's lock across a backend call and FUSE requests never wait for it: a lookup
/// of a directory the prefetch has not reached lists it itself, exactly as without a
/// prefetch, and a listing the prefetch brings later is dropped if one is there.
final class Prefetcher: @unchecked Sendable {
    private weak var fs: RepoFileSystem?
    private let mode: PrefetchMode
    private let concurrency: Int
    private let fillBytes: UInt64
    private let maxFileBytes: Int
    /// Guards everything below (NSCondition: idle workers wait for queued work).
    private let condition = NSCondition()
    private var directories: [String] = []
    private var nextDirectory = 0
    private var files: [(oid: String, size: Int)] = []
    private var nextFile = 0
    private var busy = 0
    private var cancelled = false
    private var progress: PrefetchProgress
    private var workers: [Thread] = []

    init(fs: RepoFileSystem) {
        self.fs = fs
        let configuration = fs.configuration
        mode = configuration.prefetch
        concurrency = max(1, configuration.prefetchConcurrency)
        fillBytes = UInt64(Double(fs.cache.maxBytes) * min(max(configuration.prefetchCacheFillRatio, 0), 1))
        maxFileBytes = configuration.prefetchMaxFileBytes
        progress = PrefetchProgress(mode: mode, phase: .running, directoriesListed: 0, directoriesPending: 1,
                                    filesFetched: 0, bytesFetched: 0, failures: 0)
        directories = [""]
    }

    func start() {
        guard let fs else { return }
        let generation = fs.state.withLock { $0.viewGeneration }
        condition.lock()
        defer { condition.unlock() }
        for index in 0..<concurrency {
            let thread = Thread { [self] in
                // Background work at the lowest CPU priority (Linux nice is per
                // thread): on a busy machine the prefetch takes what FUSE requests leave.
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)  // who 0: this thread
                self.work(generation: generation)
            }
            thread.name = "mesa-prefetch-\(index)"
            thread.stackSize = 1 << 20
            workers.append(thread)
            thread.start()
        }
    }

    /// Stops the walk; in-flight backend calls finish, their results are dropped.
    func cancel(_ reason: String) {
        condition.lock()
        if progress.phase == .running {
            cancelled = true
            progress.phase = .stopped
            progress.note = reason
        }
        condition.broadcast()
        condition.unlock()
    }

    var snapshot: PrefetchProgress {
        condition.lock()
        defer { condition.unlock() }
        return progress
    }

    private enum Job {
        case directory(String)
        case file(String, Int)
    }

    /// Directories first, so the layout completes before any content is fetched.
    private func nextJob() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if cancelled { return nil }
            if nextDirectory < directories.count {
                defer { nextDirectory += 1 }
                busy += 1
                return .directory(directories[nextDirectory])
            }
            if nextFile < files.count {
                defer { nextFile += 1 }
                busy += 1
                return .file(files[nextFile].oid, files[nextFile].size)
            }
            if busy == 0 {
                if progress.phase == .running { progress.phase = .done }
                condition.broadcast()
                return nil
            }
            condition.wait()
        }
    }

    private func finished(_ update: (inout PrefetchProgress) -> Void) {
        condition.lock()
        busy -= 1
        update(&progress)
        condition.broadcast()
        condition.unlock()
    }

    private func work(generation: UInt64) {
        while let job = nextJob() {
            guard let fs else { cancel("the mount closed"); return }
            switch job {
            case .directory(let path):
                let (children, failure) = list(path, fs: fs, generation: generation)
                finished { progress in
                    progress.directoriesPending -= 1
                    if let failure {
                        progress.failures += 1
                        progress.note = "listing '\(path)' failed: \(failure)"
                        return
                    }
                    progress.directoriesListed += 1
                    guard !cancelled else { return }
                    for child in children.directories {
                        directories.append(child)
                        progress.directoriesPending += 1
                    }
                    files += children.files
                }
            case .file(let oid, let size):
                let outcome = fetch(oid, size: size, fs: fs)
                finished { progress in
                    switch outcome {
                    case .fetched(let bytes):
                        progress.filesFetched += 1
                        progress.bytesFetched += bytes
                    case .cached: break
                    case .full:
                        // Content stops; the layout (if still running) goes on.
                        if nextFile < files.count || progress.note == nil {
                            nextFile = files.count
                            progress.note = "content stopped: the blob cache reached \(fillBytes >> 20) MiB of \(fs.cache.maxBytes >> 20) MiB"
                        }
                    case .failed(let message):
                        progress.failures += 1
                        progress.note = message
                    }
                }
            }
        }
    }

    private struct Children {
        var directories: [String] = []
        var files: [(oid: String, size: Int)] = []
    }

    /// Lists `path` unless it is listed already, and returns what to visit below it.
    private func list(_ path: String, fs: RepoFileSystem, generation: UInt64) -> (Children, String?) {
        func children() -> Children? {
            fs.state.withLock { state in
                guard state.viewGeneration == generation,
                      let ino = RepoFileSystem.lookupPath(state.table, path), let node = state.table.nodes[ino],
                      node.kind == .directory, let entries = node.children else { return nil }
                var result = Children()
                for (name, child) in entries {
                    guard let node = state.table.nodes[child] else { continue }
                    let childPath = path.isEmpty ? name : path + "/" + name
                    switch node.kind {
                    case .directory:
                        // Listed ones are walked too: their subdirectories may not be.
                        result.directories.append(childPath)
                    case .file:
                        if mode == .content, case .blob(let oid) = node.content, node.size <= UInt64(maxFileBytes) {
                            result.files.append((oid, Int(node.size)))
                        }
                    case .symlink, .fifo, .socket, .charDevice, .blockDevice:
                        break
                    }
                }
                result.directories.sort()
                return result
            }
        }
        if let listed = children() { return (listed, nil) }
        let (change, current) = fs.state.withLock { ($0.readChange, $0.viewGeneration == generation) }
        guard current else {
            cancel("the mount switched revision")
            return (Children(), nil)
        }
        do {
            try fs.load(path, depth: 1, at: change, generation: generation)
        } catch {
            return (Children(), error.message)
        }
        // Removed meanwhile (or the view switched): nothing below to visit.
        return (children() ?? Children(), nil)
    }

    private enum FetchOutcome {
        case fetched(UInt64), cached, full, failed(String)
    }

    private func fetch(_ oid: String, size: Int, fs: RepoFileSystem) -> FetchOutcome {
        if fs.cache.contains(oid) { return .cached }
        if fs.cache.usedBytes + UInt64(size) > fillBytes { return .full }
        do {
            let bytes = try fs.backend.blob(org: fs.org, repo: fs.repo, oid: oid)
            _ = try fs.cache.store(oid, bytes: bytes)
            return .fetched(UInt64(bytes.count))
        } catch {
            return .failed("fetching blob \(oid.prefix(12)) failed: \(MesaError.from(error).message)")
        }
    }
}

extension RepoFileSystem {
    /// The background prefetch's progress, nil when it is off.
    public var prefetchProgress: PrefetchProgress? { prefetcher.withLock { $0 }?.snapshot }

    /// Stops the prefetch (unmount, shutdown); a no-op when none runs.
    public func stopPrefetch() { prefetcher.withLock { $0 }?.cancel("unmounted") }

    /// Waits until the prefetch is no longer running (tests, benchmarks).
    public func waitForPrefetch(timeout: Duration) -> PrefetchProgress? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let progress = prefetchProgress else { return nil }
            if progress.phase != .running { return progress }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return prefetchProgress
    }
}
