import Mount

extension MountManager {
    /// Mounts whose FUSE session ended without mesad unmounting them (someone ran
    /// `fusermount -u`, or the kernel aborted the connection): their ids and paths. A dead
    /// tree takes every repo inside it along.
    public func lostMounts() -> [(id: String, path: String)] {
        let (tree, repos, paths) = state.withLock { ($0.tree, $0.treeRepos, $0.paths) }
        var lost: [(id: String, path: String)] = []
        if let tree, !tree.session.isServing {
            lost.append(("tree", tree.session.path))
            lost += repos.keys.sorted().map { ($0, config.mountPoint + "/" + $0) }
        }
        lost += paths.filter { !$0.value.session.isServing }.keys.sorted().map { ($0, $0) }
        return lost
    }
}
