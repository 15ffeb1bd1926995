import Foundation
import Model
import MesaIgnore

public let renameNoReplace: UInt32 = 1  // RENAME_NOREPLACE
public let renameExchange: UInt32 = 2   // RENAME_EXCHANGE

extension RepoFileSystem {
    /// Creates and opens a new regular file.
    public func create(parent: UInt64, name: String, permissions: UInt32, flags: OpenFlags, caller: Caller? = nil,
                       mayBlock: Bool = true) throws(FSError) -> (Attributes, OpenResult) {
        try guardKey(mayBlock: mayBlock)
        guard !isReadOnly else { throw FSError.readOnly }
        try Self.checkName(name)
        try ensureListed(parent, mayBlock: mayBlock)
        let (id, descriptor) = try journal.createData()
        let created: (Attributes, OpenResult)?
        do {
            created = try createLocked(parent: parent, name: name, permissions: permissions, flags: flags, caller: caller,
                                       id: id, descriptor: descriptor)
        } catch {
            close(descriptor)
            journal.removeData(id)
            throw error
        }
        if let created { return created }
        // Lost a race with another creator: open what is there, as open(2) would.
        close(descriptor)
        journal.removeData(id)
        let attributes = try lookup(parent: parent, name: name, mayBlock: mayBlock)
        let opened = try open(attributes.ino, flags: flags, mayBlock: mayBlock)
        return (try getattr(attributes.ino), opened)
    }

    /// The in-memory half of create: nil when the name exists and O_EXCL was not given.
    private func createLocked(parent: UInt64, name: String, permissions: UInt32, flags: OpenFlags, caller: Caller?,
                              id: UInt64, descriptor: Int32) throws(FSError) -> (Attributes, OpenResult)? {
        let created = try state.withLock { state throws(FSError) -> (Attributes, OpenResult)? in
            let (parentNode, children) = try state.table.directory(parent)
            if children[name] != nil {
                if flags.exclusive { throw FSError.exists(state.table.childPath(state.table.path(of: parent) ?? "?", name)) }
                return nil
            }
            guard let parentPath = state.table.path(of: parent) else { throw FSError.noEntry("directory inode \(parent)") }
            let path = state.table.childPath(parentPath, name)
            try Self.checkStorable(path)
            let now = Timestamp.now()
            let owner = self.owner(caller, parent: parentNode)
            var node = Node(ino: state.table.allocateIno(), parent: parent, name: name, kind: .file,
                            permissions: permissions & 0o7777, uid: owner.uid, gid: owner.gid, size: 0,
                            atime: now, mtime: now, ctime: now, content: .data(id), children: nil)
            node.lookups = 1
            node.opens = 1
            // Empty, so recorded inline: nothing to sync but the journal. The data file
            // comes from the pool, its directory entry already durable. Journaled
            // before the table changes: a full disk refuses the create and changes nothing.
            try journal.append([.file(path: path, data: id, permissions: node.permissions, inline: Data())]
                               + metadataRecords(node, path: path, state.table))
            state.table.insert(node)
            state.table.noteMetadata(node.ino)
            touchParent(parent, &state, now)
            state.table.touch(path)
            let handle = newHandleID(&state)
            // Dirty from birth: closing an untouched new file must still record it durably.
            state.files[handle] = OpenFile(ino: node.ino, writable: true, append: flags.append, source: .data(id),
                                             descriptor: descriptor, dirty: true)
            return (state.table.attributes(node), OpenResult(handle: handle, keepCache: false))
        }
        if created != nil { scheduleFlush() }
        return created
    }

    public func mkdir(parent: UInt64, name: String, permissions: UInt32, caller: Caller? = nil,
                      mayBlock: Bool = true) throws(FSError) -> Attributes {
        try addNode(parent: parent, name: name, kind: .directory, permissions: permissions & 0o7777, content: .none,
                    caller: caller, mayBlock: mayBlock) { path, node in .mkdir(path: path, permissions: node.permissions) }
    }

    public func symlink(parent: UInt64, name: String, target: String, caller: Caller? = nil,
                        mayBlock: Bool = true) throws(FSError) -> Attributes {
        guard !target.isEmpty, !target.utf8.contains(0) else { throw FSError.invalid("symlink target must be non-empty") }
        return try addNode(parent: parent, name: name, kind: .symlink, permissions: 0o777, content: .target(target),
                           caller: caller, mayBlock: mayBlock) { path, _ in .symlink(path: path, target: target) }
    }

    /// mknod(2) of a FIFO, socket or device node: it lives in the mount's local layer
    /// (journaled, never uploaded; the kernel serves its I/O). A regular file is created
    /// empty, as mknod(S_IFREG) does.
    public func mknod(parent: UInt64, name: String, mode: UInt32, rdev: UInt64, caller: Caller? = nil,
                      mayBlock: Bool = true) throws(FSError) -> Attributes {
        if mode & UInt32(S_IFMT) == UInt32(S_IFREG) {
            let (attributes, opened) = try create(parent: parent, name: name, permissions: mode & 0o7777,
                                                  flags: OpenFlags(write: true, exclusive: true), caller: caller, mayBlock: mayBlock)
            defer { release(attributes.ino, handle: opened.handle) }
            try flush(attributes.ino, handle: opened.handle)
            return attributes
        }
        guard let kind = NodeKind(specialMode: mode) else { throw FSError.invalid("mknod of an unknown file type \(mode & UInt32(S_IFMT))") }
        let device = kind == .charDevice || kind == .blockDevice ? rdev : 0
        return try addNode(parent: parent, name: name, kind: kind, permissions: mode & 0o7777, content: .none, rdev: device,
                           caller: caller, mayBlock: mayBlock) { path, node in
            .special(path: path, kind: kind, permissions: node.permissions, rdev: device)
        }
    }

    /// link(2): `parent`/`name` becomes another name of `ino` (shared content, owner,
    /// mode and times; `nlink` counts the names). The repository stores each linked path
    /// as a file of its own with the same content (git shares the blob); the link
    /// identity lives in the mount's local layer.
    public func link(_ ino: UInt64, parent: UInt64, name: String, mayBlock: Bool = true) throws(FSError) -> Attributes {
        try guardKey(mayBlock: mayBlock)
        guard !isReadOnly else { throw FSError.readOnly }
        try Self.checkName(name)
        try ensureListed(parent, mayBlock: mayBlock)
        let attributes = try state.withLock { state throws(FSError) -> Attributes in
            var node = try state.table.node(ino)
            guard node.kind != .directory else { throw FSError(EPERM, "cannot hard-link directory \(state.table.path(of: ino) ?? "inode \(ino)")") }
            guard let from = state.table.path(of: ino) else { throw FSError.noEntry("inode \(ino) (it was removed)") }
            let (_, children) = try state.table.directory(parent)
            guard let parentPath = state.table.path(of: parent) else { throw FSError.noEntry("directory inode \(parent)") }
            let path = state.table.childPath(parentPath, name)
            if children[name] != nil { throw FSError.exists(path) }
            try Self.checkStorable(path)
            guard node.links.count < 65_000 else { throw FSError(EMLINK, "'\(from)' has too many hard links") }
            try journal.append(.link(from: from, to: path))
            let now = Timestamp.now()
            node.links.append(Link(parent: parent, name: name))
            node.lookups += 1
            node.ctime = now
            state.table.nodes[ino] = node
            state.table.nodes[parent]?.children?[name] = ino
            state.table.noteMetadata(ino)
            touchParent(parent, &state, now)
            state.table.touch(path)
            return state.table.attributes(node)
        }
        scheduleFlush()
        return attributes
    }

    private func addNode(parent: UInt64, name: String, kind: NodeKind, permissions: UInt32, content: FileContent,
                         rdev: UInt64 = 0, caller: Caller?, mayBlock: Bool,
                         record: (String, Node) -> JournalRecord) throws(FSError) -> Attributes {
        try guardKey(mayBlock: mayBlock)
        guard !isReadOnly else { throw FSError.readOnly }
        try Self.checkName(name)
        try ensureListed(parent, mayBlock: mayBlock)
        let attributes = try state.withLock { state throws(FSError) -> Attributes in
            let (parentNode, children) = try state.table.directory(parent)
            guard let parentPath = state.table.path(of: parent) else { throw FSError.noEntry("directory inode \(parent)") }
            let path = state.table.childPath(parentPath, name)
            if children[name] != nil { throw FSError.exists(path) }
            try Self.checkStorable(path)
            let now = Timestamp.now()
            let owner = self.owner(caller, parent: parentNode)
            var mode = permissions
            // A directory created in a setgid directory is setgid too, as on ext4.
            if kind == .directory && parentNode.permissions & UInt32(S_ISGID) != 0 { mode |= UInt32(S_ISGID) }
            var node = Node(ino: state.table.allocateIno(), parent: parent, name: name, kind: kind, permissions: mode,
                            uid: owner.uid, gid: owner.gid, size: 0, atime: now, mtime: now, ctime: now,
                            content: content, children: kind == .directory ? [:] : nil)
            if case .target(let target) = content { node.size = UInt64(target.utf8.count) }
            if kind == .directory { node.size = 4096 }
            node.rdev = rdev
            node.lookups = 1
            // Journaled first: a full disk refuses the call and changes nothing.
            try journal.append([record(path, node)] + metadataRecords(node, path: path, state.table))
            state.table.insert(node)
            state.table.noteMetadata(node.ino)
            touchParent(parent, &state, now)
            state.table.touch(path)
            return state.table.attributes(node)
        }
        scheduleFlush()
        return attributes
    }

    /// Who owns a new node: the caller, with the group of a setgid parent directory.
    private func owner(_ caller: Caller?, parent: Node) -> Caller {
        var owner = caller ?? Caller(uid: configuration.uid, gid: configuration.gid)
        if parent.permissions & UInt32(S_ISGID) != 0 { owner.gid = parent.gid }
        return owner
    }

    /// Journals owner and mode of a node the repository cannot describe (see
    /// `InodeTable.hasDefaultMetadata`), so they survive a restart.
    private func metadataRecords(_ node: Node, path: String, _ table: InodeTable) -> [JournalRecord] {
        guard !table.hasDefaultMetadata(node) else { return [] }
        return [.attributes(path: path, permissions: node.permissions, uid: node.uid, gid: node.gid)]
    }

    public func unlink(parent: UInt64, name: String, mayBlock: Bool = true) throws(FSError) {
        try remove(parent: parent, name: name, directory: false, mayBlock: mayBlock)
    }

    public func rmdir(parent: UInt64, name: String, mayBlock: Bool = true) throws(FSError) {
        try remove(parent: parent, name: name, directory: true, mayBlock: mayBlock)
    }

    private func remove(parent: UInt64, name: String, directory: Bool, mayBlock: Bool) throws(FSError) {
        try guardKey(mayBlock: mayBlock)
        guard !isReadOnly else { throw FSError.readOnly }
        try ensureListed(parent, mayBlock: mayBlock)
        if directory {
            // Emptiness needs the directory's own listing.
            let child = state.withLock { $0.table.nodes[parent]?.children?[name] }
            if let child, state.withLock({ $0.table.nodes[child]?.kind == .directory }) {
                try ensureListed(child, mayBlock: mayBlock)
            }
        }
        let garbage = try state.withLock { state throws(FSError) -> [UInt64] in
            let (_, children) = try state.table.directory(parent)
            let path = state.table.childPath(state.table.path(of: parent) ?? "?", name)
            guard let ino = children[name], let node = state.table.nodes[ino] else { throw FSError.noEntry(path) }
            if directory {
                guard node.kind == .directory else { throw FSError.notDirectory(path) }
                guard let grandchildren = node.children else { throw FSError.wouldBlock }
                guard grandchildren.isEmpty else { throw FSError.notEmpty(path) }
            } else if node.kind == .directory {
                throw FSError.isDirectory(path)
            }
            try journal.append(.remove(path: path))
            state.table.touch(path)
            let now = Timestamp.now()
            state.table.nodes[ino]?.ctime = now
            touchParent(parent, &state, now)
            return state.table.unlinkEntry(parent: parent, name: name, ino)
        }
        discard(garbage)
        scheduleFlush()
    }

    /// rename(2), including over an existing target and RENAME_NOREPLACE. A moved
    /// directory is listed completely first: git has no "move", so the flusher uploads
    /// every file under the new path.
    public func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32 = 0,
                       mayBlock: Bool = true) throws(FSError) {
        try guardKey(mayBlock: mayBlock)
        guard !isReadOnly else { throw FSError.readOnly }
        if flags & renameExchange != 0 {
            throw FSError.invalid("RENAME_EXCHANGE is not supported on a Mesa mount")
        }
        guard flags & ~(renameNoReplace | renameExchange) == 0 else { throw FSError.invalid("unknown rename flags \(flags)") }
        try Self.checkName(newName)
        try ensureListed(parent, mayBlock: mayBlock)
        try ensureListed(newParent, mayBlock: mayBlock)
        for _ in 0..<64 {
            let outcome = try state.withLock { state throws(FSError) -> (needs: UInt64?, garbage: [UInt64]) in
                try performRename(&state, parent: parent, name: name, newParent: newParent, newName: newName, flags: flags)
            }
            if let needs = outcome.needs {
                guard mayBlock else { throw FSError.wouldBlock }
                try ensureSubtreeListed(needs, mayBlock: true)
                continue
            }
            discard(outcome.garbage)
            scheduleFlush()
            return
        }
        throw FSError(EIO, "rename kept racing with concurrent changes; retry")
    }

    /// Checks and applies a rename under the lock. Returns a directory to list first
    /// when the decision needs entries not loaded yet.
    private func performRename(_ state: inout CoreState, parent: UInt64, name: String, newParent: UInt64, newName: String,
                               flags: UInt32) throws(FSError) -> (needs: UInt64?, garbage: [UInt64]) {
        let (_, children) = try state.table.directory(parent)
        let (_, newChildren) = try state.table.directory(newParent)
        guard let parentPath = state.table.path(of: parent), let newParentPath = state.table.path(of: newParent) else {
            throw FSError.noEntry("a directory of the rename was removed")
        }
        let oldPath = state.table.childPath(parentPath, name)
        let newPath = state.table.childPath(newParentPath, newName)
        guard let source = children[name], let sourceNode = state.table.nodes[source] else { throw FSError.noEntry(oldPath) }
        let target = newChildren[newName]
        if target != nil && flags & renameNoReplace != 0 { throw FSError.exists(newPath) }
        if target == source { return (nil, []) }
        if sourceNode.kind == .directory {
            if state.table.isDescendant(newParent, of: source) {
                throw FSError.invalid("cannot move '\(oldPath)' into itself ('\(newPath)')")
            }
            if !state.table.unlistedDirectories(under: source).isEmpty { return (source, []) }
        }
        if let target, let targetNode = state.table.nodes[target] {
            if sourceNode.kind == .directory {
                guard targetNode.kind == .directory else { throw FSError.notDirectory(newPath) }
                guard let targetChildren = targetNode.children else { return (target, []) }
                guard targetChildren.isEmpty else { throw FSError.notEmpty(newPath) }
            } else if targetNode.kind == .directory {
                throw FSError.isDirectory(newPath)
            }
        }
        try Self.checkStorable(newPath)
        try journal.append(.rename(from: oldPath, to: newPath))
        var garbage: [UInt64] = []
        if let target { garbage = state.table.unlinkEntry(parent: newParent, name: newName, target) }
        state.table.nodes[parent]?.children?[name] = nil
        if var node = state.table.nodes[source], !(node.parent == parent && node.name == name),
           let index = node.links.firstIndex(of: Link(parent: parent, name: name)) {
            // One of several hard links moves; the primary name stays.
            node.links[index] = Link(parent: newParent, name: newName)
            state.table.nodes[source] = node
        } else {
            state.table.nodes[source]?.parent = newParent
            state.table.nodes[source]?.name = newName
        }
        state.table.nodes[newParent]?.children?[newName] = source
        let now = Timestamp.now()
        state.table.nodes[source]?.ctime = now
        touchParent(parent, &state, now)
        touchParent(newParent, &state, now)
        state.table.touch(oldPath)
        state.table.touchSubtree(source, path: newPath)
        if sourceNode.kind == .directory && Self.isLocalOnly(newPath, isDirectory: true, rules: cachedIgnoreRules) { state.table.localDirectories.insert(source) }
        return (nil, garbage)
    }

    /// chmod, chown, truncate and utimens. The exec bit of files is versioned; other
    /// permission bits, owners and times are kept for the life of the mount.
    public func setattr(_ ino: UInt64, _ changes: AttributeChanges, handle: UInt64? = nil,
                        mayBlock: Bool = true) throws(FSError) -> Attributes {
        try guardKey(mayBlock: mayBlock)
        guard !isReadOnly else { throw FSError.readOnly }
        if try state.withLock({ state throws(FSError) in try state.table.node(ino).detachedByReset }) {
            throw FSError(ESTALE, "inode \(ino) changed revision; look it up again")
        }
        if let size = changes.size {
            let node = try state.withLock { state throws(FSError) in try state.table.node(ino) }
            guard node.kind == .file else {
                throw node.kind == .directory ? FSError.isDirectory(pathName(ino)) : FSError.invalid("cannot truncate a symlink")
            }
            let id = try materialize(ino, empty: size == 0, mayBlock: mayBlock)
            let descriptor = try journal.openData(id)
            defer { close(descriptor) }
            guard ftruncate(descriptor, off_t(size)) == 0 else { throw FSError.posix("truncate \(pathName(ino))") }
            state.withLock { state in
                let now = Timestamp.now()
                state.table.nodes[ino]?.size = size
                state.table.nodes[ino]?.writes += 1
                state.table.nodes[ino]?.mtime = now
                state.table.nodes[ino]?.ctime = now
                state.table.touchLinks(ino)
            }
            // Inline when small (truncate to 0 costs nothing), else after fdatasync: a
            // reference to an unsynced data file must never reach the manifest.
            try recordDurably(ino, data: id, descriptor: descriptor)
        }
        var versioned = changes.size != nil
        let attributes = try state.withLock { state throws(FSError) -> Attributes in
            var node = try state.table.node(ino)
            let before = node
            let now = Timestamp.now()
            if let permissions = changes.permissions, node.kind != .symlink { node.permissions = permissions & 0o7777 }
            if let uid = changes.uid { node.uid = uid }
            if let gid = changes.gid { node.gid = gid }
            if (node.permissions, node.uid, node.gid) != (before.permissions, before.uid, before.gid),
               let path = state.table.path(of: ino) {
                // Owner and every mode bit are journaled (the local layer keeps them);
                // only a file's executable bit is versioned, so only it needs an upload.
                try journal.append(.attributes(path: path, permissions: node.permissions, uid: node.uid, gid: node.gid))
                if node.kind == .file, (node.permissions & 0o100) != (before.permissions & 0o100) {
                    state.table.touchLinks(ino)
                    versioned = true
                }
            }
            if let atime = changes.atime { node.atime = atime }
            if let mtime = changes.mtime { node.mtime = mtime }
            node.ctime = now
            state.table.nodes[ino] = node
            state.table.noteMetadata(ino)
            return state.table.attributes(node)
        }
        if versioned { scheduleFlush() }
        return attributes
    }

    private func touchParent(_ parent: UInt64, _ state: inout CoreState, _ now: Timestamp) {
        state.table.nodes[parent]?.mtime = now
        state.table.nodes[parent]?.ctime = now
    }

    /// A directory entry's name: not empty, '.' or '..', no '/' or NUL, at most 255 bytes.
    static func checkName(_ name: String) throws(FSError) {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.utf8.contains(0) {
            throw FSError.invalid("invalid file name '\(name.prefix(100))'")
        }
        if name.utf8.count > Validation.maxSegmentBytes {
            throw FSError(ENAMETOOLONG, "file name longer than \(Validation.maxSegmentBytes) bytes")
        }
    }

    /// A new path must be one the repository can hold, by the store's own rules
    /// (`Validation.pathProblem`), or an upload would fail on it later. Local-only paths
    /// (inside a `.git` directory) never reach the store and need only fit the length.
    static func checkStorable(_ path: String) throws(FSError) {
        if path.utf8.count > Validation.maxPathBytes {
            throw FSError(ENAMETOOLONG, "path longer than \(Validation.maxPathBytes) bytes: a repository cannot hold it")
        }
        if isInsideGit(path) { return }
        if let problem = Validation.pathProblem(path) {
            throw FSError.invalid("'\(path.prefix(200))' cannot be stored in a repository: \(problem)")
        }
    }
}
