import Model

/// Applies file operations to a git tree, loading only the directories they touch,
/// and writes back only the directories that changed. Operations apply in order, so
/// "delete a, then write a/b" turns the file `a` into a directory.
final class TreeEditor {
    private enum Node {
        case entry(GitOID, UInt32)
        case directory(Directory)
    }

    private final class Directory {
        let original: GitOID?
        var entries: [String: Node]?
        var modified = false

        init(original: GitOID?, loaded: Bool) {
            self.original = original
            entries = loaded ? [:] : nil
        }
    }

    private let repository: GitRepository
    private let root: Directory

    init(repository: GitRepository, base: GitOID?) {
        self.repository = repository
        root = Directory(original: base, loaded: base == nil)
    }

    func upsert(_ components: [String], content: [UInt8], mode: FileMode) throws {
        try upsert(components, blob: try repository.writeBlob(content), mode: mode)
    }

    /// Points `components` at a blob already in the object database.
    func upsert(_ components: [String], blob: GitOID, mode: FileMode) throws {
        var directory = root
        var walked: [String] = []
        for name in components.dropLast() {
            walked.append(name)
            directory.modified = true
            switch try entries(of: directory)[name] {
            case nil:
                let created = Directory(original: nil, loaded: true)
                directory.entries?[name] = .directory(created)
                directory = created
            case .directory(let child):
                directory = child
            case .entry:
                throw MesaError.invalid("cannot write '\(components.joined(separator: "/"))': '\(walked.joined(separator: "/"))' is a file, not a directory; delete it first")
            }
        }
        directory.modified = true
        let name = components[components.count - 1]
        if case .directory = try entries(of: directory)[name] {
            throw MesaError.invalid("cannot write file '\(components.joined(separator: "/"))': a directory is there; delete it first")
        }
        directory.entries?[name] = .entry(blob, mode.gitMode)
    }

    func delete(_ components: [String]) throws {
        var directory = root
        var path: [Directory] = [root]
        for name in components.dropLast() {
            guard case .directory(let child) = try entries(of: directory)[name] else {
                throw MesaError.notFound("cannot delete '\(components.joined(separator: "/"))': no such file or directory")
            }
            directory = child
            path.append(child)
        }
        let name = components[components.count - 1]
        guard try entries(of: directory)[name] != nil else {
            throw MesaError.notFound("cannot delete '\(components.joined(separator: "/"))': no such file or directory")
        }
        directory.entries?[name] = nil
        path.forEach { $0.modified = true }
    }

    /// Writes the edited tree and returns its id.
    func write() throws -> GitOID {
        try write(root) ?? repository.writeEmptyTree()
    }

    /// Returns nil for a directory left empty: git does not store empty trees.
    private func write(_ directory: Directory) throws -> GitOID? {
        guard directory.modified, let entries = directory.entries else { return directory.original }
        var gitEntries: [GitTreeEntry] = []
        gitEntries.reserveCapacity(entries.count)
        for (name, node) in entries {
            switch node {
            case .entry(let oid, let mode):
                gitEntries.append(GitTreeEntry(name: name, oid: oid, filemode: mode))
            case .directory(let child):
                if let oid = try write(child) {
                    gitEntries.append(GitTreeEntry(name: name, oid: oid, filemode: 0o040000))
                }
            }
        }
        return gitEntries.isEmpty ? nil : try repository.writeTree(gitEntries)
    }

    private func entries(of directory: Directory) throws -> [String: Node] {
        if let entries = directory.entries { return entries }
        var loaded: [String: Node] = [:]
        if let original = directory.original {
            for entry in try repository.treeEntries(original) {
                loaded[entry.name] = entry.isTree
                    ? .directory(Directory(original: entry.oid, loaded: false))
                    : .entry(entry.oid, entry.filemode)
            }
        }
        directory.entries = loaded
        return loaded
    }
}
