import CFuse
import Foundation
import MesaAPI
import MesaIgnore
import Store

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

extension RepoFileSystem {
    /// Uploads every local change now and returns when the working change holds them
    /// (or throws the backend's error; nothing is dropped, a later flush retries).
    /// Checkpoint, unmount and shutdown call this.
    public func flush() throws(MesaError) {
        try flushLock.withLock { _ throws(MesaError) in try flushUnlocked() }
    }

    /// Flush rounds until nothing is pending (bounded: a writer that never stops must
    /// not starve the caller). Callers hold `flushLock`.
    func flushUnlocked() throws(MesaError) {
        for _ in 0..<16 {
            do {
                guard try flushRound(compactAlways: true) else { break }
                versions.withLock { $0.lastError = nil; $0.lastFlush = Date() }
            } catch {
                versions.withLock { $0.lastError = error.message }
                noteBackendFailure(error)
                throw error
            }
        }
    }

    /// Called by the flusher thread.
    func backgroundRound() -> Flusher.Outcome {
        flushLock.withLock { _ in
            do {
                let worked = try flushRound(compactAlways: false)
                if worked {
                    versions.withLock { $0.lastError = nil; $0.lastFlush = Date() }
                    // An upload held a batch of file contents: give the freed pages back.
                    cfuse_malloc_trim()
                }
                let rules = cachedIgnoreRules
                let pending = state.withLock { state in
                    state.table.touched.keys.contains { !Self.isLocalOnly(state.table, $0, rules: rules) }
                }
                return pending ? .more : .idle
            } catch {
                let failure = MesaError.from(error)
                versions.withLock { $0.lastError = failure.message }
                noteBackendFailure(failure)
                logger.warning("upload failed; will retry", metadata: ["repo": "\(org)/\(repo)", "error": "\(failure.message)"])
                return .failed
            }
        }
    }

    /// One upload: snapshot the changed paths, compare with the working change, send
    /// the differences, forget the paths nobody changed meanwhile, compact the journal.
    /// Returns whether anything was pending.
    ///
    /// The journal is compacted after an explicit flush (checkpoint, unmount), and after
    /// a background round only once it has doubled since the last compaction: replaying
    /// an uploaded record is harmless, while rewriting the manifest re-reads every record
    /// under the core's lock, which during `git add` of thousands of files (a local-only
    /// `.git` record each) cost more than the uploads.
    private func flushRound(compactAlways: Bool) throws(MesaError) -> Bool {
        // Nothing changed: no rules to read (a backend call for an unlisted root).
        if state.withLock({ $0.table.touched.isEmpty }) { return false }
        let rules = ignoreRules(mayBlock: true)
        let previousRules = ignore.withLock { ignore in defer { ignore.flushedRules = rules }; return ignore.flushedRules }
        let (items, seq, localOnly) = state.withLock { state -> ([FlushItem], UInt64, [String: UInt64]) in
            if rules != previousRules { Self.retouchUnignored(&state.table, was: previousRules, now: rules) }
            var items: [FlushItem] = []
            var localOnly: [String: UInt64] = [:]
            for (path, version) in state.table.touched {
                let ino = Self.lookupPath(state.table, path)
                let node = ino.flatMap { state.table.nodes[$0] }
                if Self.isLocalOnly(path, isDirectory: node.map { $0.kind == .directory }, rules: rules) {
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
        let (remoteChange, hadWorking) = versions.withLock { ($0.working ?? $0.base, $0.working != nil) }
        let remote = try remoteEntries(for: items.map(\.path), at: remoteChange, exists: hadWorking || !remoteChange.isRoot)
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

    /// Below this size a background round never compacts the manifest.
    static let compactionFloor = 1 << 20
    /// After a `.mesaignore` edit: local content that was ephemeral and no longer is
    /// becomes pending, so the next round uploads it. (Paths that become ignored keep
    /// whatever the store already holds; only later changes stay local.)
    static func retouchUnignored(_ table: inout InodeTable, was old: IgnoreRules, now new: IgnoreRules) {
        for record in unversionedRecords(table, withFiles: true, rules: old) {
            guard let path = record.paths.first, !path.isEmpty,
                  let ino = lookupPath(table, path), let node = table.nodes[ino],
                  !isLocalOnly(path, isDirectory: node.kind == .directory, rules: new) else { continue }
            table.touch(path)
        }
    }

    private static func localState(_ table: InodeTable, _ path: String) -> LocalState {
        guard let ino = lookupPath(table, path), let node = table.nodes[ino] else { return .absent }
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
                if failure.code == .notFound || failure.code == .invalidParams { continue }
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
                if let existing, !Self.isLocalOnly(item.path, isDirectory: existing.type == .dir, rules: rules) {
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
        case .blob(let oid): return try readFile(try blobPath(oid, mayBlock: true))
        case .target(let target): return Array(target.utf8)
        case .none: return []
        }
    }

    /// Sends one batch: the first creates the working change on the mount's base, later
    /// ones amend it. The new working change id is journaled before anything else.
    private func upload(_ batch: [FileOperation]) throws(MesaError) {
        let (base, working) = versions.withLock { ($0.base, $0.working) }
        if let working {
            _ = try mesaErrors {
                try backend.updateChange(org: org, repo: repo, id: working, message: nil, files: batch, expectedCommit: nil)
            }
            return
        }
        let change = try mesaErrors { try backend.createChange(org: org, repo: repo, base: base, message: "", files: batch) }
        versions.withLock { $0.working = change.id }
        logger.info("created working change", metadata: ["repo": "\(org)/\(repo)", "change": "\(change.id)", "base": "\(base)"])
        // Persist the new id at once: a crash now must amend this change, not fork another.
        try state.withLock { state throws(MesaError) in
            do {
                try journal.rewrite(header: currentHeader(), sync: configuration.durability == .close, keep: { _, _ in true })
            } catch { throw MesaError(.internal, "cannot record the working change in the journal: \(error)") }
        }
    }

    func currentHeader() -> JournalHeader {
        versions.withLock { version in
            JournalHeader(org: org, repo: repo, bookmark: version.bookmark, bookmarkExpected: version.bookmarkExpected?.rawValue,
                          base: version.base.rawValue, working: version.working?.rawValue, baseTime: version.baseTime)
        }
    }

    /// Drops journal records the working change now holds. What the store cannot hold
    /// stays: records of local-only paths, and a `mkdir` for every directory without
    /// uploadable content (empty ones, and the parents of local-only ones). When the
    /// journal is quiet, local-only files are re-recorded from the tree instead of
    /// keeping their history, so records do not pile up. Runs under the state lock so
    /// no append interleaves.
    func compact(_ state: inout CoreState, uploadedThrough seq: UInt64, rules: IgnoreRules) throws(MesaError) {
        let header = currentHeader()
        let strict = configuration.durability == .close
        do {
            if journal.lastSeq == seq && !strict {
                // Nothing is synced here: a closed file's record refers to its data file,
                // as at close; the next fsync syncs the new manifest.
                try journal.rewrite(header: header, prefix: Self.unversionedRecords(state.table, withFiles: true, rules: rules),
                                    sync: false)
            } else if journal.lastSeq == seq {
                // Local-only files are re-recorded from the tree, replacing records that
                // may have held their bytes inline (data file never synced): each new
                // record gets its bytes inline again or its data file fdatasynced.
                // A data file already synced at its current generation needs nothing.
                var prefix: [JournalRecord] = []
                for record in Self.unversionedRecords(state.table, withFiles: true, rules: rules) {
                    guard case .file(let path, let data, let permissions, nil) = record,
                          let ino = Self.lookupPath(state.table, path), let node = state.table.nodes[ino],
                          node.syncedWrites != node.writes else { prefix.append(record); continue }
                    let inline = try journal.durableContent(data)
                    if inline == nil { state.table.nodes[ino]?.syncedWrites = node.writes }
                    prefix.append(.file(path: path, data: data, permissions: permissions, inline: inline))
                }
                try journal.rewrite(header: header, prefix: prefix)
            } else {
                try journal.rewrite(header: header, prefix: Self.unversionedRecords(state.table, withFiles: false, rules: rules),
                                    sync: strict) { recordSeq, record in
                    recordSeq > seq || record.paths.contains { Self.mayBeLocalOnly($0, rules: rules) }
                }
            }
        } catch {
            throw MesaError(.internal, "cannot compact the journal: \(error)")
        }
    }

    /// Records recreating what no upload can: directories without uploadable content
    /// and (with `withFiles`) every local-only node. Only subtrees of locally created
    /// directories are walked, plus the direct children of directories known to hold
    /// local-only files (`ephemeralParents`, e.g. a `*.pyc` in a repository
    /// directory). Parents precede children; replaying a `mkdir` of an existing
    /// directory is a no-op, so the prefix is always safe.
    static func unversionedRecords(_ table: InodeTable, withFiles: Bool, rules: IgnoreRules) -> [JournalRecord] {
        var records: [JournalRecord] = []
        var visited: Set<UInt64> = []
        func fileRecord(_ node: Node, _ path: String) {
            switch node.content {
            case .data(let id): records.append(.file(path: path, data: id, permissions: node.permissions))
            case .target(let target): records.append(.symlink(path: path, target: target))
            default: break
            }
        }
        /// Returns whether the subtree holds uploadable content.
        @discardableResult
        func walk(_ ino: UInt64, _ path: String, _ inside: Bool) -> Bool {
            guard let node = table.nodes[ino] else { return false }
            let local = inside || isLocalOnly(path, isDirectory: node.kind == .directory, rules: rules)
            switch node.kind {
            case .fifo, .socket, .charDevice, .blockDevice:
                return false  // recorded with the local layer below
            case .file, .symlink:
                if local && withFiles { fileRecord(node, path) }
                return !local
            case .directory:
                // Unlisted directories come from the repository: they have content.
                guard let children = node.children, visited.insert(ino).inserted else { return true }
                let mark = records.count
                records.append(.mkdir(path: path, permissions: node.permissions))
                var content = false
                for (name, child) in children {
                    if walk(child, path + "/" + name, local) { content = true }
                }
                // A directory with uploadable content reappears from the store by itself.
                if content && !local && records.count == mark + 1 { records.remove(at: mark) }
                return content
            }
        }
        let roots = table.localDirectories.compactMap { ino in table.path(of: ino).map { (ino, $0) } }
            .sorted { $0.1.split(separator: "/").count < $1.1.split(separator: "/").count }
        for (ino, path) in roots where !path.isEmpty {
            let parent = parentPath(path)
            walk(ino, path, !parent.isEmpty && isLocalOnly(parent, isDirectory: true, rules: rules))
        }
        guard withFiles else { return records }
        for ino in table.ephemeralParents where !visited.contains(ino) {
            guard let directory = table.path(of: ino), let children = table.nodes[ino]?.children else { continue }
            for (name, child) in children.sorted(by: { $0.key < $1.key }) {
                guard let node = table.nodes[child], node.kind != .directory else { continue }
                let path = directory.isEmpty ? name : directory + "/" + name
                if isLocalOnly(path, isDirectory: false, rules: rules) { fileRecord(node, path) }
            }
        }
        return records + localLayerRecords(table, after: records)
    }

    /// Records recreating the local layer: special files, hard links, and owners and
    /// modes a checkout would not give (for the primary path of each node). Each
    /// node's missing parent directories come first (a `mkdir` of an existing one is a
    /// no-op at replay), then the node, its links and its metadata.
    static func localLayerRecords(_ table: InodeTable, after earlier: [JournalRecord]) -> [JournalRecord] {
        var records: [JournalRecord] = []
        var made = Set(earlier.compactMap { record -> String? in
            if case .mkdir(let path, _) = record { return path } else { return nil }
        })
        // Shallower paths first (a directory's record before its children's), then by name.
        let nodes = table.localLayer.compactMap { ino -> (node: Node, path: String, depth: Int)? in
            guard let node = table.nodes[ino], node.linked, let path = table.path(of: ino), !path.isEmpty else { return nil }
            return (node, path, path.split(separator: "/").count)
        }.sorted { ($0.depth, $0.path) < ($1.depth, $1.path) }.map { ($0.node, $0.path) }
        for (node, path) in nodes {
            let linkPaths = Array(table.paths(of: node.ino).dropFirst())
            for target in [path] + linkPaths {
                var ancestors: [String] = []
                var parent = parentPath(target)
                while !parent.isEmpty, !made.contains(parent) {
                    ancestors.append(parent)
                    parent = parentPath(parent)
                }
                for directory in ancestors.reversed() {
                    let permissions = lookupPath(table, directory).flatMap { table.nodes[$0]?.permissions } ?? 0o755
                    records.append(.mkdir(path: directory, permissions: permissions))
                    made.insert(directory)
                }
            }
            if node.kind.isSpecial {
                records.append(.special(path: path, kind: node.kind, permissions: node.permissions, rdev: node.rdev))
            }
            for link in linkPaths { records.append(.link(from: path, to: link)) }
            records.append(.attributes(path: path, permissions: node.permissions, uid: node.uid, gid: node.gid))
            if node.kind == .directory { made.insert(path) }
        }
        return records
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
