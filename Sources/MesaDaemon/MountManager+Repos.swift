import Foundation
import MesaProtocol
import Model

/// `openRepo` / `closeRepo`: the repos an org in explicit mode shows in the tree. Each
/// edits config.toml (so the choice survives restarts, as Mesa's `mesa repo open|close`)
/// and takes effect at once in the running tree.
extension MountManager {
    /// Lists the repo in config.toml and shows it in the tree (mounting the tree if needed).
    public func openRepo(org name: String?, repo: String) throws(MesaError) {
        let (org, backend) = try orgs.backend(for: name)
        try requireExplicit(org, "open")
        do { _ = try backend.repo(org: org, name: repo) } catch { throw MesaError.from(error) }
        if let file = config.configFile { try ConfigEditor.addRepo(repo, org: org, file: file) }
        state.withLock { state in
            state.closed.remove("\(org)/\(repo)")
            if !(state.saved.opened[org] ?? []).contains(repo) { state.saved.opened[org, default: []].append(repo) }
        }
        saveState()
        _ = try mountTree()
    }

    /// Uploads the repo's pending writes, removes it from config.toml and hides it.
    public func closeRepo(org name: String?, repo: String) throws(MesaError) {
        let (org, _) = try orgs.backend(for: name)
        try requireExplicit(org, "close")
        let key = "\(org)/\(repo)"
        let visible = (try? visibleRepos(org: org)) ?? []
        guard visible.contains(repo) else { throw MesaError.notFound("\(key) is not open; see `mesa repo list`") }
        // Writes first: a failed upload leaves the repo open and the file as it was.
        try state.withLock { $0.treeRepos[key] }?.flush()
        if let file = config.configFile { try ConfigEditor.removeRepo(repo, org: org, file: file) }
        state.withLock { state in
            state.closed.insert(key)
            state.saved.opened[org]?.removeAll { $0 == repo }
        }
        saveState()
    }

    private func requireExplicit(_ org: String, _ verb: String) throws(MesaError) {
        guard orgConfig(org)?.mount == .explicit else {
            throw MesaError.invalid("org '\(org)' mounts all repos (mount = \"all\"), so there is nothing to \(verb): every repo its key can see is shown. Repos are opened and closed only in explicit mode (mount = \"explicit\" under [organizations.\(ConfigEditor.key(org))] in config.toml, then restart mesad)")
        }
    }
}
