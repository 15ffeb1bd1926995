import Foundation

/// Where a file's bytes are.
enum FileContent: Sendable, Equatable {
    /// Directories have none.
    case none
    /// An unmodified repository blob (a file's bytes or a symlink's target).
    case blob(String)
    /// A file in the journal's data directory: the file was written on this mount.
    case data(UInt64)
    /// A symlink created on this mount.
    case target(String)
}

/// One inode. Invariants the rest of the core relies on:
/// - the inode number never changes, and a path keeps its number for the life of the
///   mount while it names the same object (rename moves the number with the object);
/// - `children == nil` means "not listed yet": the directory is unmodified and its
///   entries are exactly those of the repository at the mount's read change;
/// - a node leaves the table only when it is unlinked, the kernel has forgotten it
///   (`lookups == 0`) and no handle has it open, so unlinked-but-open files keep working.
struct Node: Sendable {
    let ino: UInt64
    var parent: UInt64
    var name: String
    var kind: NodeKind
    var permissions: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: UInt64
    var atime: Timestamp
    var mtime: Timestamp
    var ctime: Timestamp
    var content: FileContent
    var children: [String: UInt64]?
    /// Entries seen before the view was switched to another change: a path that still
    /// exists there gets its old inode number back.
    var staleChildren: [String: UInt64]?
    var lookups: UInt64 = 0
    var opens: Int = 0
    var linked = true
    /// Unlinked because the view switched to another revision (not by a removal): the
    /// kernel may still use the number, and should look the path up again (ESTALE).
    var detachedByReset = false
    /// Bumped after every change of a local file's bytes (write, truncate, fallocate):
    /// a durable close checks that its snapshot of the bytes is still the newest.
    var writes: UInt64 = 0
    /// The `writes` generation at which the data file was last fdatasynced: when equal
    /// to `writes`, a record may refer to the data file without syncing it again.
    var syncedWrites: UInt64?
    /// The device number of a device node.
    var rdev: UInt64 = 0
    /// Hard links besides `parent`/`name` (the primary link, which `path(of:)` names).
    /// Each linked path is uploaded as a file of its own with the same content.
    var links: [Link] = []
}

/// One directory entry naming a node.
struct Link: Sendable, Hashable, Codable {
    var parent: UInt64
    var name: String
}

/// The namespace of one repository mount: nodes by inode number, plus the set of paths
/// changed since the last successful flush. Pure data; the core holds it in a Mutex.
struct InodeTable: Sendable {
    static let rootIno: UInt64 = 1

    var nodes: [UInt64: Node] = [:]
    var nextIno: UInt64 = 2
    /// Paths changed since their last upload, each with the version of its latest change.
    var touched: [String: UInt64] = [:]
    var version: UInt64 = 0
    /// Paths changed since the daemon last asked (`RepoFileSystem.drainChangedPaths`),
    /// for change notifications. Unlike `touched` it survives uploads, so a change that
    /// is written and uploaded between two looks is still reported. Bounded: past
    /// `changeLogLimit` paths only `changeLogOverflowed` is set.
    var changeLog: Set<String> = []
    var changeLogOverflowed = false
    static let changeLogLimit = 4096
    /// Directories created on this mount (and directories moved to a local-only path):
    /// the only places where content the store cannot hold (empty directories,
    /// `.git` trees) can live, so journal compaction only walks below these.
    var localDirectories: Set<UInt64> = []
    /// Nodes whose state the repository cannot hold and the journal must keep:
    /// special files, nodes with hard links, and owners or permission bits other than
    /// what a checkout gives (see `hasDefaultMetadata`). Compaction re-records them.
    var localLayer: Set<UInt64> = []
    /// Owner of nodes read from the repository (the daemon's user).
    var defaultUID: UInt32 = 0
    var defaultGID: UInt32 = 0
    /// Directories (repository ones included) where a local-only file was seen by a
    /// flush round: journal compaction re-records their local-only children.
    var ephemeralParents: Set<UInt64> = []

    /// A read-only mount (mode "ro" or a key without write) shows no write bits, so tools
    /// that check modes (editors, `test -w`, make) see what EROFS will tell them.
    var readOnly = false

    init(root: Node) { nodes[root.ino] = root }

    func node(_ ino: UInt64) throws(FSError) -> Node {
        guard let node = nodes[ino] else { throw FSError(ESTALE, "inode \(ino) is no longer known") }
        return node
    }

    /// The repository-relative path of a linked node ("" for the root), nil if detached.
    func path(of ino: UInt64) -> String? {
        var names: [String] = []
        var current = ino
        while current != Self.rootIno {
            guard let node = nodes[current], node.linked else { return nil }
            names.append(node.name)
            current = node.parent
        }
        return names.reversed().joined(separator: "/")
    }

    func childPath(_ parentPath: String, _ name: String) -> String {
        parentPath.isEmpty ? name : parentPath + "/" + name
    }

    /// The listed directory `ino`, or the errno a caller expects.
    func directory(_ ino: UInt64) throws(FSError) -> (node: Node, children: [String: UInt64]) {
        let node = try node(ino)
        guard node.kind == .directory else { throw FSError.notDirectory("inode \(ino)") }
        guard let children = node.children else { throw FSError.wouldBlock }
        return (node, children)
    }

    mutating func allocateIno() -> UInt64 {
        defer { nextIno += 1 }
        return nextIno
    }

    /// Adds a new node under `parent` (which must be listed) and returns its number.
    mutating func insert(_ node: Node) {
        nodes[node.ino] = node
        nodes[node.parent]?.children?[node.name] = node.ino
        if node.kind == .directory && node.children != nil { localDirectories.insert(node.ino) }
    }

    /// Every path naming `ino`: the primary one first, then its other hard links.
    func paths(of ino: UInt64) -> [String] {
        guard let node = nodes[ino], let primary = path(of: ino) else { return [] }
        return [primary] + node.links.compactMap { link in path(of: link.parent).map { childPath($0, link.name) } }
    }

    /// Touches every path naming `ino` (its bytes changed: each hard link uploads them).
    mutating func touchLinks(_ ino: UInt64) {
        for path in paths(of: ino) { touch(path) }
    }

    /// Whether a node looks exactly as a checkout of the repository makes it: owned by
    /// the daemon's user, 0755 directories, 0644/0755 files, no links, not special.
    func hasDefaultMetadata(_ node: Node) -> Bool {
        guard node.uid == defaultUID, node.gid == defaultGID, node.links.isEmpty else { return false }
        switch node.kind {
        case .directory: return node.permissions == 0o755
        case .file: return node.permissions == 0o644 || node.permissions == 0o755
        case .symlink: return true
        case .fifo, .socket, .charDevice, .blockDevice: return false
        }
    }

    /// Keeps `localLayer` in step with a node's metadata.
    mutating func noteMetadata(_ ino: UInt64) {
        guard let node = nodes[ino] else { return }
        if hasDefaultMetadata(node) { localLayer.remove(ino) } else { localLayer.insert(ino) }
    }

    /// Removes the entry `parent`/`name` naming `ino`. A node with other hard links
    /// stays linked (the next link becomes primary if this was it); otherwise it is
    /// detached. Returns data files that are no longer referenced.
    mutating func unlinkEntry(parent: UInt64, name: String, _ ino: UInt64) -> [UInt64] {
        guard var node = nodes[ino] else { return [] }
        guard !node.links.isEmpty else { return detach(ino) }
        nodes[parent]?.children?[name] = nil
        if node.parent == parent && node.name == name {
            let next = node.links.removeFirst()
            node.parent = next.parent
            node.name = next.name
        } else {
            node.links.removeAll { $0.parent == parent && $0.name == name }
        }
        nodes[ino] = node
        noteMetadata(ino)
        return []
    }

    /// Removes `ino` from its parent. Returns data files that are no longer referenced.
    mutating func detach(_ ino: UInt64) -> [UInt64] {
        guard let node = nodes[ino] else { return [] }
        if nodes[node.parent]?.children?[node.name] == ino {
            nodes[node.parent]?.children?[node.name] = nil
        }
        nodes[ino]?.linked = false
        return dropIfUnused(ino)
    }

    /// Drops an unlinked node nobody references any more (and, for a directory, its
    /// unlinked descendants). Returns the data files to delete.
    mutating func dropIfUnused(_ ino: UInt64) -> [UInt64] {
        guard let node = nodes[ino], !node.linked, node.lookups == 0, node.opens == 0, ino != Self.rootIno else { return [] }
        nodes[ino] = nil
        localDirectories.remove(ino)
        localLayer.remove(ino)
        ephemeralParents.remove(ino)
        var garbage: [UInt64] = []
        if case .data(let id) = node.content { garbage.append(id) }
        for child in (node.children ?? [:]).values {
            nodes[child]?.linked = false
            garbage += dropIfUnused(child)
        }
        return garbage
    }

    /// Records that `path` changed and needs uploading.
    mutating func touch(_ path: String) {
        version += 1
        touched[path] = version
        if changeLog.count < Self.changeLogLimit { changeLog.insert(path) } else if !changeLog.contains(path) {
            changeLogOverflowed = true
        }
    }

    /// Touches a node and everything below it (after a directory moved, every file
    /// under its new path must be uploaded).
    mutating func touchSubtree(_ ino: UInt64, path: String) {
        touch(path)
        guard let children = nodes[ino]?.children else { return }
        for (name, child) in children { touchSubtree(child, path: childPath(path, name)) }
    }

    /// Directories under `ino` (inclusive) that are not listed yet.
    func unlistedDirectories(under ino: UInt64) -> [UInt64] {
        guard let node = nodes[ino], node.kind == .directory else { return [] }
        guard let children = node.children else { return [ino] }
        return children.values.flatMap { unlistedDirectories(under: $0) }
    }

    /// Whether `ino` is `ancestor` or lies below it.
    func isDescendant(_ ino: UInt64, of ancestor: UInt64) -> Bool {
        var current = ino
        while true {
            if current == ancestor { return true }
            if current == Self.rootIno { return false }
            guard let node = nodes[current] else { return false }
            current = node.parent
        }
    }

    func nlink(_ node: Node) -> UInt32 {
        switch node.kind {
        case .directory:
            // 1 = "not counted", as btrfs reports for every directory: counting the
            // subdirectories of a directory of 10,000 entries on every getattr was 14 %
            // of a create's CPU. Tools (find, fts) take 1 as "unknown" and never assume
            // a leaf directory.
            return 1
        case .file, .symlink, .fifo, .socket, .charDevice, .blockDevice:
            return node.linked ? 1 + UInt32(node.links.count) : 0
        }
    }

    func attributes(_ node: Node) -> Attributes {
        Attributes(ino: node.ino, kind: node.kind, permissions: readOnly ? node.permissions & ~0o222 : node.permissions, size: node.size, nlink: nlink(node),
                   uid: node.uid, gid: node.gid, atime: node.atime, mtime: node.mtime, ctime: node.ctime, rdev: node.rdev)
    }
}

/// The parent of a repository-relative path ("" for top-level entries). Hand-written:
/// Foundation's NSString path helpers crashed on Linux in this toolchain.
func parentPath(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "" }
    return String(path[..<slash])
}

func lastComponent(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}
