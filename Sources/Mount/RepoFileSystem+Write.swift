import Foundation
import MesaIgnore

public let renameNoReplace: UInt32 = 1  // RENAME_NOREPLACE
public let renameExchange: UInt32 = 2   // RENAME_EXCHANGE

extension RepoFileSystem {
    /// Creates and opens a new regular file.
    public func create(parent: UInt64, name: String, permissions: UInt32, flags: OpenFlags,
                       mayBlock: Bool = true) throws(FSError) -> (Attributes, OpenResult) {
        guard !isReadOnly else { throw FSError.readOnly }
        try Self.checkName(name)
        try ensureListed(parent, mayBlock: mayBlock)
        let (id, descriptor) = try journal.createData()
        let created: (Attributes, OpenResult)?
        do {
            created = try createLocked(parent: parent, name: name, permissions: permissions, flags: flags, id: id, descriptor: descriptor)
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
    private func createLocked(parent: UInt64, name: String, permissions: UInt32, flags: OpenFlags, id: UInt64,
                              descriptor: Int32) throws(FSError) -> (Attributes, OpenResult)? {
        let created = try state.withLock { state throws(FSError) -> (Attributes, OpenResult)? in
            let (_, children) = try state.table.directory(parent)
            if children[name] != nil {
                if flags.exclusive { throw FSError.exists(state.table.childPath(state.table.path(of: parent) ?? "?", name)) }
                return nil
            }
            guard let parentPath = state.table.path(of: parent) else { throw FSError.noEntry("directory inode \(parent)") }
            let now = Timestamp.now()
            var node = Node(ino: state.table.allocateIno(), parent: parent, name: name, kind: .file,
                            permissions: permissions & 0o7777, uid: configuration.uid, gid: configuration.gid, size: 0,
                            atime: now, mtime: now, ctime: now, content: .data(id), children: nil)
            node.lookups = 1
            node.opens = 1
            state.table.insert(node)
            touchParent(parent, &state, now)
            let path = state.table.childPath(parentPath, name)
            // Empty, so recorded inline: nothing to sync but the journal. The data file
            // comes from the pool, its directory entry already durable.
            try journal.append(.file(path: path, data: id, permissions: node.permissions, inline: Data()))
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

    public func mkdir(parent: UInt64, name: String, permissions: UInt32, mayBlock: Bool = true) throws(FSError) -> Attributes {
        try addNode(parent: parent, name: name, kind: .directory, permissions: permissions & 0o7777, content: .none,
                    mayBlock: mayBlock) { path in .mkdir(path: path, permissions: permissions & 0o7777) }
    }

    public func symlink(parent: UInt64, name: String, target: String, mayBlock: Bool = true) throws(FSError) -> Attributes {
        guard !target.isEmpty, !target.utf8.contains(0) else { throw FSError.invalid("symlink target must be non-empty") }
        return try addNode(parent: parent, name: name, kind: .symlink, permissions: 0o777, content: .target(target),
                           mayBlock: mayBlock) { path in .symlink(path: path, target: target) }
    }

    /// Hard links cannot be versioned (git stores content, not inode identity).
    public func link(_ ino: UInt64, parent: UInt64, name: String) throws(FSError) -> Attributes {
        guard !isReadOnly else { throw FSError.readOnly }
        logger.info("refused a hard link: a versioned tree stores content, not inode identity", metadata: ["name": "\(name)"])
        throw FSError(EPERM, "hard links are not supported on a Mesa mount; copy the file instead")
    }

    private func addNode(parent: UInt64, name: String, kind: NodeKind, permissions: UInt32, content: FileContent,
                         mayBlock: Bool, record: (String) -> JournalRecord) throws(FSError) -> Attributes {
        guard !isReadOnly else { throw FSError.readOnly }
        try Self.checkName(name)
        try ensureListed(parent, mayBlock: mayBlock)
        let attributes = try state.withLock { state throws(FSError) -> Attributes in
            let (_, children) = try state.table.directory(parent)
            guard let parentPath = state.table.path(of: parent) else { throw FSError.noEntry("directory inode \(parent)") }
            let path = state.table.childPath(parentPath, name)
            if children[name] != nil { throw FSError.exists(path) }
            let now = Timestamp.now()
            var node = Node(ino: state.table.allocateIno(), parent: parent, name: name, kind: kind, permissions: permissions,
                            uid: configuration.uid, gid: configuration.gid, size: 0, atime: now, mtime: now, ctime: now,
                            content: content, children: kind == .directory ? [:] : nil)
            if case .target(let target) = content { node.size = UInt64(target.utf8.count) }
            if kind == .directory { node.size = 4096 }
            node.lookups = 1
            state.table.insert(node)
            touchParent(parent, &state, now)
            try journal.append(record(path))
            state.table.touch(path)
            return state.table.attributes(node)
        }
        scheduleFlush()
        return attributes
    }

    public func unlink(parent: UInt64, name: String, mayBlock: Bool = true) throws(FSError) {
        try remove(parent: parent, name: name, directory: false, mayBlock: mayBlock)
    }

    public func rmdir(parent: UInt64, name: String, mayBlock: Bool = true) throws(FSError) {
        try remove(parent: parent, name: name, directory: true, mayBlock: mayBlock)
    }

    private func remove(parent: UInt64, name: String, directory: Bool, mayBlock: Bool) throws(FSError) {
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
            return state.table.detach(ino)
        }
        discard(garbage)
        scheduleFlush()
    }

    /// rename(2), including over an existing target and RENAME_NOREPLACE. A moved
    /// directory is listed completely first: git has no "move", so the flusher uploads
    /// every file under the new path.
    public func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32 = 0,
                       mayBlock: Bool = true) throws(FSError) {
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
        try journal.append(.rename(from: oldPath, to: newPath))
        var garbage: [UInt64] = []
        if let target { garbage = state.table.detach(target) }
        state.table.nodes[parent]?.children?[name] = nil
        state.table.nodes[source]?.parent = newParent
        state.table.nodes[source]?.name = newName
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
                if let path = state.table.path(of: ino) { state.table.touch(path) }
            }
            // Inline when small (truncate to 0 costs nothing), else after fdatasync: a
            // reference to an unsynced data file must never reach the manifest.
            try recordDurably(ino, data: id, descriptor: descriptor)
        }
        var versioned = changes.size != nil
        let attributes = try state.withLock { state throws(FSError) -> Attributes in
            var node = try state.table.node(ino)
            let now = Timestamp.now()
            if let permissions = changes.permissions, node.kind != .symlink {
                let newPermissions = permissions & 0o7777
                if node.kind == .file, (newPermissions & 0o100) != (node.permissions & 0o100), let path = state.table.path(of: ino) {
                    try journal.append(.chmod(path: path, permissions: newPermissions))
                    state.table.touch(path)
                    versioned = true
                }
                node.permissions = newPermissions
            }
            if let uid = changes.uid { node.uid = uid }
            if let gid = changes.gid { node.gid = gid }
            if let atime = changes.atime { node.atime = atime }
            if let mtime = changes.mtime { node.mtime = mtime }
            node.ctime = now
            state.table.nodes[ino] = node
            return state.table.attributes(node)
        }
        if versioned { scheduleFlush() }
        return attributes
    }

    private func touchParent(_ parent: UInt64, _ state: inout CoreState, _ now: Timestamp) {
        state.table.nodes[parent]?.mtime = now
        state.table.nodes[parent]?.ctime = now
    }

    /// Names the store can hold: no '/', NUL, '.', '..' or '.git'.
    static func checkName(_ name: String) throws(FSError) {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.utf8.contains(0) {
            throw FSError.invalid("invalid file name '\(name)'")
        }
        if name.utf8.count > 255 { throw FSError(ENAMETOOLONG, "file name longer than 255 bytes") }
    }
}
