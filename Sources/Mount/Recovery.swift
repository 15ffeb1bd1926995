import Foundation

extension RepoFileSystem {
    /// Re-applies a previous run's journal records on top of the header's change. Each
    /// record is applied on its own; one that no longer fits (its parent is gone, or
    /// the upload it describes already happened) is skipped and logged, never fatal.
    /// Returns the paths whose closed content could not be restored: a `.file` record
    /// without inline bytes whose data file is missing, and that no later record
    /// replaced or removed. Those are reported (logged as errors, and in
    /// `status().lastError`), never replayed as empty files.
    @discardableResult
    func replay(_ records: [JournalRecord]) throws(FSError) -> [String] {
        journal.setMuted(true)
        defer { journal.setMuted(false) }
        var missing: Set<String> = []
        for record in records {
            if case .file(let path, let data, _, nil) = record, access(journal.dataPath(data), F_OK) != 0 {
                missing.insert(path)
                continue
            }
            Self.settle(&missing, by: record)
            do {
                try apply(record)
            } catch where error.errno == EIO || error.errno == EHOSTUNREACH {
                // The backend is unreachable: give up now and let the daemon retry the
                // whole mount; the journal is untouched.
                throw error
            } catch {
                logger.warning("skipped a journal record during replay", metadata: ["record": "\(record)", "error": "\(error)"])
            }
        }
        let lost = missing.sorted()
        for path in lost {
            logger.error("journal replay: the data of a closed file is missing; the file keeps its previous state",
                         metadata: ["repo": "\(org)/\(repo)", "path": "\(path)"])
        }
        return lost
    }

    /// A later record that replaces or removes a path (or a directory above it) makes
    /// an earlier missing data file irrelevant (e.g. a file written, closed, then
    /// deleted: its data file went with the deletion). A rename carries the loss along.
    private static func settle(_ missing: inout Set<String>, by record: JournalRecord) {
        guard !missing.isEmpty else { return }
        func under(_ path: String, _ root: String) -> Bool { path == root || path.hasPrefix(root + "/") }
        switch record {
        case .rename(let from, let to):
            let moved = missing.filter { under($0, from) }
            missing = missing.filter { !under($0, from) && !under($0, to) }
            for path in moved { missing.insert(to + path.dropFirst(from.count)) }
        case .chmod:
            break
        default:
            for path in record.paths { missing = missing.filter { !under($0, path) } }
        }
    }

    /// The listed parent directory of `path` and the last component.
    private func resolveParent(_ path: String) throws(FSError) -> (UInt64, String) {
        let components = path.split(separator: "/").map(String.init)
        guard let name = components.last else { throw FSError.invalid("empty path in journal") }
        var ino = InodeTable.rootIno
        for component in components.dropLast() {
            try ensureListed(ino, mayBlock: true)
            guard let next = state.withLock({ $0.table.nodes[ino]?.children?[component] }) else {
                throw FSError.noEntry(path)
            }
            ino = next
        }
        try ensureListed(ino, mayBlock: true)
        return (ino, name)
    }

    private func apply(_ record: JournalRecord) throws(FSError) {
        switch record {
        case .file(let path, let recorded, let permissions, let inline):
            let (parent, name) = try resolveParent(path)
            let data: UInt64
            let size: UInt64
            if let inline {
                // The record holds the bytes; `recorded` was never synced (and may since
                // hold later, unpromised bytes a later record refers to): use a fresh data
                // file, so a later record for `recorded` still finds that one untouched.
                data = try journal.createData(with: inline)
                size = UInt64(inline.count)
            } else {
                var info = Glibc.stat()
                guard lstat(journal.dataPath(recorded), &info) == 0 else { throw FSError.noEntry("journal data \(recorded) for '\(path)'") }
                data = recorded
                size = UInt64(info.st_size)
            }
            // A file already there is the same file with new bytes (it may have hard
            // links, which must keep sharing it); anything else is replaced.
            let updated = state.withLock { state -> [UInt64]? in
                guard let ino = state.table.nodes[parent]?.children?[name], var node = state.table.nodes[ino],
                      node.kind == .file else { return nil }
                var garbage: [UInt64] = []
                if case .data(let old) = node.content, old != data { garbage.append(old) }
                node.content = .data(data)
                node.size = size
                node.permissions = permissions
                node.syncedWrites = nil
                state.table.nodes[ino] = node
                state.table.noteMetadata(ino)
                state.table.touchLinks(ino)
                return garbage
            }
            if let updated {
                discard(updated)
                return
            }
            try replace(parent: parent, name: name, path: path) { ino, now in
                var node = Node(ino: ino, parent: parent, name: name, kind: .file, permissions: permissions, uid: configuration.uid,
                                gid: configuration.gid, size: size, atime: now, mtime: now, ctime: now,
                                content: .data(data), children: nil)
                // Whether a referenced data file was synced is unknown (a close does not
                // sync it unless durability = close): the next strict compaction syncs it.
                node.syncedWrites = nil
                return node
            }
        case .symlink(let path, let target):
            let (parent, name) = try resolveParent(path)
            try replace(parent: parent, name: name, path: path) { ino, now in
                Node(ino: ino, parent: parent, name: name, kind: .symlink, permissions: 0o777, uid: configuration.uid,
                     gid: configuration.gid, size: UInt64(target.utf8.count), atime: now, mtime: now, ctime: now,
                     content: .target(target), children: nil)
            }
        case .mkdir(let path, let permissions):
            let (parent, name) = try resolveParent(path)
            let exists = state.withLock { state in
                state.table.nodes[parent]?.children?[name].flatMap { state.table.nodes[$0] }?.kind == .directory
            }
            if exists { return }
            try replace(parent: parent, name: name, path: path) { ino, now in
                Node(ino: ino, parent: parent, name: name, kind: .directory, permissions: permissions, uid: configuration.uid,
                     gid: configuration.gid, size: 4096, atime: now, mtime: now, ctime: now, content: .none, children: [:])
            }
        case .remove(let path):
            let (parent, name) = try resolveParent(path)
            let garbage = state.withLock { state -> [UInt64] in
                guard let ino = state.table.nodes[parent]?.children?[name] else { return [] }
                state.table.touch(path)
                return state.table.unlinkEntry(parent: parent, name: name, ino)
            }
            discard(garbage)
        case .rename(let from, let to):
            let (parent, name) = try resolveParent(from)
            let (newParent, newName) = try resolveParent(to)
            // Over a non-empty directory only happens if an upload already applied part of
            // this history: clear the target so the record still lands.
            try rename(parent: parent, name: name, newParent: newParent, newName: newName, flags: 0, mayBlock: true)
        case .chmod(let path, let permissions):
            let (parent, name) = try resolveParent(path)
            state.withLock { state in
                guard let ino = state.table.nodes[parent]?.children?[name] else { return }
                state.table.nodes[ino]?.permissions = permissions
                state.table.noteMetadata(ino)
                state.table.touch(path)
            }
        case .attributes(let path, let permissions, let uid, let gid):
            let (parent, name) = try resolveParent(path)
            state.withLock { state in
                guard let ino = state.table.nodes[parent]?.children?[name], var node = state.table.nodes[ino] else { return }
                if node.kind != .symlink { node.permissions = permissions }
                node.uid = uid
                node.gid = gid
                state.table.nodes[ino] = node
                state.table.noteMetadata(ino)
                // An upload compares with the repository: only a changed exec bit uploads.
                if node.kind == .file { state.table.touchLinks(ino) }
            }
        case .special(let path, let kind, let permissions, let rdev):
            let (parent, name) = try resolveParent(path)
            try replace(parent: parent, name: name, path: path) { ino, now in
                var node = Node(ino: ino, parent: parent, name: name, kind: kind, permissions: permissions, uid: configuration.uid,
                                gid: configuration.gid, size: 0, atime: now, mtime: now, ctime: now, content: .none, children: nil)
                node.rdev = rdev
                return node
            }
        case .link(let from, let to):
            let (sourceParent, sourceName) = try resolveParent(from)
            let (parent, name) = try resolveParent(to)
            let garbage = try state.withLock { state throws(FSError) -> [UInt64] in
                guard let source = state.table.nodes[sourceParent]?.children?[sourceName], var node = state.table.nodes[source],
                      node.kind != .directory else { throw FSError.noEntry(from) }
                var garbage: [UInt64] = []
                if let old = state.table.nodes[parent]?.children?[name] {
                    if old == source { return [] }
                    garbage = state.table.unlinkEntry(parent: parent, name: name, old)
                    node = state.table.nodes[source] ?? node
                }
                node.links.append(Link(parent: parent, name: name))
                state.table.nodes[source] = node
                state.table.nodes[parent]?.children?[name] = source
                state.table.noteMetadata(source)
                state.table.touch(to)
                return garbage
            }
            discard(garbage)
        }
    }

    /// Puts a new node at `parent/name`, replacing whatever is there.
    private func replace(parent: UInt64, name: String, path: String, make: (UInt64, Timestamp) -> Node) throws(FSError) {
        let garbage = state.withLock { state -> [UInt64] in
            var garbage: [UInt64] = []
            if let old = state.table.nodes[parent]?.children?[name] { garbage = state.table.unlinkEntry(parent: parent, name: name, old) }
            let node = make(state.table.allocateIno(), Timestamp.now())
            state.table.insert(node)
            state.table.noteMetadata(node.ino)
            state.table.touch(path)
            return garbage
        }
        // A replaced node's data file may be the one the new node uses (a record
        // replayed twice); never delete that one.
        let keep: UInt64? = state.withLock { state in
            guard let ino = state.table.nodes[parent]?.children?[name], case .data(let id) = state.table.nodes[ino]?.content else { return nil }
            return id
        }
        discard(garbage.filter { $0 != keep })
    }
}
