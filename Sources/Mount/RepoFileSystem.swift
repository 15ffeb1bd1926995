import Foundation
import Logging
import MesaIgnore
import MesaAPI
import Model
import Synchronization

/// An open file.
struct OpenFile: Sendable {
    let ino: UInt64
    let writable: Bool
    let append: Bool
    /// What `descriptor` reads: the node's content when the handle last looked.
    var source: FileContent
    var descriptor: Int32
    /// Descriptors replaced while reads may still use them; closed at release.
    var retired: [Int32] = []
    /// Written since the last durability point (close/fsync).
    var dirty = false
}

/// An open directory: the entries at opendir time, so offsets stay stable while the
/// directory changes underneath a reader.
struct DirectoryHandle: Sendable {
    let ino: UInt64
    let entries: [DirectoryListingEntry]
}

/// What FUSE callbacks touch, behind one lock held only for in-memory work.
struct CoreState: Sendable {
    var table: InodeTable
    var files: [UInt64: OpenFile] = [:]
    var directories: [UInt64: DirectoryHandle] = [:]
    var nextHandle: UInt64 = 1
    /// Listings of unmodified directories come from this change.
    var readChange: ChangeID
    /// The timestamp of unmodified files.
    var baseTime: Timestamp
    /// Bumped whenever the view is re-read from another revision (edit, follow): work
    /// that read a node before and commits after a switch must not land on the new view.
    var viewGeneration: UInt64 = 0
}

/// Receives kernel cache invalidations (implemented by the FUSE session).
public protocol Invalidator: Sendable {
    func invalidateInode(_ ino: UInt64)
    func invalidateEntry(parent: UInt64, name: String)
}

/// The filesystem of one repository: inodes, lazy directory listings, blob-backed reads,
/// journaled writes and the flusher that turns them into a working change. Everything
/// here runs without FUSE; `FUSEAdapter` only translates. Methods that may need the
/// backend take `mayBlock`: with false they throw `FSError.wouldBlock` instead of
/// waiting, so the adapter can answer cached requests on the libfuse thread.
///
/// The facade over the mount's parts: `Uploader` (Uploader.swift) turns touched paths
/// into the working change, `RevisionView` (RevisionView.swift) knows which revision
/// the mount shows and writes to, `Journal` and `InodeTable` hold the local state.
///
/// Lock order (outermost first): `flushLock` (flush rounds, checkpoints, edits,
/// follows; backend calls run under it) → `state` (the core's lock: short, in-memory
/// work plus journal appends and rewrites; never a backend call) → the leaf locks
/// (`RevisionView`'s, `ignore`, `keyCheck`, the journal's, the uploader's rules).
/// `state` is never taken while holding a leaf lock.
public final class RepoFileSystem: Sendable {
    public let configuration: MountConfiguration
    let backend: any Backend
    let cache: BlobCache
    let journal: Journal
    /// The core's lock (inode table, open handles, view generation), shared with the uploader.
    let state: Locked<CoreState>
    /// Bookmark, base and working change, last upload outcome.
    let revision: RevisionView
    /// Uploads touched paths into the working change (runs under `flushLock`).
    let uploader: Uploader
    /// Journal replay, the records of what no upload can recreate, data-file reuse.
    let overlay: LocalOverlay
    /// Serializes flush rounds, checkpoints and edits (never taken inside `state`).
    let flushLock = Mutex(())
    let invalidator = Mutex<(any Invalidator)?>(nil)
    let logger: Logger
    private let flusher = Mutex<Flusher?>(nil)
    let prefetcher = Mutex<Prefetcher?>(nil)
    /// Ephemeral-path rules (defaults + root `.mesaignore`), re-read when the file changes.
    let ignore = Mutex(IgnoreState())
    /// Paths whose closed content the last replay could not restore (data file missing).
    public var replayLosses: [String] { losses.withLock { $0 } }
    private let losses = Mutex<[String]>([])
    /// When the backend last confirmed the mount's key, and its refusal if any.
    let keyCheck = Mutex(KeyCheck())

    public var org: String { configuration.org }
    public var repo: String { configuration.repo }
    /// Mode "ro", or a key without the write scope: every modifying call gets EROFS.
    public let isReadOnly: Bool

    /// Opens a mount of `configuration.repo`. Resolves the target (one metadata call;
    /// no content is fetched) or, when the journal directory holds a previous run's
    /// journal, recovers from it: its records are replayed and will be uploaded.
    public init(configuration: MountConfiguration, backend: any Backend, cache: BlobCache,
                logger: Logger = Logger(label: "mesa.mount")) throws(FSError) {
        self.configuration = configuration
        self.backend = backend
        self.cache = cache
        self.logger = logger
        journal = try Journal(directory: configuration.journalDirectory)
        isReadOnly = configuration.mode == .ro || !Self.keyCanWrite(backend)
        let loaded = try journal.load()
        let header: JournalHeader
        if let loaded {
            guard loaded.header.org == configuration.org, loaded.header.repo == configuration.repo else {
                throw FSError(EINVAL, "journal \(configuration.journalDirectory) belongs to \(loaded.header.org)/\(loaded.header.repo), not \(configuration.org)/\(configuration.repo)")
            }
            header = loaded.header
        } else {
            header = try RevisionView.resolve(configuration, backend)
        }
        revision = try RevisionView(org: configuration.org, repo: configuration.repo, header: header, backend: backend)
        let version = revision.current
        let root = Node(ino: InodeTable.rootIno, parent: InodeTable.rootIno, name: "", kind: .directory, permissions: 0o755,
                        uid: configuration.uid, gid: configuration.gid, size: 4096, atime: header.baseTime,
                        mtime: header.baseTime, ctime: header.baseTime, content: .none, children: nil)
        var table = InodeTable(root: root)
        table.readOnly = isReadOnly
        table.defaultUID = configuration.uid
        table.defaultGID = configuration.gid
        state = Locked(CoreState(table: table, readChange: version.working ?? version.base, baseTime: header.baseTime))
        overlay = LocalOverlay(journal: journal, state: state, uid: configuration.uid, gid: configuration.gid,
                               org: configuration.org, repo: configuration.repo, logger: logger)
        uploader = Uploader(configuration: configuration, backend: backend, cache: cache, journal: journal, state: state,
                            revision: revision, logger: logger)
        // Keep every record of a previous run until it is uploaded. A fresh journal holds
        // only the header just resolved (lost, it is resolved again), so it is synced with
        // the first fsync rather than now: a first mount does not wait on the disk.
        try journal.rewrite(header: header, sync: loaded != nil, keep: { _, _ in true })
        var lost: [String] = []
        if let loaded, !loaded.records.isEmpty {
            lost = try overlay.replay(loaded.records, host: self)
            logger.info("replayed journal", metadata: ["repo": "\(org)/\(repo)", "records": "\(loaded.records.count)"])
        }
        losses.withLock { $0 = lost }
        if !lost.isEmpty {
            revision.noteFailure("journal replay could not restore \(lost.count) closed file(s), their data files are missing: "
                                 + lost.prefix(5).map { "'\($0)'" }.joined(separator: ", "))
        }
        // Keep what records refer to (they stay in the manifest until uploaded), what
        // nodes use (replayed inline records got fresh data files) and the unused pool;
        // delete the rest, including pool files a previous run never used.
        var live = Set(loaded?.records.compactMap { record -> UInt64? in
            if case .file(_, let data, _, _) = record { return data } else { return nil }
        } ?? [])
        state.withLock { state in
            for node in state.table.nodes.values { if case .data(let id) = node.content { live.insert(id) } }
        }
        journal.collectGarbage(keeping: live)
        if configuration.backgroundFlush && !isReadOnly {
            let flusher = Flusher(debounce: configuration.debounce, maxDelay: configuration.maxRetryDelay,
                                  logger: logger) { [weak self] in
                guard let self else { return .idle }
                return self.backgroundRound()
            }
            self.flusher.withLock { $0 = flusher }
            if loaded.map({ !$0.records.isEmpty }) ?? false { flusher.notify() }
        }
        if configuration.prefetch != .off {
            let prefetcher = Prefetcher(fs: self)
            self.prefetcher.withLock { $0 = prefetcher }
            prefetcher.start()
        }
    }

    deinit {
        flusher.withLock { $0?.stop() }
        journal.waitForRefills()
        journal.releaseLock()
        prefetcher.withLock { $0?.cancel("the mount closed") }
        state.withLock { state in
            for handle in state.files.values {
                close(handle.descriptor)
                handle.retired.forEach { close($0) }
            }
        }
    }

    /// Stops the background flusher (after `flush()`, before dropping the mount).
    public func stopFlusher() {
        stopPrefetch()
        let flusher = self.flusher.withLock { flusher in defer { flusher = nil }; return flusher }
        flusher?.stop()
    }

    func setInvalidator(_ invalidator: (any Invalidator)?) { self.invalidator.withLock { $0 = invalidator } }

    /// Tells the flusher that something changed (it waits for the debounce to elapse).
    func scheduleFlush() { flusher.withLock { $0 }?.notify() }

    /// Whether the backend's key may write. Unknown (backend unreachable) counts as
    /// yes: the store still refuses an unauthorized upload, and the journal keeps it.
    private static func keyCanWrite(_ backend: any Backend) -> Bool {
        guard let identity = try? backend.whoami() else { return true }
        return identity.scopes.contains { $0 >= .write }
    }

    /// Flushes and stops the background uploader: call before dropping the mount
    /// (unmount, shutdown). Throws if the upload fails; the journal keeps the work.
    public func shutdown() throws(MesaError) {
        stopFlusher()
        if !isReadOnly { try flush() }
    }

    // MARK: Helpers shared by reads and writes

    /// Makes sure directory `ino` is listed, fetching its entries from the backend.
    func ensureListed(_ ino: UInt64, mayBlock: Bool) throws(FSError) {
        let (path, change) = try state.withLock { state throws(FSError) -> (String?, ChangeID) in
            let node = try state.table.node(ino)
            guard node.kind == .directory else { throw FSError.notDirectory(state.table.path(of: ino) ?? "inode \(ino)") }
            if node.children != nil { return (nil, state.readChange) }
            guard let path = state.table.path(of: ino) else {
                // Detached by a view switch: the kernel looks the path up again on ESTALE.
                if node.detachedByReset { throw FSError(ESTALE, "directory inode \(ino) changed revision; look it up again") }
                throw FSError(ENOENT, "directory inode \(ino) was removed")
            }
            return (path, state.readChange)
        }
        guard let path else { return }
        guard mayBlock else { throw FSError.wouldBlock }
        try load(path, depth: 1, at: change)
    }

    /// Lists every directory below `ino` (a directory about to move: the flusher must
    /// upload all of it under its new path).
    func ensureSubtreeListed(_ ino: UInt64, mayBlock: Bool) throws(FSError) {
        while true {
            let pending = state.withLock { state in
                state.table.unlistedDirectories(under: ino).compactMap { state.table.path(of: $0) }
            }
            guard let first = pending.first else { return }
            guard mayBlock else { throw FSError.wouldBlock }
            let change = state.withLock { $0.readChange }
            try load(first, depth: 10, at: change)
        }
    }

    /// Fetches a listing and fills every unlisted directory it covers.
    /// With `generation`, a listing that arrives after a view switch is dropped.
    func load(_ path: String, depth: Int, at change: ChangeID, generation: UInt64? = nil) throws(FSError) {
        let content: Content
        do {
            content = try backend.content(org: org, repo: repo, at: .change(change), path: path, depth: depth)
        } catch {
            let failure = FSError.from(error)
            if failure.errno == ENOENT {
                // Gone from the change (or never there): an empty directory is the honest view.
                content = .directory(path: path, oid: "", entries: [])
            } else {
                throw failure
            }
        }
        guard case .directory(_, _, let entries) = content else {
            throw FSError.notDirectory(path)
        }
        var byParent: [String: [DirectoryEntry]] = [:]
        for entry in entries {
            let parent = parentPath(entry.path)
            byParent[parent, default: []].append(entry)
        }
        state.withLock { state in
            if let generation, state.viewGeneration != generation { return }
            // Parents first, so children of nested listings find their directory node.
            var queue = [path]
            while let current = queue.popLast() {
                guard let ino = Self.lookupPath(state.table, current), var node = state.table.nodes[ino],
                      node.kind == .directory else { continue }
                let listed = byParent[current] ?? []
                if node.children == nil {
                    var children: [String: UInt64] = [:]
                    for entry in listed {
                        children[entry.name] = Self.nodeFor(entry, parent: ino, stale: node.staleChildren, &state)
                    }
                    node.children = children
                    state.table.nodes[ino] = node
                }
                for entry in listed where entry.type == .dir && depth > 1 && entry.path.split(separator: "/").count - (path.isEmpty ? 0 : path.split(separator: "/").count) < depth {
                    queue.append(entry.path)
                }
            }
        }
    }

    /// Creates (or, after a view switch, revives) the node for a listed entry.
    private static func nodeFor(_ entry: DirectoryEntry, parent: UInt64, stale: [String: UInt64]?, _ state: inout CoreState) -> UInt64 {
        let kind: NodeKind = switch entry.type {
        case .dir: .directory
        case .file: .file
        case .symlink: .symlink
        }
        let permissions: UInt32 = switch entry.mode {
        case .executable: 0o755
        case .symlink: 0o777
        case .regular: 0o644
        case nil: 0o755
        }
        var ino = state.table.allocateIno()
        if let old = stale?[entry.name], let node = state.table.nodes[old], node.kind == kind, !node.linked {
            ino = old
        }
        let previous = state.table.nodes[ino]
        var node = Node(ino: ino, parent: parent, name: entry.name, kind: kind, permissions: permissions,
                        uid: previous?.uid ?? state.table.nodes[InodeTable.rootIno]?.uid ?? 0,
                        gid: previous?.gid ?? state.table.nodes[InodeTable.rootIno]?.gid ?? 0,
                        size: UInt64(entry.size ?? 4096), atime: state.baseTime, mtime: state.baseTime, ctime: state.baseTime,
                        content: kind == .directory ? .none : .blob(entry.oid), children: nil)
        node.lookups = previous?.lookups ?? 0
        node.opens = previous?.opens ?? 0
        node.staleChildren = previous?.children ?? previous?.staleChildren
        state.table.nodes[ino] = node
        return ino
    }

    /// The node at a repository path, if every directory on the way is listed.
    static func lookupPath(_ table: InodeTable, _ path: String) -> UInt64? {
        var ino = InodeTable.rootIno
        for name in path.split(separator: "/") {
            guard let next = table.nodes[ino]?.children?[String(name)] else { return nil }
            ino = next
        }
        return ino
    }

    /// The local path of a blob, downloading it into the cache on a miss (streamed
    /// straight into the cache file: a large blob never sits in memory).
    func blobPath(_ oid: String, mayBlock: Bool) throws(FSError) -> String {
        try cache.path(of: oid, from: backend, org: org, repo: repo, mayBlock: mayBlock)
    }

    /// Gives back data files no node uses any more (see `LocalOverlay.discard`).
    func discard(_ dataFiles: [UInt64]) { overlay.discard(dataFiles) }

    func newHandleID(_ state: inout CoreState) -> UInt64 {
        defer { state.nextHandle += 1 }
        return state.nextHandle
    }
}

extension BlobCache {
    /// The local path of a blob, downloading it into the cache on a miss (streamed
    /// straight into the cache file: a large blob never sits in memory).
    func path(of oid: String, from backend: any Backend, org: String, repo: String, mayBlock: Bool) throws(FSError) -> String {
        if let path = path(for: oid) {
            record(hit: true)
            return path
        }
        guard mayBlock else { throw FSError.wouldBlock }
        record(hit: false)
        return try fill(oid) { (temporary: String) throws(FSError) in
            try fsErrors { try backend.downloadBlob(org: org, repo: repo, oid: oid, toFile: temporary) }
        }
    }
}
