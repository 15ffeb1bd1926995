import Foundation
import MesaAPI
import MesaProtocol
import Model
import RPC
import Store

/// The repo, identity and key methods: each resolves the org's backend and acts with
/// that org's credential, so the backend enforces its scopes.
extension Daemon {
    func registerRepoAndKeyMethods() {
        dispatcher.register(Whoami.self) { params, _ in
            let (_, backend) = try self.orgs.backend(for: params.org)
            let identity = try await blocking { try backend.whoami() }
            return Whoami.Result(org: identity.org, keyId: identity.keyID, keyName: identity.keyName,
                                 scopes: identity.scopes.map(\.rawValue), repoIds: identity.repoIDs, backend: self.backendName)
        }

        dispatcher.register(ListOrgs.self) { _, _ in
            ListOrgs.Result(orgs: self.orgs.orgs.map { org in
                // Explicit mode lists no backend: visibleRepos answers from memory.
                let repos = org.mount == .explicit ? (try? self.mounts?.visibleRepos(org: org.name)) ?? org.repos.map(\.name) : nil
                return ListOrgs.Org(name: org.name, mount: org.mount.rawValue, backend: self.backendName, repos: repos)
            })
        }

        dispatcher.register(ListRepos.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let page = try await blocking { try backend.listRepos(org: org, cursor: params.cursor, limit: params.limit) }
            return ListRepos.Result(.init(repos: page.items), PageInfo(page))
        }

        dispatcher.register(GetRepo.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            return GetRepo.Result(repo: try await blocking { try backend.repo(org: org, name: params.repo) })
        }

        dispatcher.register(CreateRepo.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let upstream = try params.upstream?.settings()
            let repo = try await blocking {
                upstream == nil ? try backend.createRepo(org: org, name: params.name, defaultBookmark: params.defaultBookmark)
                    : try backend.createRepo(org: org, name: params.name, defaultBookmark: params.defaultBookmark, upstream: upstream)
            }
            return CreateRepo.Result(repo: repo)
        }

        dispatcher.register(SetUpstream.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let update: UpstreamUpdate
            if let upstream = params.upstream {
                let settings = try upstream.settings()
                let auth: UpstreamAuthChange = settings.auth.map { .replace($0) } ?? (params.clearAuth == true ? .clear : .keep)
                update = .set(url: settings.url, auth: auth)
            } else {
                update = .remove
            }
            return SetUpstream.Result(repo: try await blocking { try backend.updateUpstream(org: org, repo: params.repo, update) })
        }

        dispatcher.register(CreateSync.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let sync = try await blocking {
                try backend.createSync(org: org, repo: params.repo, direction: params.direction,
                                       refGlobs: SyncRefGlobs(branches: params.branches, tags: params.tags))
            }
            return CreateSync.Result(sync: sync)
        }

        dispatcher.register(ListSyncs.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let page = try await blocking { try backend.listSyncs(org: org, repo: params.repo, cursor: params.cursor, limit: params.limit) }
            return ListSyncs.Result(.init(syncs: page.items), PageInfo(page))
        }

        dispatcher.register(GetSync.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            return GetSync.Result(sync: try await blocking { try backend.sync(org: org, repo: params.repo, id: params.id) })
        }

        dispatcher.register(DeleteRepo.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            try await blocking { try backend.deleteRepo(org: org, name: params.repo) }
            return OK()
        }

        dispatcher.register(CreateEphemeralKey.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let scopes = try params.scopes.map { try $0.map { text throws(MesaError) in
                guard let scope = Scope(rawValue: text) else {
                    throw MesaError.invalid("invalid scope '\(text)': use read, write or admin")
                }
                return scope
            } }
            let lifetime = params.expiresInSeconds ?? CreateEphemeralKey.defaultLifetime
            let created = try await blocking { () throws -> CreatedAPIKey in
                // Repos may be named by name or id; keys store ids.
                let repoIDs = try params.repos.map { try $0.map { nameOrID in
                    nameOrID.hasPrefix("repo_") && (try? backend.repo(org: org, name: nameOrID)) == nil
                        ? nameOrID : try backend.repo(org: org, name: nameOrID).id
                } }
                return try backend.createKey(org: org, KeyRequest(name: params.name, scopes: scopes, repoIDs: repoIDs,
                                                                  expiresInSeconds: lifetime))
            }
            return CreateEphemeralKey.Result(key: created.secret, info: KeyInfo(created.key))
        }

        dispatcher.register(ListKeys.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            let status = try params.status.map { text throws(MesaError) -> KeyStatus in
                guard let status = KeyStatus(rawValue: text) else {
                    throw MesaError.invalid("invalid status '\(text)': use active, revoked or expired")
                }
                return status
            }
            let page = try await blocking { try backend.listKeys(org: org, status: status, cursor: params.cursor, limit: params.limit) }
            return ListKeys.Result(.init(keys: page.items.map(KeyInfo.init)), PageInfo(page))
        }

        dispatcher.register(RevokeKey.self) { params, _ in
            let (org, backend) = try self.orgs.backend(for: params.org)
            try await blocking { try backend.revokeKey(org: org, id: params.id) }
            return OK()
        }
    }
}

extension PageInfo {
    /// Where a backend page of any kind ends.
    init<Item: Sendable>(_ page: Page<Item>) { self.init(nextCursor: page.nextCursor, hasMore: page.hasMore) }
}
