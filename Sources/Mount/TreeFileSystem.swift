import Foundation
import Synchronization

/// The daemon's tree: `<mountpoint>/<org>/<repo>/…`. The root and org directories are
/// synthetic and read-only; their entries come from the provider on every listing, so
/// repos created meanwhile appear without a restart, and a key scoped to some repos
/// shows only those. Each repo is a `RepoFileSystem`, opened on first lookup.
///
/// Inode numbers: synthetic nodes are small; a repo in slot k maps its local inode i to
/// `k << 40 | i` (its root is `k << 40 | 1`). File and directory handles are mapped
/// the same way, so the kernel never sees two mounts' numbers collide.
public final class TreeFileSystem: FileSystemCore {
    public struct Provider: Sendable {
        /// Orgs shown at the root.
        public var orgs: @Sendable () -> [String]
        /// Repos shown under an org (may call the backend).
        public var repos: @Sendable (_ org: String) throws -> [String]
        /// The repository filesystem for org/repo (the daemon owns and caches these).
        public var open: @Sendable (_ org: String, _ repo: String) throws -> RepoFileSystem

        public init(orgs: @escaping @Sendable () -> [String], repos: @escaping @Sendable (String) throws -> [String],
                    open: @escaping @Sendable (String, String) throws -> RepoFileSystem) {
            self.orgs = orgs
            self.repos = repos
            self.open = open
        }
    }

    private struct State {
        var orgInos: [String: UInt64] = [:]
        var orgNames: [UInt64: String] = [:]
        var nextSynthetic: UInt64 = 2
        var slots: [RepoFileSystem] = []
        var slotOf: [String: Int] = [:]  // "org/repo" → slot (1-based)
        var directories: [UInt64: [DirectoryListingEntry]] = [:]
        var nextHandle: UInt64 = 1
        var invalidator: (any Invalidator)?
    }

    static let shift: UInt64 = 40
    static let localMask: UInt64 = (1 << 40) - 1

    private let provider: Provider
    private let state = Mutex(State())
    private let uid: UInt32
    private let gid: UInt32
    private let created = Timestamp.now()

    public let isReadOnly = false

    public init(provider: Provider, uid: UInt32 = getuid(), gid: UInt32 = getgid()) {
        self.provider = provider
        self.uid = uid
        self.gid = gid
    }

    /// Repositories opened so far, by "org/repo".
    public var openRepositories: [String: RepoFileSystem] {
        state.withLock { state in state.slotOf.mapValues { state.slots[$0 - 1] } }
    }

    // MARK: Routing

    private enum Target {
        case root
        case org(String)
        case repo(RepoFileSystem, slot: UInt64, local: UInt64)
    }

    private func target(_ ino: UInt64) throws(FSError) -> Target {
        if ino == InodeTable.rootIno { return .root }
        let slot = ino >> Self.shift
        return try state.withLock { state throws(FSError) -> Target in
            if slot == 0 {
                guard let org = state.orgNames[ino] else { throw FSError(ESTALE, "inode \(ino) is no longer known") }
                return .org(org)
            }
            guard slot <= UInt64(state.slots.count) else { throw FSError(ESTALE, "inode \(ino) is no longer known") }
            return .repo(state.slots[Int(slot) - 1], slot: slot, local: ino & Self.localMask)
        }
    }

    private func repo(_ ino: UInt64, _ operation: String) throws(FSError) -> (RepoFileSystem, UInt64, UInt64) {
        guard case .repo(let fs, let slot, let local) = try target(ino) else {
            throw FSError(EROFS, "\(operation): the org and repo directories of the mount tree are read-only; work inside a repository")
        }
        return (fs, slot, local)
    }

    private static func global(_ slot: UInt64, _ local: UInt64) -> UInt64 { slot << shift | local }

    private static func mapped(_ attributes: Attributes, _ slot: UInt64) -> Attributes {
        var copy = attributes
        copy.ino = global(slot, attributes.ino)
        return copy
    }

    private func directoryAttributes(_ ino: UInt64) -> Attributes {
        Attributes(ino: ino, kind: .directory, permissions: 0o555, size: 4096, nlink: 2, uid: uid, gid: gid,
                   atime: created, mtime: created, ctime: created)
    }

    private func orgIno(_ org: String) -> UInt64 {
        state.withLock { state in
            if let ino = state.orgInos[org] { return ino }
            let ino = state.nextSynthetic
            state.nextSynthetic += 1
            state.orgInos[org] = ino
            state.orgNames[ino] = org
            return ino
        }
    }

    /// The slot of org/repo, opening it through the provider on first use.
    private func slot(org: String, repo: String, mayBlock: Bool) throws(FSError) -> (RepoFileSystem, UInt64) {
        let key = org + "/" + repo
        if let found = state.withLock({ state in state.slotOf[key].map { (state.slots[$0 - 1], UInt64($0)) } }) { return found }
        guard mayBlock else { throw FSError.wouldBlock }
        guard try fsErrors({ try provider.repos(org) }).contains(repo) else { throw FSError.noEntry("\(org)/\(repo)") }
        let fs = try fsErrors { try provider.open(org, repo) }
        let (slot, fresh) = state.withLock { state -> (UInt64, Bool) in
            if let existing = state.slotOf[key] { return (UInt64(existing), false) }
            state.slots.append(fs)
            state.slotOf[key] = state.slots.count
            return (UInt64(state.slots.count), true)
        }
        if fresh, let invalidator = state.withLock({ $0.invalidator }) {
            fs.attach(SlotInvalidator(slot: slot, base: invalidator))
        }
        return (state.withLock { $0.slots[Int(slot) - 1] }, slot)
    }

    public func attach(_ invalidator: (any Invalidator)?) {
        let slots = state.withLock { state in
            state.invalidator = invalidator
            return state.slots
        }
        for (index, fs) in slots.enumerated() {
            fs.attach(invalidator.map { SlotInvalidator(slot: UInt64(index + 1), base: $0) })
        }
    }

    // MARK: FileSystemCore

    public func lookup(parent: UInt64, name: String, mayBlock: Bool) throws(FSError) -> Attributes {
        switch try target(parent) {
        case .root:
            guard provider.orgs().contains(name) else { throw FSError.noEntry(name) }
            return directoryAttributes(orgIno(name))
        case .org(let org):
            let (fs, slot) = try slot(org: org, repo: name, mayBlock: mayBlock)
            return Self.mapped(try fs.getattr(InodeTable.rootIno), slot)
        case .repo(let fs, let slot, let local):
            return Self.mapped(try fs.lookup(parent: local, name: name, mayBlock: mayBlock), slot)
        }
    }

    public func retain(_ ino: UInt64, count: UInt64) {
        if case .repo(let fs, _, let local)? = try? target(ino) { fs.retain(local, count: count) }
    }

    public func forget(_ ino: UInt64, count: UInt64) {
        if case .repo(let fs, _, let local)? = try? target(ino), local != InodeTable.rootIno { fs.forget(local, count: count) }
    }

    public func getattr(_ ino: UInt64) throws(FSError) -> Attributes {
        switch try target(ino) {
        case .root, .org: return directoryAttributes(ino)
        case .repo(let fs, let slot, let local): return Self.mapped(try fs.getattr(local), slot)
        }
    }

    public func setattr(_ ino: UInt64, _ changes: AttributeChanges, handle: UInt64?, mayBlock: Bool) throws(FSError) -> Attributes {
        let (fs, slot, local) = try repo(ino, "setattr")
        return Self.mapped(try fs.setattr(local, changes, handle: handle.map { $0 & Self.localMask }, mayBlock: mayBlock), slot)
    }

    public func readlink(_ ino: UInt64, mayBlock: Bool) throws(FSError) -> String {
        let (fs, _, local) = try repo(ino, "readlink")
        return try fs.readlink(local, mayBlock: mayBlock)
    }

    public func mkdir(parent: UInt64, name: String, permissions: UInt32, caller: Caller? = nil, mayBlock: Bool) throws(FSError) -> Attributes {
        let (fs, slot, local) = try repo(parent, "mkdir")
        return Self.mapped(try fs.mkdir(parent: local, name: name, permissions: permissions, caller: caller, mayBlock: mayBlock), slot)
    }

    public func symlink(parent: UInt64, name: String, target: String, caller: Caller? = nil, mayBlock: Bool) throws(FSError) -> Attributes {
        let (fs, slot, local) = try repo(parent, "symlink")
        return Self.mapped(try fs.symlink(parent: local, name: name, target: target, caller: caller, mayBlock: mayBlock), slot)
    }

    public func mknod(parent: UInt64, name: String, mode: UInt32, rdev: UInt64, caller: Caller? = nil,
                      mayBlock: Bool) throws(FSError) -> Attributes {
        let (fs, slot, local) = try repo(parent, "mknod")
        return Self.mapped(try fs.mknod(parent: local, name: name, mode: mode, rdev: rdev, caller: caller, mayBlock: mayBlock), slot)
    }

    public func link(_ ino: UInt64, parent: UInt64, name: String, mayBlock: Bool) throws(FSError) -> Attributes {
        let (fs, slot, local) = try repo(parent, "link")
        // A link across repositories would be a link across filesystems.
        guard ino >> Self.shift == slot else { throw FSError(EXDEV, "cannot hard-link across repositories") }
        return Self.mapped(try fs.link(ino & Self.localMask, parent: local, name: name, mayBlock: mayBlock), slot)
    }

    public func unlink(parent: UInt64, name: String, mayBlock: Bool) throws(FSError) {
        let (fs, _, local) = try repo(parent, "unlink")
        try fs.unlink(parent: local, name: name, mayBlock: mayBlock)
    }

    public func rmdir(parent: UInt64, name: String, mayBlock: Bool) throws(FSError) {
        let (fs, _, local) = try repo(parent, "rmdir")
        try fs.rmdir(parent: local, name: name, mayBlock: mayBlock)
    }

    public func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32, mayBlock: Bool) throws(FSError) {
        let (fs, slot, local) = try repo(parent, "rename")
        let (_, newSlot, newLocal) = try repo(newParent, "rename")
        guard slot == newSlot else { throw FSError(EXDEV, "cannot rename across repositories; copy instead") }
        try fs.rename(parent: local, name: name, newParent: newLocal, newName: newName, flags: flags, mayBlock: mayBlock)
    }

    public func create(parent: UInt64, name: String, permissions: UInt32, flags: OpenFlags, caller: Caller? = nil,
                       mayBlock: Bool) throws(FSError) -> (Attributes, OpenResult) {
        let (fs, slot, local) = try repo(parent, "create")
        let (attributes, opened) = try fs.create(parent: local, name: name, permissions: permissions, flags: flags,
                                                 caller: caller, mayBlock: mayBlock)
        return (Self.mapped(attributes, slot), OpenResult(handle: Self.global(slot, opened.handle), keepCache: opened.keepCache))
    }

    public func open(_ ino: UInt64, flags: OpenFlags, mayBlock: Bool) throws(FSError) -> OpenResult {
        let (fs, slot, local) = try repo(ino, "open")
        let opened = try fs.open(local, flags: flags, mayBlock: mayBlock)
        return OpenResult(handle: Self.global(slot, opened.handle), keepCache: opened.keepCache)
    }

    public func read(_ ino: UInt64, handle: UInt64, offset: Int64, size: Int, mayBlock: Bool) throws(FSError) -> ReadSource {
        let (fs, _, local) = try repo(ino, "read")
        return try fs.read(local, handle: handle & Self.localMask, offset: offset, size: size, mayBlock: mayBlock)
    }

    public func write(_ ino: UInt64, handle: UInt64, offset: Int64, bytes: UnsafeRawBufferPointer) throws(FSError) -> Int {
        let (fs, _, local) = try repo(ino, "write")
        return try fs.write(local, handle: handle & Self.localMask, offset: offset, bytes: bytes)
    }

    public func flush(_ ino: UInt64, handle: UInt64) throws(FSError) {
        let (fs, _, local) = try repo(ino, "flush")
        try fs.flush(local, handle: handle & Self.localMask)
    }

    public func fsync(_ ino: UInt64, handle: UInt64, dataOnly: Bool) throws(FSError) {
        let (fs, _, local) = try repo(ino, "fsync")
        try fs.fsync(local, handle: handle & Self.localMask, dataOnly: dataOnly)
    }

    public func release(_ ino: UInt64, handle: UInt64) {
        if let (fs, _, local) = try? repo(ino, "release") { fs.release(local, handle: handle & Self.localMask) }
    }

    public func fallocate(_ ino: UInt64, handle: UInt64, mode: Int32, offset: Int64, length: Int64) throws(FSError) {
        let (fs, _, local) = try repo(ino, "fallocate")
        try fs.fallocate(local, handle: handle & Self.localMask, mode: mode, offset: offset, length: length)
    }

    public func opendir(_ ino: UInt64, mayBlock: Bool) throws(FSError) -> UInt64 {
        let entries: [DirectoryListingEntry]
        switch try target(ino) {
        case .repo(let fs, let slot, let local):
            return Self.global(slot, try fs.opendir(local, mayBlock: mayBlock))
        case .root:
            entries = provider.orgs().sorted().map { DirectoryListingEntry(name: $0, ino: orgIno($0), kind: .directory) }
        case .org(let org):
            guard mayBlock else { throw FSError.wouldBlock }
            let repos = try fsErrors { try provider.repos(org) }.sorted()
            let known = state.withLock { $0.slotOf }
            // Unopened repos get a placeholder number; lookup assigns the real one.
            entries = repos.map { repo in
                DirectoryListingEntry(name: repo, ino: known[org + "/" + repo].map { Self.global(UInt64($0), InodeTable.rootIno) } ?? ino,
                                      kind: .directory)
            }
        }
        let dots = [DirectoryListingEntry(name: ".", ino: ino, kind: .directory),
                    DirectoryListingEntry(name: "..", ino: InodeTable.rootIno, kind: .directory)]
        return state.withLock { state in
            let handle = state.nextHandle
            state.nextHandle += 1
            state.directories[handle] = dots + entries
            return handle
        }
    }

    public func readdir(handle: UInt64, offset: Int) throws(FSError) -> ArraySlice<DirectoryListingEntry> {
        let slot = handle >> Self.shift
        if slot == 0 {
            guard let entries = state.withLock({ $0.directories[handle] }) else { throw FSError.badHandle(handle) }
            return entries.dropFirst(max(0, offset))
        }
        guard let fs = state.withLock({ state in slot <= UInt64(state.slots.count) ? state.slots[Int(slot) - 1] : nil }) else {
            throw FSError.badHandle(handle)
        }
        return try fs.readdir(handle: handle & Self.localMask, offset: offset).map {
            DirectoryListingEntry(name: $0.name, ino: Self.global(slot, $0.ino), kind: $0.kind)
        }[...]
    }

    public func entryAttributes(_ ino: UInt64) -> Attributes? {
        guard case .repo(let fs, let slot, let local)? = try? target(ino) else { return nil }  // synthetic: no readdirplus lookup
        return fs.entryAttributes(local).map { Self.mapped($0, slot) }
    }

    public func releasedir(handle: UInt64) {
        let slot = handle >> Self.shift
        if slot == 0 {
            _ = state.withLock { $0.directories.removeValue(forKey: handle) }
        } else if let fs = state.withLock({ state in slot <= UInt64(state.slots.count) ? state.slots[Int(slot) - 1] : nil }) {
            fs.releasedir(handle: handle & Self.localMask)
        }
    }

    public func fsyncdir() throws(FSError) {
        for fs in state.withLock({ $0.slots }) { try fs.fsyncdir() }
    }

    public func statfs() -> FilesystemStats {
        if let first = state.withLock({ $0.slots.first }) { return first.statfs() }
        return FilesystemStats(blockSize: 4096, blocks: 0, freeBlocks: 0, availableBlocks: 0, files: 0, freeFiles: 0, nameMax: 255)
    }
}

/// Maps a repo's local inode numbers to the tree's before invalidating.
private struct SlotInvalidator: Invalidator {
    let slot: UInt64
    let base: any Invalidator

    func invalidateInode(_ ino: UInt64) { base.invalidateInode(slot << TreeFileSystem.shift | ino) }
    func invalidateEntry(parent: UInt64, name: String) { base.invalidateEntry(parent: slot << TreeFileSystem.shift | parent, name: name) }
}
