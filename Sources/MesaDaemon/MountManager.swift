import Foundation
import Logging
import MesaAPI
import MesaProtocol
import Model
import Mount
import Store
import Synchronization

/// What a restarted daemon must mount again (also after kill -9), kept in
/// `~/.local/share/mesa/state/mounts.json`.
struct SavedMounts: Codable, Sendable {
    struct PathMount: Codable, Sendable {
        var path: String
        var org: String
        var repo: String
        var mode: String
        var bookmark: String?
        var changeId: String?
        var branchedFrom: BranchedFromSpec?
    }

    var tree = false
    var paths: [PathMount] = []
    /// Repos opened with `openRepo` in orgs mounted in `explicit` mode.
    var opened: [String: [String]] = [:]
}

/// Owns every FUSE session of the daemon: the tree `<mount-point>/<org>/<repo>` and
/// repos mounted at their own paths. Each repo is a `RepoFileSystem` with its own
/// journal under `~/.local/share/mesa/journal`, so a restart replays unsaved work.
public final class MountManager: Sendable {
    struct PathSession {
        let session: MountSession
        let fs: RepoFileSystem
        let record: SavedMounts.PathMount
    }

    struct State {
        var tree: (session: MountSession, fs: TreeFileSystem)?
        /// Tree repos by "org/repo", opened on first use.
        var treeRepos: [String: RepoFileSystem] = [:]
        var paths: [String: PathSession] = [:]
        var saved = SavedMounts()
        /// Repos of config.toml closed with `closeRepo` since start ("org/repo"): the
        /// file no longer lists them, the loaded config still does.
        var closed: Set<String> = []
    }

    let config: DaemonConfig
    let orgs: OrgBackends
    let cache: BlobCache
    let logger: Logger
    let state = Mutex(State())
    /// The thread that follows moved bookmarks (see MountManager+Follow.swift).
    let follower = Mutex(FollowerState())

    public init(config: DaemonConfig, orgs: OrgBackends, logger: Logger) throws {
        self.config = config
        self.orgs = orgs
        self.logger = logger
        do {
            cache = try BlobCache(directory: config.cacheDirectory + "/blobs", maxBytes: UInt64(config.cacheMaxBytes))
        } catch {
            throw ConfigError("cannot open the blob cache at \(config.cacheDirectory): \(error.message)")
        }
    }

    // MARK: Mounting

    /// Mounts the daemon tree at the configured mount point (idempotent).
    public func mountTree() throws(MesaError) -> MountInfo {
        if let existing = state.withLock({ $0.tree }) { return treeInfo(existing.session.path) }
        let path = config.mountPoint
        // A daemon killed with the tree mounted leaves a dead mount here, on which even
        // creating the directory fails (ENOTCONN, or EEXIST for mkdir): clear it first.
        MountSession.clearStaleMount(at: path, logger: logger)
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw MesaError.invalid("cannot create mount point \(path): \(error.localizedDescription)")
        }
        let fs = TreeFileSystem(provider: treeProvider())
        let session: MountSession
        do { session = try MountSession.start(at: path, root: fs, name: "tree", options: sessionOptions, logger: logger) } catch {
            throw error.mesaError
        }
        state.withLock {
            $0.tree = (session, fs)
            $0.saved.tree = true
        }
        saveState()
        logger.info("mounted the daemon tree", metadata: ["path": "\(path)"])
        return treeInfo(path)
    }

    /// Mounts one repo: inside the tree (its directory appears at
    /// `<mount-point>/<org>/<repo>`), or on its own at `path`.
    public func mountRepo(_ params: MountMethod.Params) throws(MesaError) -> MountInfo {
        let (org, backend) = try orgs.backend(for: params.org)
        guard let repo = params.repo else { return try mountTree() }
        let mode = try Self.mode(params.mode)
        let target = try Self.target(at: params.at, branchedFrom: params.branchedFrom, mode: mode)
        guard let path = params.path else {
            if params.at != nil || params.branchedFrom != nil || mode == .ro {
                throw MesaError.invalid("'at', 'branchedFrom' and mode 'ro' need their own mount: pass 'path' (repos in the tree follow config.toml)")
            }
            _ = try mountTree()
            if orgConfig(org)?.mount == .explicit {
                state.withLock { state in
                    if !(state.saved.opened[org] ?? []).contains(repo) { state.saved.opened[org, default: []].append(repo) }
                }
                saveState()
            }
            let fs = try treeRepo(org: org, repo: repo)
            return info(fs, mountId: "\(org)/\(repo)", path: config.mountPoint + "/\(org)/\(repo)")
        }
        let absolute = Self.absolute(path)
        if state.withLock({ $0.paths[absolute] != nil }) {
            throw MesaError(.alreadyExists, "\(absolute) is already a mount; unmount it first")
        }
        let record = SavedMounts.PathMount(path: absolute, org: org, repo: repo, mode: mode.rawValue,
                                           bookmark: params.at?.bookmark, changeId: params.at?.changeId,
                                           branchedFrom: params.branchedFrom)
        let mounted = try startPathMount(record, target: target, mode: mode, backend: backend)
        state.withLock {
            $0.paths[absolute] = mounted
            $0.saved.paths.removeAll { $0.path == absolute }
            $0.saved.paths.append(record)
        }
        saveState()
        return info(mounted.fs, mountId: absolute, path: absolute)
    }

    private func startPathMount(_ record: SavedMounts.PathMount, target: MountTarget, mode: Mount.MountMode,
                                backend: any Backend) throws(MesaError) -> PathSession {
        let journal = config.paths.journalDirectory + "/paths/" + Self.safeName(record.path)
        Self.makeParent(of: journal)
        var configuration = MountConfiguration(org: record.org, repo: record.repo, target: target, mode: mode,
                                               journalDirectory: journal, debounce: debounce,
                                               durability: config.durability)
        configuration.prefetch = config.prefetch
        do {
            let fs = try RepoFileSystem(configuration: configuration, backend: backend, cache: cache, logger: logger)
            do {
                let session = try MountSession.start(at: record.path, root: fs, name: "\(record.org)/\(record.repo)",
                                                       options: sessionOptions, logger: logger)
                return PathSession(session: session, fs: fs, record: record)
            } catch {
                try? fs.shutdown()
                throw error
            }
        } catch let error as FSError {
            throw error.mesaError
        } catch {
            throw MesaError.from(error)
        }
    }

    /// Unmounts by id ("tree", "org/repo", or a path mount's path) or by a path inside it.
    /// Pending writes are uploaded first; what cannot be uploaded stays in the journal.
    public func unmount(_ selector: MountSelector) throws(MesaError) -> [String] {
        let id = try mountId(selector) ?? "tree"
        if id == "tree" {
            guard let tree = state.withLock({ state -> (MountSession, TreeFileSystem)? in
                defer { state.tree = nil; state.saved.tree = false }
                return state.tree
            }) else { throw MesaError.notFound("the daemon tree is not mounted") }
            let repos = state.withLock { state in defer { state.treeRepos = [:] }; return state.treeRepos }
            tree.0.stop()
            repos.values.forEach { try? $0.shutdown() }
            saveState()
            return [tree.0.path]
        }
        if let pathMount = state.withLock({ state in state.paths.removeValue(forKey: id) }) {
            state.withLock { $0.saved.paths.removeAll { $0.path == id } }
            pathMount.session.stop()
            try? pathMount.fs.shutdown()
            saveState()
            return [pathMount.record.path]
        }
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let fs = state.withLock({ $0.treeRepos[id] }) else {
            throw MesaError.notFound("no mount '\(id)'; see listMounts")
        }
        try fs.flush()
        if orgConfig(parts[0])?.mount == .explicit {
            state.withLock { $0.saved.opened[parts[0]]?.removeAll { $0 == parts[1] } }
            saveState()
        }
        return [config.mountPoint + "/" + id]
    }

    public func list() -> [MountInfo] {
        let (tree, repos, paths) = state.withLock { ($0.tree, $0.treeRepos, $0.paths) }
        var result: [MountInfo] = []
        if let tree { result.append(treeInfo(tree.session.path)) }
        for (id, fs) in repos.sorted(by: { $0.key < $1.key }) {
            result.append(info(fs, mountId: id, path: config.mountPoint + "/" + id))
        }
        for (path, mount) in paths.sorted(by: { $0.key < $1.key }) {
            result.append(info(mount.fs, mountId: path, path: path))
        }
        return result
    }

    /// Every open repo mount with its id and path.
    public func repoMounts() -> [(id: String, path: String, fs: RepoFileSystem)] {
        let (repos, paths) = state.withLock { ($0.treeRepos, $0.paths) }
        return repos.sorted(by: { $0.key < $1.key }).map { ($0.key, config.mountPoint + "/" + $0.key, $0.value) }
            + paths.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.key, $0.value.fs) }
    }

    /// The id of the mount a selector names (a path is resolved to the mount holding it);
    /// nil when it names none.
    private func mountId(_ selector: MountSelector) throws(MesaError) -> String? {
        if let mountId = selector.mountId { return mountId }
        return try selector.path.map { path throws(MesaError) in try resolveMountId(containing: Self.absolute(path)) }
    }

    /// The repo mount a selector names: a mount id, or any path inside a mount.
    public func repoMount(_ selector: MountSelector) throws(MesaError) -> (id: String, path: String, fs: RepoFileSystem) {
        guard let id = try mountId(selector) else {
            let mounts = repoMounts()
            guard mounts.count == 1, let only = mounts.first else {
                throw MesaError.invalid("\(mounts.isEmpty ? "no repo is mounted" : "several repos are mounted"); pass mountId or a path inside the mount")
            }
            return only
        }
        if let mount = state.withLock({ $0.paths[id] }) { return (id, id, mount.fs) }
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, state.withLock({ $0.tree != nil }) else {
            throw MesaError.notFound("no repo mount '\(id)'; see listMounts")
        }
        return (id, config.mountPoint + "/" + id, try treeRepo(org: parts[0], repo: parts[1]))
    }

    // MARK: Restart and shutdown

    /// Mounts again what was mounted when the daemon last ran (after a crash too);
    /// journals replay on open. Failures are logged, not fatal: the rest still mounts.
    public func restore(forceTree: Bool) {
        let saved = Self.load(config.paths.mountStateFile)
        // What fails to mount now stays recorded, so the next start tries again.
        state.withLock {
            $0.saved.opened = saved.opened
            $0.saved.tree = saved.tree
        }
        if saved.tree || forceTree {
            do { _ = try mountTree() } catch { logger.error("cannot mount the daemon tree: \(error.message)") }
        }
        for record in saved.paths {
            do {
                let mode = try Self.mode(record.mode)
                let at = RevisionSpec(bookmark: record.bookmark, changeId: record.changeId)
                let target = try Self.target(at: record.bookmark == nil && record.changeId == nil ? nil : at,
                                             branchedFrom: record.branchedFrom, mode: mode)
                let (_, backend) = try orgs.backend(for: record.org)
                let mounted = try startPathMount(record, target: target, mode: mode, backend: backend)
                state.withLock {
                    $0.paths[record.path] = mounted
                    $0.saved.paths.append(record)
                }
                logger.info("remounted", metadata: ["path": "\(record.path)", "repo": "\(record.org)/\(record.repo)"])
            } catch {
                logger.error("cannot remount \(record.path): \(error.message)")
                state.withLock { $0.saved.paths.append(record) }
            }
        }
        saveState()
    }

    /// Flushes every repo, then unmounts everything. The saved state is kept, so the next
    /// start mounts the same things again. Returns mounts that failed to flush.
    @discardableResult
    public func shutdownAll() -> [String] {
        stopFollowing()
        var failures: [String] = []
        for mount in repoMounts() {
            do { try mount.fs.flush() } catch {
                failures.append("\(mount.path): \(error.message)")
                logger.error("could not upload pending writes (kept in the journal)", metadata: ["mount": "\(mount.path)", "error": "\(error.message)"])
            }
        }
        let (tree, repos, paths) = state.withLock { state in
            defer { state.tree = nil; state.treeRepos = [:]; state.paths = [:] }
            return (state.tree, state.treeRepos, state.paths)
        }
        tree?.session.stop()
        paths.values.forEach { $0.session.stop() }
        repos.values.forEach { try? $0.shutdown() }
        paths.values.forEach { try? $0.fs.shutdown() }
        return failures
    }

    // MARK: The tree

    private func treeProvider() -> TreeFileSystem.Provider {
        TreeFileSystem.Provider(
            orgs: { self.orgs.orgs.map(\.name) },
            repos: { org in try self.visibleRepos(org: org) },
            open: { org, repo in try self.treeRepo(org: org, repo: repo) })
    }

    /// In `all` mode every repo the org's key can see; in `explicit` mode the repos of
    /// config.toml plus those opened with `openRepo`.
    func visibleRepos(org: String) throws -> [String] {
        guard let orgConfig = orgConfig(org), let backend = orgs.backends[org] else { return [] }
        if orgConfig.mount == .explicit {
            let (opened, closed) = state.withLock { ($0.saved.opened[org] ?? [], $0.closed) }
            return Array(Set(orgConfig.repos.map(\.name) + opened).filter { !closed.contains("\(org)/\($0)") }).sorted()
        }
        var names: [String] = []
        var cursor: String?
        repeat {
            let page = try backend.listRepos(org: org, cursor: cursor, limit: 100)
            names += page.items.map(\.name)
            cursor = page.nextCursor
        } while cursor != nil
        return names
    }

    func treeRepo(org: String, repo: String) throws(MesaError) -> RepoFileSystem {
        let key = "\(org)/\(repo)"
        if let existing = state.withLock({ $0.treeRepos[key] }) { return existing }
        let (_, backend) = try orgs.backend(for: org)
        var target = MountTarget.bookmark(nil)
        switch orgConfig(org)?.repos.first(where: { $0.name == repo })?.rev {
        case .bookmark(let name): target = .bookmark(name)
        case .changeID(let text):
            target = .change(try ChangeID(text))
        case nil: break
        }
        var configuration = MountConfiguration(org: org, repo: repo, target: target, mode: .rw,
                                               journalDirectory: config.paths.journalDirectory + "/tree/\(org)/\(repo)",
                                               debounce: debounce, durability: config.durability)
        configuration.prefetch = config.prefetch
        Self.makeParent(of: configuration.journalDirectory)
        let fs: RepoFileSystem
        do { fs = try RepoFileSystem(configuration: configuration, backend: backend, cache: cache, logger: logger) } catch {
            throw error.mesaError
        }
        // Two threads may open the same repo at once; the first one stored wins.
        let (winner, loser) = state.withLock { state -> (RepoFileSystem, RepoFileSystem?) in
            if let existing = state.treeRepos[key] { return (existing, fs) }
            state.treeRepos[key] = fs
            return (fs, nil)
        }
        try? loser?.shutdown()
        return winner
    }

    // MARK: Helpers

    private var debounce: Duration { .milliseconds(config.flushDebounceMilliseconds) }

    func orgConfig(_ org: String) -> OrgConfig? { orgs.orgs.first { $0.name == org } }

    private func resolveMountId(containing path: String) throws(MesaError) -> String {
        let (paths, treePath) = state.withLock { (Array($0.paths.keys), $0.tree?.session.path) }
        if let match = paths.filter({ path == $0 || path.hasPrefix($0 + "/") }).max(by: { $0.count < $1.count }) {
            return match
        }
        if let treePath, path.hasPrefix(treePath + "/") {
            let parts = path.dropFirst(treePath.count + 1).split(separator: "/")
            if parts.count >= 2 { return "\(parts[0])/\(parts[1])" }
        }
        throw MesaError.notFound("\(path) is not inside a mounted repository")
    }

    private func info(_ fs: RepoFileSystem, mountId: String, path: String) -> MountInfo {
        let status = fs.status()
        return MountInfo(mountId: mountId, path: path, org: fs.org, repo: fs.repo, mode: fs.isReadOnly ? "ro" : "rw",
                         bookmark: status.bookmark, changeId: (status.workingChange ?? status.baseChange).rawValue)
    }

    private var sessionOptions: MountSession.Options { MountSession.Options(allowOther: config.allowOther) }

    private func treeInfo(_ path: String) -> MountInfo {
        MountInfo(mountId: "tree", path: path, mode: "rw")
    }

    func saveState() {
        let saved = state.withLock { $0.saved }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try writePrivateFile(config.paths.mountStateFile, String(decoding: try encoder.encode(saved), as: UTF8.self))
        } catch {
            logger.error("cannot save mount state: \(error)")
        }
    }

    static func load(_ path: String) -> SavedMounts {
        guard let data = FileManager.default.contents(atPath: path) else { return SavedMounts() }
        return (try? JSONDecoder().decode(SavedMounts.self, from: data)) ?? SavedMounts()
    }

    static func mode(_ text: String?) throws(MesaError) -> Mount.MountMode {
        switch text ?? "rw" {
        case "rw": .rw
        case "ro": .ro
        default: throw MesaError.invalid("invalid mode '\(text ?? "")': use \"rw\" or \"ro\"")
        }
    }

    static func target(at: RevisionSpec?, branchedFrom: BranchedFromSpec?, mode: Mount.MountMode) throws(MesaError) -> MountTarget {
        if let at, branchedFrom != nil {
            _ = at
            throw MesaError.invalid("'at' and 'branchedFrom' cannot be combined")
        }
        if let branch = branchedFrom {
            guard mode == .rw else { throw MesaError.invalid("'branchedFrom' needs mode \"rw\"") }
            let change = try branch.changeId.map { text throws(MesaError) in try ChangeID(text) }
            return .branchedFrom(BranchSpec(bookmark: branch.bookmark, change: change, newBookmark: branch.as?.bookmark,
                                            describe: branch.as?.describe))
        }
        guard let at else { return .bookmark(nil) }
        switch (at.bookmark, at.changeId) {
        case (let bookmark?, nil): return .bookmark(bookmark)
        case (nil, let change?): return .change(try ChangeID(change))
        default: throw MesaError.invalid("'at' takes exactly one of {bookmark} or {changeId}")
        }
    }

    static func absolute(_ path: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        var text = url.standardizedFileURL.path
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        return text
    }

    static func makeParent(of path: String) {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// A path as one directory name.
    static func safeName(_ path: String) -> String {
        Data(path.utf8).base64EncodedString().replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "=", with: "")
    }
}
