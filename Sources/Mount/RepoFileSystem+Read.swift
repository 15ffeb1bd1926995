import Foundation

extension RepoFileSystem {
    /// Looks `name` up in `parent`; a hit counts as one kernel reference (see `forget`).
    public func lookup(parent: UInt64, name: String, mayBlock: Bool = true) throws(FSError) -> Attributes {
        try guardKey(mayBlock: mayBlock)
        try ensureListed(parent, mayBlock: mayBlock)
        return try state.withLock { state throws(FSError) -> Attributes in
            let (_, children) = try state.table.directory(parent)
            guard let ino = children[name], var node = state.table.nodes[ino] else {
                throw FSError.noEntry(state.table.childPath(state.table.path(of: parent) ?? "?", name))
            }
            node.lookups += 1
            state.table.nodes[ino] = node
            return state.table.attributes(node)
        }
    }

    /// Adds kernel references (readdirplus entries count as lookups).
    public func retain(_ ino: UInt64, count: UInt64 = 1) {
        state.withLock { $0.table.nodes[ino]?.lookups += count }
    }

    /// The kernel dropped `count` references to `ino`.
    public func forget(_ ino: UInt64, count: UInt64) {
        let garbage = state.withLock { state -> [UInt64] in
            guard var node = state.table.nodes[ino] else { return [] }
            node.lookups -= min(node.lookups, count)
            state.table.nodes[ino] = node
            return state.table.dropIfUnused(ino)
        }
        discard(garbage)
    }

    public func getattr(_ ino: UInt64) throws(FSError) -> Attributes {
        try guardKeyCached()
        return try state.withLock { state throws(FSError) in state.table.attributes(try state.table.node(ino)) }
    }

    // MARK: Directories

    /// Opens a directory: its entries are fixed for the handle's life.
    public func opendir(_ ino: UInt64, mayBlock: Bool = true) throws(FSError) -> UInt64 {
        try guardKey(mayBlock: mayBlock)
        try ensureListed(ino, mayBlock: mayBlock)
        return try state.withLock { state throws(FSError) -> UInt64 in
            let (node, children) = try state.table.directory(ino)
            var entries = [DirectoryListingEntry(name: ".", ino: ino, kind: .directory),
                           DirectoryListingEntry(name: "..", ino: node.parent, kind: .directory)]
            for (name, child) in children.sorted(by: { $0.key < $1.key }) {
                guard let kind = state.table.nodes[child]?.kind else { continue }
                entries.append(DirectoryListingEntry(name: name, ino: child, kind: kind))
            }
            let handle = newHandleID(&state)
            state.directories[handle] = DirectoryHandle(ino: ino, entries: entries)
            return handle
        }
    }

    /// Entries of an open directory from `offset` (the index of the next entry).
    public func readdir(handle: UInt64, offset: Int) throws(FSError) -> ArraySlice<DirectoryListingEntry> {
        try state.withLock { state throws(FSError) in
            guard let directory = state.directories[handle] else { throw FSError.badHandle(handle) }
            return directory.entries.dropFirst(max(0, offset))
        }
    }

    /// Current attributes of an entry for readdirplus (nil if it vanished meanwhile).
    public func entryAttributes(_ ino: UInt64) -> Attributes? {
        state.withLock { state in state.table.nodes[ino].map { state.table.attributes($0) } }
    }

    public func releasedir(handle: UInt64) {
        _ = state.withLock { $0.directories.removeValue(forKey: handle) }
    }

    /// Child names of a directory, sorted (for tests and the RPC side).
    public func list(_ ino: UInt64, mayBlock: Bool = true) throws(FSError) -> [String] {
        try ensureListed(ino, mayBlock: mayBlock)
        return try state.withLock { state throws(FSError) in try state.table.directory(ino).children.keys.sorted() }
    }

    // MARK: Symlinks and stats

    public func readlink(_ ino: UInt64, mayBlock: Bool = true) throws(FSError) -> String {
        try guardKey(mayBlock: mayBlock)
        let content = try state.withLock { state throws(FSError) -> FileContent in
            let node = try state.table.node(ino)
            guard node.kind == .symlink else { throw FSError.invalid("inode \(ino) is not a symlink") }
            return node.content
        }
        switch content {
        case .target(let target): return target
        case .blob(let oid): return String(decoding: try readFile(try blobPath(oid, mayBlock: mayBlock)), as: UTF8.self)
        case .data(let id): return String(decoding: try readFile(journal.dataPath(id)), as: UTF8.self)
        case .none: throw FSError(EIO, "symlink inode \(ino) has no target")
        }
    }

    /// The disk holding the journal bounds what can be written, so its numbers are
    /// reported; inode counts are the table's size against a generous ceiling.
    public func statfs() -> FilesystemStats {
        var disk = statvfs()
        let known = UInt64(state.withLock { $0.table.nodes.count })
        if statvfs(journal.directory, &disk) != 0 {
            return FilesystemStats(blockSize: 4096, blocks: 0, freeBlocks: 0, availableBlocks: 0, files: known,
                                   freeFiles: 1 << 20, nameMax: 255)
        }
        let files = max(UInt64(disk.f_files), known + 1)
        return FilesystemStats(blockSize: UInt64(disk.f_frsize), blocks: UInt64(disk.f_blocks), freeBlocks: UInt64(disk.f_bfree),
                               availableBlocks: UInt64(disk.f_bavail), files: files,
                               freeFiles: UInt64(disk.f_ffree), nameMax: 255)
    }
}
