import Foundation
import Model

extension Store {
    /// Reads what is at `path` (a file, a symlink or a directory) at a revision.
    /// Directories list entries down to `depth` levels (1 = direct children).
    public func content(org slug: String, repo name: String, at revision: Revision = .head,
                        path: String = "", depth: Int = 1) throws -> Content {
        let components = try Validation.pathComponents(path, allowRoot: true)
        guard (0...10).contains(depth) else {
            throw MesaError.invalid("invalid depth \(depth): use 0 to 10")
        }
        let (repo, change) = try withDatabase { db in
            let repo = try repoRow(org: slug, name: name, db)
            return (repo, try resolve(revision, repo: repo, db))
        }
        let normalized = components.joined(separator: "/")
        guard let commit = change.commit else {
            // The virtual root is the empty tree.
            if components.isEmpty {
                return .directory(path: "", oid: GitRepository.emptyTreeHex, entries: [])
            }
            throw MesaError.notFound("'\(normalized)' does not exist at change \(change.id)")
        }
        return try repositories.with(repo.id) { git in
            let tree = try git.commitInfo(commit).tree
            let entry: GitTreeEntry
            if components.isEmpty {
                entry = GitTreeEntry(name: "", oid: tree, filemode: 0o040000)
            } else if let found = try git.entry(in: tree, path: normalized) {
                entry = found
            } else {
                throw MesaError.notFound("'\(normalized)' does not exist at change \(change.id)")
            }
            if entry.isTree {
                var entries: [DirectoryEntry] = []
                if depth > 0 { try listDirectory(git, tree: entry.oid, prefix: normalized, depth: depth, into: &entries) }
                return .directory(path: normalized, oid: entry.oid.hex, entries: entries)
            }
            let bytes = try git.readBlob(entry.oid)
            if entry.filemode == 0o120000 {
                return .symlink(path: normalized, target: String(decoding: bytes, as: UTF8.self), oid: entry.oid.hex)
            }
            return .file(path: normalized, bytes: bytes, mode: FileMode(gitMode: entry.filemode) ?? .regular, oid: entry.oid.hex)
        }
    }

    /// The change a revision resolves to.
    public func resolveChange(org slug: String, repo name: String, _ revision: Revision) throws -> Change {
        try withDatabase { db in try resolve(revision, repo: try repoRow(org: slug, name: name, db), db).publicChange }
    }

    private func listDirectory(_ git: GitRepository, tree: GitOID, prefix: String, depth: Int,
                               into entries: inout [DirectoryEntry]) throws {
        for item in try git.treeEntries(tree) {
            let path = prefix.isEmpty ? item.name : prefix + "/" + item.name
            if item.isTree {
                entries.append(DirectoryEntry(name: item.name, path: path, type: .dir, mode: nil, size: nil, oid: item.oid.hex))
                if depth > 1 { try listDirectory(git, tree: item.oid, prefix: path, depth: depth - 1, into: &entries) }
            } else if item.filemode == 0o160000 {
                continue  // Submodule links have no content here.
            } else {
                let mode = FileMode(gitMode: item.filemode) ?? .regular
                entries.append(DirectoryEntry(name: item.name, path: path, type: mode == .symlink ? .symlink : .file,
                                              mode: mode, size: try git.objectSize(item.oid), oid: item.oid.hex))
            }
        }
    }
}

extension Store {
    /// A blob's bytes by its git object id. Blob ids never change content, so callers
    /// (the mount's blob cache) can keep the result forever.
    public func blob(org slug: String, repo name: String, oid: String) throws -> [UInt8] {
        let id = try GitOID(hex: oid)
        let repo = try withDatabase { db in try repoRow(org: slug, name: name, db) }
        return try repositories.with(repo.id) { try $0.readBlob(id) }
    }
}
