import CGit2
import Foundation
import Model

/// libgit2 process setup: done once, before the first repository is opened.
enum GitLibrary {
    static let initialized: Bool = {
        git_libgit2_init()
        // Durability: objects, packs and refs are fsynced before a write returns.
        _ = cgit2_enable_fsync(1)
        _ = cgit2_enable_strict_object_creation(1)
        _ = cgit2_set_cache_max_size(256 << 20)
        // libgit2 caches only trees under 4 KiB by default, so every lookup in a large
        // directory would re-parse it; parsed trees up to 16 MiB stay cached instead.
        _ = cgit2_set_cache_object_limit(GIT_OBJECT_TREE, 16 << 20)
        _ = cgit2_set_cache_object_limit(GIT_OBJECT_COMMIT, 1 << 20)
        // Packs are read through mmap windows (1 GiB each, up to 8 GiB mapped by
        // default); every upload batch writes a pack, so a busy daemon's resident size
        // grew with the packs it had read. Small windows and a low mapped limit keep it
        // bounded; a window is re-mapped on demand, which costs a page-cache hit.
        _ = cgit2_set_mwindow_limits(8 << 20, 32 << 20)
        return true
    }()
}

/// A git object id held as raw bytes.
struct GitOID: Hashable, Sendable {
    var raw: git_oid

    init(_ raw: git_oid) { self.raw = raw }

    init(hex: String) throws {
        var oid = git_oid()
        guard hex.utf8.count == 40, git_oid_fromstr(&oid, hex) == 0 else {
            throw MesaError.invalid("invalid object id '\(hex.prefix(64))': expected 40 hex characters")
        }
        raw = oid
    }

    var hex: String {
        var copy = raw
        var buffer = [CChar](repeating: 0, count: 41)
        git_oid_fmt(&buffer, &copy)
        return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func == (lhs: GitOID, rhs: GitOID) -> Bool {
        var left = lhs.raw, right = rhs.raw
        return git_oid_equal(&left, &right) == 1
    }

    func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: raw) { hasher.combine(bytes: $0) }
    }
}

/// Converts a libgit2 return code into a `MesaError` carrying libgit2's message.
@discardableResult
func gitCheck(_ result: Int32, _ context: @autoclosure () -> String) throws -> Int32 {
    guard result < 0 else { return result }
    let osError = errno
    let detail = git_error_last().map { String(cString: $0.pointee.message) } ?? "error \(result)"
    if result == GIT_ENOTFOUND.rawValue {
        throw MesaError.notFound("\(context()): \(detail)")
    }
    // A full disk: libgit2's OS error carries strerror's text, or only errno is left.
    if osError == ENOSPC || osError == EDQUOT
        || detail.contains(String(cString: strerror(ENOSPC))) || detail.contains(String(cString: strerror(EDQUOT))) {
        throw MesaError(.noSpace, "\(context()): the disk holding the store is full: \(detail)")
    }
    throw MesaError.internal("\(context()): \(detail)")
}

struct GitTreeEntry {
    let name: String
    let oid: GitOID
    let filemode: UInt32

    var isTree: Bool { filemode == 0o040000 }
}

/// One libgit2 repository handle. Not thread-safe: the pool hands each handle to one thread at a
/// time (see `RepositoryPool`).
final class GitRepository: @unchecked Sendable {
    let handle: OpaquePointer
    let path: String
    /// Set while objects are routed into an in-memory pack.
    var memoryPack: UnsafeMutablePointer<git_odb_backend>?

    private init(handle: OpaquePointer, path: String) {
        self.handle = handle
        self.path = path
    }

    deinit { git_repository_free(handle) }

    static func createBare(at path: String) throws -> GitRepository {
        _ = GitLibrary.initialized
        var handle: OpaquePointer?
        try gitCheck(git_repository_init(&handle, path, 1), "cannot create repository at \(path)")
        guard let handle else { throw MesaError.internal("git_repository_init returned no handle") }
        return GitRepository(handle: handle, path: path)
    }

    static func open(at path: String) throws -> GitRepository {
        _ = GitLibrary.initialized
        var handle: OpaquePointer?
        try gitCheck(git_repository_open_bare(&handle, path), "cannot open repository at \(path)")
        guard let handle else { throw MesaError.internal("git_repository_open returned no handle") }
        return GitRepository(handle: handle, path: path)
    }

    // MARK: Objects

    func writeBlob(_ bytes: [UInt8]) throws -> GitOID {
        var oid = git_oid()
        try bytes.withUnsafeBytes { buffer in
            try gitCheck(git_blob_create_from_buffer(&oid, handle, buffer.baseAddress, buffer.count), "cannot write blob")
        }
        return GitOID(oid)
    }

    func readBlob(_ oid: GitOID) throws -> [UInt8] {
        var id = oid.raw
        var blob: OpaquePointer?
        try gitCheck(git_blob_lookup(&blob, handle, &id), "cannot read blob \(oid.hex)")
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard size > 0, let pointer = git_blob_rawcontent(blob) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    /// The size of an object without inflating its content.
    func objectSize(_ oid: GitOID) throws -> Int {
        var odb: OpaquePointer?
        try gitCheck(git_repository_odb(&odb, handle), "cannot open object database")
        defer { git_odb_free(odb) }
        var id = oid.raw
        var size = 0
        var type = GIT_OBJECT_ANY
        try gitCheck(git_odb_read_header(&size, &type, odb, &id), "cannot read object \(oid.hex)")
        return size
    }

    func treeEntries(_ treeOID: GitOID) throws -> [GitTreeEntry] {
        var id = treeOID.raw
        var tree: OpaquePointer?
        try gitCheck(git_tree_lookup(&tree, handle, &id), "cannot read tree \(treeOID.hex)")
        defer { git_tree_free(tree) }
        let count = git_tree_entrycount(tree)
        var entries: [GitTreeEntry] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = git_tree_entry_byindex(tree, index) else { continue }
            entries.append(GitTreeEntry(
                name: String(cString: git_tree_entry_name(entry)),
                oid: GitOID(git_tree_entry_id(entry).pointee),
                filemode: git_tree_entry_filemode(entry).rawValue))
        }
        return entries
    }

    /// The entry at `path` inside a tree, or nil when nothing is there.
    func entry(in treeOID: GitOID, path: String) throws -> GitTreeEntry? {
        var id = treeOID.raw
        var tree: OpaquePointer?
        try gitCheck(git_tree_lookup(&tree, handle, &id), "cannot read tree \(treeOID.hex)")
        defer { git_tree_free(tree) }
        var entry: OpaquePointer?
        let result = git_tree_entry_bypath(&entry, tree, path)
        if result == GIT_ENOTFOUND.rawValue { return nil }
        try gitCheck(result, "cannot look up \(path)")
        defer { git_tree_entry_free(entry) }
        return GitTreeEntry(
            name: String(cString: git_tree_entry_name(entry)),
            oid: GitOID(git_tree_entry_id(entry).pointee),
            filemode: git_tree_entry_filemode(entry).rawValue)
    }

    /// Writes a tree from entries (any order; libgit2 sorts them).
    func writeTree(_ entries: [GitTreeEntry]) throws -> GitOID {
        var builder: OpaquePointer?
        try gitCheck(git_treebuilder_new(&builder, handle, nil), "cannot build tree")
        defer { git_treebuilder_free(builder) }
        for entry in entries {
            var id = entry.oid.raw
            try gitCheck(git_treebuilder_insert(nil, builder, entry.name, &id, git_filemode_t(entry.filemode)),
                         "cannot add '\(entry.name)' to tree")
        }
        var oid = git_oid()
        try gitCheck(git_treebuilder_write(&oid, builder), "cannot write tree")
        return GitOID(oid)
    }

    static let emptyTreeHex = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

    func writeEmptyTree() throws -> GitOID { try writeTree([]) }

    struct CommitInfo {
        let tree: GitOID
        let parents: [GitOID]
    }

    func commitInfo(_ oid: GitOID) throws -> CommitInfo {
        var id = oid.raw
        var commit: OpaquePointer?
        try gitCheck(git_commit_lookup(&commit, handle, &id), "cannot read commit \(oid.hex)")
        defer { git_commit_free(commit) }
        let tree = GitOID(git_commit_tree_id(commit).pointee)
        var parents: [GitOID] = []
        for index in 0..<git_commit_parentcount(commit) {
            if let parent = git_commit_parent_id(commit, index) { parents.append(GitOID(parent.pointee)) }
        }
        return CommitInfo(tree: tree, parents: parents)
    }

    /// Writes a commit carrying jj's `change-id` header, so the change id survives a
    /// `git clone` and tools that understand jj can read it.
    func writeCommit(tree: GitOID, parents: [GitOID], author: Signature, committer: Signature,
                     message: String, changeID: ChangeID) throws -> GitOID {
        var treeID = tree.raw
        var treeObject: OpaquePointer?
        try gitCheck(git_tree_lookup(&treeObject, handle, &treeID), "cannot read tree \(tree.hex)")
        defer { git_tree_free(treeObject) }

        var parentObjects: [OpaquePointer?] = []
        defer { parentObjects.forEach { git_commit_free($0) } }
        for parent in parents {
            var id = parent.raw
            var commit: OpaquePointer?
            try gitCheck(git_commit_lookup(&commit, handle, &id), "cannot read parent commit \(parent.hex)")
            parentObjects.append(commit)
        }

        let authorSignature = try makeSignature(author)
        defer { git_signature_free(authorSignature) }
        let committerSignature = try makeSignature(committer)
        defer { git_signature_free(committerSignature) }

        var buffer = git_buf()
        defer { git_buf_dispose(&buffer) }
        try parentObjects.withUnsafeMutableBufferPointer { pointers in
            try pointers.withMemoryRebound(to: OpaquePointer?.self) { rebound in
                try gitCheck(git_commit_create_buffer(&buffer, handle, authorSignature, committerSignature, nil, message,
                                                      treeObject, parents.count, rebound.baseAddress),
                             "cannot build commit")
            }
        }
        var text = Array(UnsafeRawBufferPointer(start: buffer.ptr, count: buffer.size))
        // Headers end at the first blank line; the change id goes last among them.
        guard let end = findHeaderEnd(text) else { throw MesaError.internal("malformed commit buffer") }
        text.insert(contentsOf: Array("change-id \(changeID.rawValue)\n".utf8), at: end + 1)

        var odb: OpaquePointer?
        try gitCheck(git_repository_odb(&odb, handle), "cannot open object database")
        defer { git_odb_free(odb) }
        var oid = git_oid()
        try text.withUnsafeBytes { bytes in
            try gitCheck(git_odb_write(&oid, odb, bytes.baseAddress, bytes.count, GIT_OBJECT_COMMIT), "cannot write commit")
        }
        return GitOID(oid)
    }

    private func findHeaderEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A && bytes[index + 1] == 0x0A { return index }
            index += 1
        }
        // A commit with an empty message ends its headers with a single newline.
        return bytes.last == 0x0A ? bytes.count - 1 : nil
    }

    private func makeSignature(_ signature: Signature) throws -> UnsafeMutablePointer<git_signature>? {
        var result: UnsafeMutablePointer<git_signature>?
        let date = signature.date ?? Date()
        let name = signature.name.trimmingCharacters(in: .whitespaces).isEmpty ? "unknown" : signature.name
        try gitCheck(git_signature_new(&result, name, signature.email, git_time_t(date.timeIntervalSince1970.rounded(.down)), 0),
                     "invalid signature '\(signature.name) <\(signature.email)>'")
        return result
    }

    // MARK: Graph

    func isDescendant(_ commit: GitOID, of ancestor: GitOID) throws -> Bool {
        var a = commit.raw, b = ancestor.raw
        return try gitCheck(git_graph_descendant_of(handle, &a, &b), "cannot compare history") == 1
    }

    func mergeBase(_ one: GitOID, _ two: GitOID) throws -> GitOID? {
        var a = one.raw, b = two.raw
        var out = git_oid()
        let result = git_merge_base(&out, handle, &a, &b)
        if result == GIT_ENOTFOUND.rawValue { return nil }
        try gitCheck(result, "cannot find merge base")
        return GitOID(out)
    }

    /// Commits reachable from `start`, newest first (topological, then time).
    func walk(from start: GitOID, _ visit: (GitOID) throws -> Bool) throws {
        var walker: OpaquePointer?
        try gitCheck(git_revwalk_new(&walker, handle), "cannot walk history")
        defer { git_revwalk_free(walker) }
        git_revwalk_sorting(walker, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
        var id = start.raw
        try gitCheck(git_revwalk_push(walker, &id), "cannot walk history")
        var oid = git_oid()
        while git_revwalk_next(&oid, walker) == 0 {
            if try !visit(GitOID(oid)) { break }
        }
    }

    // MARK: Refs

    func setReference(_ name: String, to oid: GitOID) throws {
        var id = oid.raw
        var reference: OpaquePointer?
        try gitCheck(git_reference_create(&reference, handle, name, &id, 1, nil), "cannot update \(name)")
        git_reference_free(reference)
    }

    func deleteReference(_ name: String) throws {
        var reference: OpaquePointer?
        let result = git_reference_lookup(&reference, handle, name)
        if result == GIT_ENOTFOUND.rawValue { return }
        try gitCheck(result, "cannot read \(name)")
        defer { git_reference_free(reference) }
        try gitCheck(git_reference_delete(reference), "cannot delete \(name)")
    }

    func referenceTarget(_ name: String) throws -> GitOID? {
        var oid = git_oid()
        let result = git_reference_name_to_id(&oid, handle, name)
        if result == GIT_ENOTFOUND.rawValue { return nil }
        try gitCheck(result, "cannot read \(name)")
        return GitOID(oid)
    }

    func referenceNames(prefix: String) throws -> [String] {
        var iterator: OpaquePointer?
        try gitCheck(git_reference_iterator_glob_new(&iterator, handle, prefix + "*"), "cannot list refs")
        defer { git_reference_iterator_free(iterator) }
        var names: [String] = []
        var name: UnsafePointer<CChar>?
        while git_reference_next_name(&name, iterator) == 0, let name {
            names.append(String(cString: name))
        }
        return names
    }

    func setHead(_ refName: String) throws {
        var reference: OpaquePointer?
        try gitCheck(git_reference_symbolic_create(&reference, handle, "HEAD", refName, 1, nil), "cannot set HEAD")
        git_reference_free(reference)
    }
}

extension GitRepository {
    /// See `cgit2_mempack_attach`: only on a handle that is discarded afterwards.
    /// `packConfig` is a git config file for this handle's pack builder (see
    /// `RepositoryPool.packConfig`).
    func attachMemoryPack(packConfig: String?) throws {
        var backend: UnsafeMutablePointer<git_odb_backend>?
        try gitCheck(cgit2_mempack_attach(handle, &backend, packConfig), "cannot start pack write")
        memoryPack = backend
    }

    func flushMemoryPack() throws {
        guard let memoryPack else { return }
        try gitCheck(cgit2_mempack_flush(handle, memoryPack), "cannot write pack")
    }
}

extension FileMode {
    var gitMode: UInt32 {
        switch self {
        case .regular: 0o100644
        case .executable: 0o100755
        case .symlink: 0o120000
        }
    }

    init?(gitMode: UInt32) {
        switch gitMode {
        case 0o100644, 0o100664: self = .regular
        case 0o100755: self = .executable
        case 0o120000: self = .symlink
        default: return nil
        }
    }
}
