import Foundation
import Logging
import MesaIgnore

/// What replay needs of the core besides the table: listings from the backend (a
/// record's parent directories) and rename with all its rules. `RepoFileSystem` is one.
protocol ReplayHost: AnyObject, Sendable {
    func ensureListed(_ ino: UInt64, mayBlock: Bool) throws(FSError)
    func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32,
                mayBlock: Bool) throws(FSError)
}

extension RepoFileSystem: ReplayHost {}

/// The mount's local side of the journal: replaying a previous run's records onto the
/// inode table (crash recovery), the records that recreate what no upload can (local-only
/// paths, empty directories, the local layer: compaction writes them), and giving back
/// data files no node uses. The live write paths (RepoFileSystem+Write/+Files) append
/// their records themselves, journal first, under the core's lock.
///
/// Lock order: owns no lock. Takes the core's lock (`state`) briefly for each record it
/// applies, never across a call to the host (whose methods take it themselves); the
/// journal's lock nests inside.
final class LocalOverlay: Sendable {
    let journal: Journal
    /// The core's lock: replay changes the inode table.
    let state: Locked<CoreState>
    /// Owner of replayed nodes (the journal records an owner only when it differs).
    let uid: UInt32
    let gid: UInt32
    let logger: Logger
    let org: String
    let repo: String

    init(journal: Journal, state: Locked<CoreState>, uid: UInt32, gid: UInt32, org: String, repo: String, logger: Logger) {
        self.journal = journal
        self.state = state
        self.uid = uid
        self.gid = gid
        self.org = org
        self.repo = repo
        self.logger = logger
    }

    /// Gives back data files that no node uses any more (the pool hands them out again,
    /// same id, new content). Not while the journal replays: a replay meets the records
    /// of a data file's old owner (its `.file` and then its `.remove`) before those of
    /// its new owner, and emptying it at the `.remove` would lose the new owner's bytes;
    /// the garbage collection after replay frees what is left.
    func discard(_ dataFiles: [UInt64]) {
        guard !journal.isMuted else { return }
        for id in dataFiles { journal.removeData(id) }
    }

    /// Re-applies a previous run's journal records on top of the header's change. Each
    /// record is applied on its own; one that no longer fits (its parent is gone, or
    /// the upload it describes already happened) is skipped and logged, never fatal.
    /// Returns the paths whose closed content could not be restored: a `.file` record
    /// without inline bytes whose data file is missing, and that no later record
    /// replaced or removed. Those are reported (logged as errors, and in
    /// `status().lastError`), never replayed as empty files.
    @discardableResult
    func replay(_ records: [JournalRecord], host: some ReplayHost) throws(FSError) -> [String] {
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
                try apply(record, host)
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
    private func resolveParent(_ path: String, _ host: some ReplayHost) throws(FSError) -> (UInt64, String) {
        let components = path.split(separator: "/").map(String.init)
        guard let name = components.last else { throw FSError.invalid("empty path in journal") }
        var ino = InodeTable.rootIno
        for component in components.dropLast() {
            try host.ensureListed(ino, mayBlock: true)
            guard let next = state.withLock({ $0.table.nodes[ino]?.children?[component] }) else {
                throw FSError.noEntry(path)
            }
            ino = next
        }
        try host.ensureListed(ino, mayBlock: true)
        return (ino, name)
    }

    private func apply(_ record: JournalRecord, _ host: some ReplayHost) throws(FSError) {
        switch record {
        case .file(let path, let recorded, let permissions, let inline):
            let (parent, name) = try resolveParent(path, host)
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
                var node = Node(ino: ino, parent: parent, name: name, kind: .file, permissions: permissions, uid: uid,
                                gid: gid, size: size, atime: now, mtime: now, ctime: now,
                                content: .data(data), children: nil)
                // Whether a referenced data file was synced is unknown (a close does not
                // sync it unless durability = close): the next strict compaction syncs it.
                node.syncedWrites = nil
                return node
            }
        case .symlink(let path, let target):
            let (parent, name) = try resolveParent(path, host)
            try replace(parent: parent, name: name, path: path) { ino, now in
                Node(ino: ino, parent: parent, name: name, kind: .symlink, permissions: 0o777, uid: uid,
                     gid: gid, size: UInt64(target.utf8.count), atime: now, mtime: now, ctime: now,
                     content: .target(target), children: nil)
            }
        case .mkdir(let path, let permissions):
            let (parent, name) = try resolveParent(path, host)
            let exists = state.withLock { state in
                state.table.nodes[parent]?.children?[name].flatMap { state.table.nodes[$0] }?.kind == .directory
            }
            if exists { return }
            try replace(parent: parent, name: name, path: path) { ino, now in
                Node(ino: ino, parent: parent, name: name, kind: .directory, permissions: permissions, uid: uid,
                     gid: gid, size: 4096, atime: now, mtime: now, ctime: now, content: .none, children: [:])
            }
        case .remove(let path):
            let (parent, name) = try resolveParent(path, host)
            let garbage = state.withLock { state -> [UInt64] in
                guard let ino = state.table.nodes[parent]?.children?[name] else { return [] }
                state.table.touch(path)
                return state.table.unlinkEntry(parent: parent, name: name, ino)
            }
            discard(garbage)
        case .rename(let from, let to):
            let (parent, name) = try resolveParent(from, host)
            let (newParent, newName) = try resolveParent(to, host)
            // Over a non-empty directory only happens if an upload already applied part of
            // this history: clear the target so the record still lands.
            try host.rename(parent: parent, name: name, newParent: newParent, newName: newName, flags: 0, mayBlock: true)
        case .chmod(let path, let permissions):
            let (parent, name) = try resolveParent(path, host)
            state.withLock { state in
                guard let ino = state.table.nodes[parent]?.children?[name] else { return }
                state.table.nodes[ino]?.permissions = permissions
                state.table.noteMetadata(ino)
                state.table.touch(path)
            }
        case .attributes(let path, let permissions, let uid, let gid):
            let (parent, name) = try resolveParent(path, host)
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
            let (parent, name) = try resolveParent(path, host)
            try replace(parent: parent, name: name, path: path) { ino, now in
                var node = Node(ino: ino, parent: parent, name: name, kind: kind, permissions: permissions, uid: uid,
                                gid: gid, size: 0, atime: now, mtime: now, ctime: now, content: .none, children: nil)
                node.rdev = rdev
                return node
            }
        case .link(let from, let to):
            let (sourceParent, sourceName) = try resolveParent(from, host)
            let (parent, name) = try resolveParent(to, host)
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

    // MARK: What no upload can recreate

    /// After a `.mesaignore` edit: local content that was ephemeral and no longer is
    /// becomes pending, so the next round uploads it. (Paths that become ignored keep
    /// whatever the store already holds; only later changes stay local.)
    static func retouchUnignored(_ table: inout InodeTable, was old: IgnoreRules, now new: IgnoreRules) {
        for record in unversionedRecords(table, withFiles: true, rules: old) {
            guard let path = record.paths.first, !path.isEmpty,
                  let ino = RepoFileSystem.lookupPath(table, path), let node = table.nodes[ino],
                  !RepoFileSystem.isLocalOnly(path, isDirectory: node.kind == .directory, rules: new) else { continue }
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
            let local = inside || RepoFileSystem.isLocalOnly(path, isDirectory: node.kind == .directory, rules: rules)
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
            walk(ino, path, !parent.isEmpty && RepoFileSystem.isLocalOnly(parent, isDirectory: true, rules: rules))
        }
        guard withFiles else { return records }
        for ino in table.ephemeralParents where !visited.contains(ino) {
            guard let directory = table.path(of: ino), let children = table.nodes[ino]?.children else { continue }
            for (name, child) in children.sorted(by: { $0.key < $1.key }) {
                guard let node = table.nodes[child], node.kind != .directory else { continue }
                let path = directory.isEmpty ? name : directory + "/" + name
                if RepoFileSystem.isLocalOnly(path, isDirectory: false, rules: rules) { fileRecord(node, path) }
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
                    let permissions = RepoFileSystem.lookupPath(table, directory).flatMap { table.nodes[$0]?.permissions } ?? 0o755
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
