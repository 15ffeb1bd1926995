import CFuse
import Foundation
import MesaAPI
import MesaIgnore
import Store

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
                revision.noteUploaded()
            } catch {
                revision.noteFailure(error.message)
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
                    revision.noteUploaded()
                    // An upload held a batch of file contents: give the freed pages back.
                    cfuse_malloc_trim()
                }
                return uploader.hasPending(rules: cachedIgnoreRules) ? .more : .idle
            } catch {
                let failure = MesaError.from(error)
                revision.noteFailure(failure.message)
                noteBackendFailure(failure)
                logger.warning("upload failed; will retry", metadata: ["repo": "\(org)/\(repo)", "error": "\(failure.message)"])
                return .failed
            }
        }
    }

    /// One upload round (`Uploader.round`), unless nothing changed: then not even the
    /// rules are read (a backend call for an unlisted root).
    private func flushRound(compactAlways: Bool) throws(MesaError) -> Bool {
        if state.withLock({ $0.table.touched.isEmpty }) { return false }
        return try uploader.round(rules: ignoreRules(mayBlock: true), compactAlways: compactAlways)
    }

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
