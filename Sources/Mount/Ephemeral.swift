import Foundation
import MesaIgnore
import Synchronization

/// The rules in force and which `.mesaignore` they were read from.
struct IgnoreState: Sendable {
    /// Identifies the root `.mesaignore` the rules came from (nil: none was there).
    var source: IgnoreSource?
    var rules = IgnoreRules(mesaignore: nil)
}

/// A `.mesaignore` version: the node's content plus its write generation, so an
/// edit through the mount (same data file, more writes) is noticed.
struct IgnoreSource: Sendable, Equatable {
    let ino: UInt64
    let content: FileContent
    let writes: UInt64
}

extension RepoFileSystem {
    static let ignoreFileName = ".mesaignore"

    /// Whether `path` lives only in the mount's local layer (journaled, never uploaded):
    /// a `.git` segment (the store cannot hold one; always local), or a match of the
    /// ephemeral rules. `.mesaignore` itself is always content. `isDirectory` nil
    /// (a removed path whose kind is unknown) matches as a file: directory-only rules
    /// then do not apply, so at worst a removal is uploaded.
    static func isLocalOnly(_ path: String, isDirectory: Bool?, rules: IgnoreRules) -> Bool {
        if isInsideGit(path) { return true }
        if path == ignoreFileName { return false }
        return rules.isIgnored(path, isDirectory: isDirectory ?? false)
    }

    /// Ephemeral by the rules (not merely local-only like a `.git` tree): such files
    /// skip the journal sync at close.
    static func isEphemeral(_ path: String, rules: IgnoreRules) -> Bool {
        guard path != ignoreFileName, !isInsideGit(path) else { return false }
        return rules.isIgnored(path, isDirectory: false)
    }

    /// Whether `path` has a `.git` segment (a repository created inside the mount): the
    /// store cannot hold it, so it is always local, whatever the rules say.
    static func isInsideGit(_ path: String) -> Bool {
        path.split(separator: "/").contains { $0.lowercased() == ".git" }
    }

    /// For keeping journal records: a path that is local-only as a file or as a
    /// directory. Keeping one record too many is harmless (replay is idempotent).
    static func mayBeLocalOnly(_ path: String, rules: IgnoreRules) -> Bool {
        isLocalOnly(path, isDirectory: false, rules: rules) || isLocalOnly(path, isDirectory: true, rules: rules)
    }

    static func isLocalOnly(_ table: InodeTable, _ path: String, rules: IgnoreRules) -> Bool {
        let isDirectory = lookupPath(table, path).flatMap { table.nodes[$0] }.map { $0.kind == .directory }
        return isLocalOnly(path, isDirectory: isDirectory, rules: rules)
    }

    /// The rules last read, without touching the disk or the backend (for callers
    /// under the state lock).
    var cachedIgnoreRules: IgnoreRules { ignore.withLock { $0.rules } }

    /// The rules of the current root `.mesaignore`, re-read when it changed (an edit
    /// through the mount takes effect at the next flush round or status). With
    /// `mayBlock` false an unlisted root or an uncached blob keeps the previous rules.
    /// An unreadable file keeps the previous rules and says so in the log.
    func ignoreRules(mayBlock: Bool) -> IgnoreRules {
        if mayBlock { try? ensureListed(InodeTable.rootIno, mayBlock: true) }
        let source: IgnoreSource? = state.withLock { state in
            guard let ino = state.table.nodes[InodeTable.rootIno]?.children?[Self.ignoreFileName],
                  let node = state.table.nodes[ino], node.kind == .file else { return nil }
            return IgnoreSource(ino: ino, content: node.content, writes: node.writes)
        }
        let cached = ignore.withLock { $0 }
        if cached.source == source { return cached.rules }
        // Root not listed yet without blocking: the file's presence is unknown.
        if source == nil && !mayBlock && state.withLock({ $0.table.nodes[InodeTable.rootIno]?.children == nil }) {
            return cached.rules
        }
        var text: String?
        if let source {
            do {
                switch source.content {
                case .data(let id): text = String(decoding: try readFile(journal.dataPath(id)), as: UTF8.self)
                case .blob(let oid): text = String(decoding: try readFile(try blobPath(oid, mayBlock: mayBlock)), as: UTF8.self)
                case .none, .target: text = nil
                }
            } catch where error.isWouldBlock {
                return cached.rules
            } catch {
                logger.error("cannot read .mesaignore; keeping the previous rules",
                             metadata: ["repo": "\(org)/\(repo)", "error": "\(error)"])
                return cached.rules
            }
        }
        let rules = IgnoreRules(mesaignore: text)
        ignore.withLock { $0.source = source; $0.rules = rules }
        if rules != cached.rules {
            logger.info("ephemeral-path rules changed", metadata: ["repo": "\(org)/\(repo)"])
        }
        return rules
    }
}
