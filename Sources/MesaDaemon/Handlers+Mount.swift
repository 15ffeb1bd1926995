import Foundation
import MesaAPI
import MesaProtocol
import Model
import Mount
import RPC
import Store

/// The repo a versioning method acts on: a mount, or an org/repo pair.
struct RepoTarget: Sendable {
    let org: String
    let repo: String
    let backend: any Backend
    let mount: (id: String, path: String, fs: RepoFileSystem)?

    /// The change the mount shows (`@`): its working change, else its base.
    var currentChange: ChangeID? {
        mount.map { let status = $0.fs.status(); return status.workingChange ?? status.baseChange }
    }
}

extension Daemon {
    func mountManager() throws(MesaError) -> MountManager {
        guard let mounts else {
            throw MesaError(.internal, "mounting is unavailable in this daemon: \(mountsUnavailableReason ?? "unknown reason")")
        }
        return mounts
    }

    /// Where every selector is resolved. A mount: by id, or by a path inside it.
    func mount(_ selector: MountSelector) throws(MesaError) -> (id: String, path: String, fs: RepoFileSystem) {
        try mountManager().repoMount(selector)
    }

    /// A repo: its mount, or the org/repo pair when no mount is named.
    func target(_ selector: RepoSelector) throws(MesaError) -> RepoTarget {
        if selector.mountId == nil, selector.path == nil, let repo = selector.repo {
            let (org, backend) = try orgs.backend(for: selector.org)
            return RepoTarget(org: org, repo: repo, backend: backend, mount: nil)
        }
        let mount = try mount(selector.mount)
        let (org, backend) = try orgs.backend(for: mount.fs.org)
        return RepoTarget(org: org, repo: mount.fs.repo, backend: backend, mount: mount)
    }

    /// A bookmark name or a change id, as the CLI accepts it.
    func resolve(_ rev: String?, in target: RepoTarget) throws -> ChangeID {
        guard let rev, rev != "@" else {
            guard let current = target.currentChange else {
                throw MesaError.invalid("no revision given and no mount selected; pass rev")
            }
            return current
        }
        if let id = try? ChangeID(rev) { return id }
        return try target.backend.bookmark(org: target.org, repo: target.repo, name: rev).changeID
    }

    func registerMountMethods() {
        dispatcher.register(MountMethod.self) { params, _ in
            let mounts = try self.mountManager()
            return try await blocking { try mounts.mountRepo(params) }
        }
        dispatcher.register(UnmountMethod.self) { params, _ in
            let mounts = try self.mountManager()
            return UnmountMethod.Result(unmounted: try await blocking {
                defer { self.events.changed() }
                return try mounts.unmount(params)
            })
        }
        dispatcher.register(ListMounts.self) { _, _ in
            ListMounts.Result(mounts: try self.mountManager().list())
        }
        dispatcher.register(MountStatusMethod.self) { params, _ in
            let mounts = try self.mountManager()
            let selected = params.mountId == nil && params.path == nil ? mounts.repoMounts() : [try mounts.repoMount(params)]
            return .init(mounts: selected.map { MountStatusInfo($0.fs.status(), mountId: $0.id, path: $0.path) })
        }
        dispatcher.register(Checkpoint.self) { params, _ in
            let mount = try self.mount(params.selector)
            let result = try await blocking {
                let result = try mount.fs.checkpoint(message: params.message)
                self.events.changed(extra: [MesaEvent(event: MesaEvents.checkpointMade, mountId: mount.id, mountPath: mount.path,
                                                      org: mount.fs.org, repo: mount.fs.repo, changeId: result.savedChange.rawValue,
                                                      bookmark: result.bookmark, created: result.created, message: params.message)],
                                    bookmarks: true)
                return result
            }
            return .init(savedChangeId: result.savedChange.rawValue, created: result.created, bookmark: result.bookmark)
        }
        dispatcher.register(NewChange.self) { params, _ in
            let mount = try self.mount(params)
            return .init(changeId: try await blocking { try mount.fs.newChange() }.rawValue)
        }
        dispatcher.register(EditChange.self) { params, _ in
            let mount = try self.mount(params.selector)
            let edit: EditTarget
            switch (params.bookmark, params.changeId) {
            case (let bookmark?, nil): edit = .bookmark(bookmark)
            case (nil, let change?): edit = .change(try ChangeID(change))
            default: throw MesaError.invalid("editChange takes exactly one of bookmark or changeId")
            }
            let status = try await blocking { try mount.fs.editChange(edit) }
            return MountStatusInfo(status, mountId: mount.id, path: mount.path)
        }
        registerRepoVersioningMethods()
    }

    private func registerRepoVersioningMethods() {
        dispatcher.register(ListChanges.self) { params, _ in
            let target = try self.target(params.selector)
            let bookmark = params.bookmark ?? target.mount?.fs.status().bookmark
            let page = try await blocking {
                try target.backend.listChanges(org: target.org, repo: target.repo, bookmark: bookmark, cursor: params.cursor, limit: params.limit)
            }
            return .init(.init(changes: page.items.map { ChangeInfo($0) }), PageInfo(page))
        }
        dispatcher.register(ShowChange.self) { params, _ in
            let target = try self.target(params.selector)
            return try await blocking {
                try target.mount?.fs.flush()
                let id = try self.resolve(params.rev, in: target)
                let detail = try target.backend.change(org: target.org, repo: target.repo, id: id)
                let parent = detail.change.parents.first ?? .root
                let diff = try target.backend.diff(org: target.org, repo: target.repo, base: parent, head: id)
                var patch: String?
                if params.patch == true {
                    if diff.truncated {
                        throw MesaError.invalid("the change touches more than \(diff.entries.count) files: too many for a patch")
                    }
                    var builder = GitPatch(org: target.org, repo: target.repo, backend: target.backend)
                    patch = try builder.text(diff, base: parent, head: id)
                }
                return ShowChange.Result(change: ChangeInfo(detail.change, files: detail.files), diff: DiffInfo(diff), patch: patch)
            }
        }
        dispatcher.register(DiffMethod.self) { params, _ in
            let target = try self.target(params.selector)
            return try await blocking {
                try target.mount?.fs.flush()
                let head = try self.resolve(params.head, in: target)
                let base: ChangeID
                if let text = params.base { base = try self.resolve(text, in: target) } else {
                    base = try target.backend.change(org: target.org, repo: target.repo, id: head).change.parents.first ?? .root
                }
                return DiffInfo(try target.backend.diff(org: target.org, repo: target.repo, base: base, head: head))
            }
        }
        dispatcher.register(ListBookmarks.self) { params, _ in
            let target = try self.target(params.selector)
            let page = try await blocking {
                try target.backend.listBookmarks(org: target.org, repo: target.repo, cursor: params.cursor, limit: params.limit)
            }
            return .init(.init(bookmarks: page.items.map(BookmarkInfo.init)), PageInfo(page))
        }
        dispatcher.register(CreateBookmark.self) { params, _ in
            let target = try self.target(params.selector)
            return try await blocking {
                try target.mount?.fs.flush()
                let change = try self.resolve(params.changeId, in: target)
                let created = try target.backend.createBookmark(org: target.org, repo: target.repo, name: params.name, at: change)
                self.events.changed(bookmarks: true)
                return .init(bookmark: BookmarkInfo(created))
            }
        }
        dispatcher.register(MoveBookmark.self) { params, _ in
            let target = try self.target(params.selector)
            return try await blocking {
                let change = try self.resolve(params.changeId, in: target)
                let moved = try target.backend.moveBookmark(org: target.org, repo: target.repo, name: params.name, to: change,
                                                            expectedFrom: nil, allowBackwards: params.allowBackwards ?? false)
                self.events.changed(bookmarks: true)
                return .init(bookmark: BookmarkInfo(moved.bookmark), fromChangeId: moved.from.rawValue)
            }
        }
        dispatcher.register(MergeBookmark.self) { params, _ in
            let target = try self.target(params.selector)
            return try await blocking {
                let result = try target.backend.mergeBookmark(org: target.org, repo: target.repo, target: params.target, source: params.source,
                                                              message: params.message, allowConflicted: params.allowConflicted ?? false)
                self.events.changed(bookmarks: true)
                return .init(mergeType: result.mergeType.rawValue, changeId: result.changeID.rawValue, conflicts: result.conflicts)
            }
        }
        dispatcher.register(OpenRepo.self) { params, _ in
            let mounts = try self.mountManager()
            try await blocking { try mounts.openRepo(org: params.org, repo: params.repo) }
            return OK()
        }
        dispatcher.register(CloseRepo.self) { params, _ in
            let mounts = try self.mountManager()
            try await blocking {
                defer { self.events.changed() }
                try mounts.closeRepo(org: params.org, repo: params.repo)
            }
            return OK()
        }
    }
}
