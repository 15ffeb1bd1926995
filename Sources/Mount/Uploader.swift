import Foundation
import Logging
import MesaAPI
import MesaIgnore
import Model
import Synchronization

/// A path's state at the moment a flush round snapshots the tree.
private enum LocalState {
    case absent
    case directory
    case file(FileContent, FileMode)
    case symlink(FileContent)
}

private struct FlushItem {
    let path: String
    let version: UInt64
    let state: LocalState
}

/// Turns the touched paths of a mount's inode table into its working change: one
/// `round` snapshots the changed paths, compares them with the working change, sends
/// the differences (large files streamed from their journal data files), forgets the
/// paths nobody changed meanwhile and compacts the journal. It knows nothing of FUSE,
/// handles or the flusher's timing: `RepoFileSystem` decides when a round runs and
/// what its outcome means for `status()`.
///
/// Lock order: owns `flushedRules`, a leaf. Takes the core's lock (`state`) for the
/// snapshot, for marking paths uploaded and for compaction (the manifest is rewritten
/// under it so no append interleaves), and under it only the revision view's leaf lock
/// and the journal's. No backend call runs under a lock. Callers serialize rounds
/// (the core's `flushLock`).
final class Uploader: Sendable {
    /// The core's lock: the inode table (touched paths, nodes) lives there.
    let state: Locked<CoreState>
    /// Where uploads go (`working`, created by the first batch on `base`).
    let revision: RevisionView
    /// Read for data files; compacted after a round, its header rewritten for a new working change.
    let journal: Journal
    let backend: any Backend
    /// Only for symlinks whose target is still a repository blob.
    let cache: BlobCache
    /// Batch size, stream threshold, durability.
    let configuration: MountConfiguration
    let logger: Logger
    /// The ephemeral rules the last round applied: when the next round's differ, content
    /// that stopped being ephemeral is queued for upload.
    private let flushedRules = Mutex(IgnoreRules(mesaignore: nil))

    var org: String { configuration.org }
    var repo: String { configuration.repo }

    /// Below this size a background round never compacts the manifest.
    static let compactionFloor = 1 << 20

    init(configuration: MountConfiguration, backend: any Backend, cache: BlobCache, journal: Journal,
         state: Locked<CoreState>, revision: RevisionView, logger: Logger) {
        self.configuration = configuration
        self.backend = backend
        self.cache = cache
        self.journal = journal
        self.state = state
        self.revision = revision
        self.logger = logger
    }

    /// Whether a path that must be uploaded is still touched (local-only ones never are).
    func hasPending(rules: IgnoreRules) -> Bool {
        state.withLock { state in
            state.table.touched.keys.contains { !RepoFileSystem.isLocalOnly(state.table, $0, rules: rules) }
        }
    }

    /// One upload: snapshot the changed paths, compare with the working change, send
    /// the differences, forget the paths nobody changed meanwhile, compact the journal.
    /// Returns whether anything was pending.
    ///
    /// The journal is compacted with `compactAlways` (an explicit flush: checkpoint,
    /// unmount), and otherwise only once it has doubled since the last compaction:
    /// replaying an uploaded record is harmless, while rewriting the manifest re-reads
    /// every record under the core's lock, which during `git add` of thousands of files
    /// (a local-only `.git` record each) cost more than the uploads.
    func round(rules: IgnoreRules, compactAlways: Bool) throws(MesaError) -> Bool {
        let previousRules = flushedRules.withLock { flushed in defer { flushed = rules }; return flushed }
        let (items, seq, localOnly) = state.withLock { state -> ([FlushItem], UInt64, [String: UInt64]) in
            if rules != previousRules { LocalOverlay.retouchUnignored(&state.table, was: previousRules, now: rules) }
            var items: [FlushItem] = []
            var localOnly: [String: UInt64] = [:]
            for (path, version) in state.table.touched {
                let ino = RepoFileSystem.lookupPath(state.table, path)
                let node = ino.flatMap { state.table.nodes[$0] }
                if RepoFileSystem.isLocalOnly(path, isDirectory: node.map { $0.kind == .directory }, rules: rules) {
                    localOnly[path] = version
                    // Compaction re-records local-only files from their directories:
                    // remember this one's (it may be a repository directory).
                    if let node, node.kind != .directory { state.table.ephemeralParents.insert(node.parent) }
                    continue
                }
                items.append(FlushItem(path: path, version: version, state: Self.localState(state.table, path)))
            }
            return (items.sorted { $0.path < $1.path }, journal.lastSeq, localOnly)
        }
        if items.isEmpty {
            state.withLock { state in
                for (path, version) in localOnly where state.table.touched[path] == version { state.table.touched[path] = nil }
            }
            return false
        }
        let version = revision.current
        let remoteChange = version.working ?? version.base
        let remote = try remoteEntries(for: items.map(\.path), at: remoteChange,
                                       exists: version.working != nil || !remoteChange.isRoot)
        var failures: [(path: String, error: MesaError)] = []
        try sendOperations(for: items, remote: remote, rules: rules, failures: &failures) { batch throws(MesaError) in
            try upload(batch)
        }
        let failed = Set(failures.map(\.path))
        try state.withLock { state throws(MesaError) in
            for item in items where state.table.touched[item.path] == item.version && !failed.contains(item.path) {
                state.table.touched[item.path] = nil
            }
            for (path, version) in localOnly where state.table.touched[path] == version { state.table.touched[path] = nil }
            // A path that failed still needs its journal records: keep them all (replay
            // of what was uploaded is harmless) until a round uploads everything.
            if failures.isEmpty,
               compactAlways || journal.manifestBytes > max(Self.compactionFloor, 2 * journal.compactedBytes) {
                try compact(&state, uploadedThrough: seq, rules: rules)
            }
        }
        if let first = failures.first {
            // Everything else is in the working change; these paths stay pending and
            // the flusher retries them. The message is what `mesa status` shows.
            let list = failures.prefix(5).map { "'\($0.path)': \($0.error.message)" }.joined(separator: "; ")
            let more = failures.count > 5 ? " (and \(failures.count - 5) more)" : ""
            throw MesaError(first.error.code, "cannot upload \(failures.count == 1 ? "" : "\(failures.count) files: ")\(list)\(more); the other files were uploaded, these stay pending and are retried")
        }
        return true
    }

    private static func localState(_ table: InodeTable, _ path: String) -> LocalState {
        guard let ino = RepoFileSystem.lookupPath(table, path), let node = table.nodes[ino] else { return .absent }
        switch node.kind {
        case .directory: return .directory
        case .symlink: return .symlink(node.content)
        case .file: return .file(node.content, node.permissions & 0o100 != 0 ? .executable : .regular)
        // Special files live in the local layer: to the repository, the path is empty.
        case .fifo, .socket, .charDevice, .blockDevice: return .absent
        }
    }

    /// The working change's entries of every parent directory of `paths`.
    private func remoteEntries(for paths: [String], at change: ChangeID, exists: Bool) throws(MesaError) -> [String: DirectoryEntry] {
        var result: [String: DirectoryEntry] = [:]
        guard exists else { return result }
        let parents = Set(paths.map { parentPath($0) })
        for parent in parents {
            do {
                let content = try backend.content(org: org, repo: repo, at: .change(change), path: parent, depth: 1)
                if case .directory(_, _, let entries) = content {
                    for entry in entries { result[entry.path] = entry }
                }
            } catch {
                let failure = MesaError.from(error)
                if failure.code == .notFound || failure.code == .invalidArgument { continue }
                throw failure
            }
        }
        return result
    }

    /// Sends the file operations that make the working change match the snapshot:
    /// deletions first (never below another deleted path), then upserts in batches of
    /// bounded size.
    /// Files above `streamThreshold` are uploaded here, one by one, streamed from their
    /// data file; a file the backend refuses lands in `failures` and is left out, so it
    /// never holds back the others. Files whose content is a blob of the repository
    /// already are referenced by id, never read.
    ///
    /// Each batch goes to `send` as soon as it is full, so one batch of file contents
    /// (`maxBatchBytes`) is in memory at a time, not the whole upload.
    private func sendOperations(for items: [FlushItem], remote: [String: DirectoryEntry], rules: IgnoreRules,
                                failures: inout [(path: String, error: MesaError)],
                                send: ([FileOperation]) throws(MesaError) -> Void) throws(MesaError) {
        var deletes: [String] = []
        var upserts: [(String, LocalState)] = []
        for item in items {
            let existing = remote[item.path]
            switch item.state {
            case .absent:
                // A removed path's kind is known from the store: a removed ignored
                // directory the store holds stays there, like its other changes.
                if let existing, !RepoFileSystem.isLocalOnly(item.path, isDirectory: existing.type == .dir, rules: rules) {
                    deletes.append(item.path)
                }
            case .directory:
                if let existing, existing.type != .dir { deletes.append(item.path) }
            case .file(let content, let mode):
                if existing?.type == .dir { deletes.append(item.path) }
                if case .blob(let oid) = content, existing?.oid == oid, existing?.mode == mode { continue }
                upserts.append((item.path, item.state))
            case .symlink(let content):
                if existing?.type == .dir { deletes.append(item.path) }
                if case .blob(let oid) = content, existing?.oid == oid, existing?.type == .symlink { continue }
                upserts.append((item.path, item.state))
            }
        }
        let deleted = Set(deletes)
        let topDeletes = deletes.filter { path in
            var parent = parentPath(path)
            while !parent.isEmpty {
                if deleted.contains(parent) { return false }
                parent = parentPath(parent)
            }
            return true
        }
        if !topDeletes.isEmpty { try send(topDeletes.map { .delete(path: $0) }) }
        var batch: [FileOperation] = []
        var batchBytes = 0
        for (path, local) in upserts {
            let operation: FileOperation
            if case .file(.data(let id), let mode) = local, dataSize(id) > configuration.streamThreshold {
                do {
                    operation = .upsertBlob(path: path, oid: try streamUpload(id), mode: mode)
                } catch let failure {
                    // A data file gone since the snapshot: a later round sees the new state.
                    if access(journal.dataPath(id), F_OK) != 0 { continue }
                    // Nothing else could succeed now (server down, key refused): fail the round.
                    if [.unavailable, .unauthenticated, .keyExpired, .keyRevoked].contains(failure.code) { throw failure }
                    logger.error("upload of one file failed; uploading the others",
                                 metadata: ["repo": "\(org)/\(repo)", "path": "\(path)", "error": "\(failure.message)"])
                    failures.append((path, failure))
                    continue
                }
            } else {
                do throws(FSError) {
                    switch local {
                    case .file(.blob(let oid), let mode):
                        operation = .upsertBlob(path: path, oid: oid, mode: mode)
                    case .file(let content, let mode):
                        operation = .upsert(path: path, content: try bytes(of: content), mode: mode)
                    case .symlink(let content):
                        operation = .upsert(path: path, content: try bytes(of: content), mode: .symlink)
                    case .absent, .directory:
                        continue
                    }
                } catch where error.errno == ENOENT {
                    // The file vanished since the snapshot; a later round sees its new state.
                    continue
                } catch {
                    throw MesaError(.internal, "cannot read local data of '\(path)' for upload: \(error)")
                }
            }
            let size = operation.contentSize
            if batchBytes + size > configuration.maxBatchBytes, !batch.isEmpty {
                try send(batch)
                batch = []
                batchBytes = 0
            }
            batch.append(operation)
            batchBytes += size
        }
        if !batch.isEmpty { try send(batch) }
    }

    /// The size of a journal data file (0 when it cannot be read: the inline path
    /// then reports the real error).
    private func dataSize(_ id: UInt64) -> Int {
        var info = Glibc.stat()
        return stat(journal.dataPath(id), &info) == 0 ? Int(info.st_size) : 0
    }

    private func streamUpload(_ id: UInt64) throws(MesaError) -> String {
        try mesaErrors { try backend.uploadBlob(org: org, repo: repo, fromFile: journal.dataPath(id)) }
    }

    private func bytes(of content: FileContent) throws(FSError) -> [UInt8] {
        switch content {
        case .data(let id): return try readFile(journal.dataPath(id))
        case .blob(let oid): return try readFile(try cache.path(of: oid, from: backend, org: org, repo: repo, mayBlock: true))
        case .target(let target): return Array(target.utf8)
        case .none: return []
        }
    }

    /// Sends one batch: the first creates the working change on the mount's base, later
    /// ones amend it. The new working change id is journaled before anything else.
    private func upload(_ batch: [FileOperation]) throws(MesaError) {
        let version = revision.current
        if let working = version.working {
            _ = try mesaErrors {
                try backend.updateChange(org: org, repo: repo, id: working, message: nil, files: batch, expectedCommit: nil)
            }
            return
        }
        let base = version.base
        let change = try mesaErrors { try backend.createChange(org: org, repo: repo, base: base, message: "", files: batch) }
        revision.noteWorkingCreated(change.id)
        logger.info("created working change", metadata: ["repo": "\(org)/\(repo)", "change": "\(change.id)", "base": "\(base)"])
        // Persist the new id at once: a crash now must amend this change, not fork another.
        try state.withLock { _ throws(MesaError) in
            do {
                try journal.rewrite(header: revision.header, sync: configuration.durability == .close, keep: { _, _ in true })
            } catch { throw MesaError(.internal, "cannot record the working change in the journal: \(error)") }
        }
    }

    /// Drops journal records the working change now holds. What the store cannot hold
    /// stays: records of local-only paths, and a `mkdir` for every directory without
    /// uploadable content (empty ones, and the parents of local-only ones). When the
    /// journal is quiet, local-only files are re-recorded from the tree instead of
    /// keeping their history, so records do not pile up. Runs under the state lock so
    /// no append interleaves.
    private func compact(_ state: inout CoreState, uploadedThrough seq: UInt64, rules: IgnoreRules) throws(MesaError) {
        let header = revision.header
        let strict = configuration.durability == .close
        do {
            if journal.lastSeq == seq && !strict {
                // Nothing is synced here: a closed file's record refers to its data file,
                // as at close; the next fsync syncs the new manifest.
                try journal.rewrite(header: header, prefix: LocalOverlay.unversionedRecords(state.table, withFiles: true, rules: rules),
                                    sync: false)
            } else if journal.lastSeq == seq {
                // Local-only files are re-recorded from the tree, replacing records that
                // may have held their bytes inline (data file never synced): each new
                // record gets its bytes inline again or its data file fdatasynced.
                // A data file already synced at its current generation needs nothing.
                var prefix: [JournalRecord] = []
                for record in LocalOverlay.unversionedRecords(state.table, withFiles: true, rules: rules) {
                    guard case .file(let path, let data, let permissions, nil) = record,
                          let ino = RepoFileSystem.lookupPath(state.table, path), let node = state.table.nodes[ino],
                          node.syncedWrites != node.writes else { prefix.append(record); continue }
                    let inline = try journal.durableContent(data)
                    if inline == nil { state.table.nodes[ino]?.syncedWrites = node.writes }
                    prefix.append(.file(path: path, data: data, permissions: permissions, inline: inline))
                }
                try journal.rewrite(header: header, prefix: prefix)
            } else {
                try journal.rewrite(header: header, prefix: LocalOverlay.unversionedRecords(state.table, withFiles: false, rules: rules),
                                    sync: strict) { recordSeq, record in
                    recordSeq > seq || record.paths.contains { RepoFileSystem.mayBeLocalOnly($0, rules: rules) }
                }
            }
        } catch {
            throw MesaError(.internal, "cannot compact the journal: \(error)")
        }
    }
}

extension FileOperation {
    var contentSize: Int {
        switch self {
        case .upsert(_, let content, _): content.count
        case .upsertBlob, .delete: 0
        }
    }
}
