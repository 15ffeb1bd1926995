import Foundation
import Hummingbird
import MesaAPI
import Model
import Store

extension APIServer {
    func addRepoRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        v1.get(":org/repos") { req, ctx in
            await handle(req, ctx) { backend, call in
                let filter = try call.query["tags"].flatMap { text throws(MesaError) in
                    text.isEmpty ? nil : try mesaErrors { try TagFilter.parse(text) }
                }
                return RESTRepoPage(try backend.listRepos(org: call.param("org"), filter: filter, cursor: call.query["cursor"],
                                                          limit: try call.limit()))
            }
        }
        v1.post(":org/repos") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateRepo.self)
                let name = body.name ?? "repo-" + UUID().uuidString.prefix(8).lowercased()
                return RESTRepo(try backend.createRepo(org: call.param("org"), name: name, defaultBookmark: body.defaultBookmark,
                                                       tags: body.tags ?? [:], upstream: try body.upstream?.settings()))
            }
        }
        // Sets or removes one tag on many repos. `updated` counts repos whose tags
        // actually changed, so repeating a request answers 0 (idempotent). Ids that do
        // not exist or that the key cannot see are skipped, not reported.
        v1.patch(":org/repos/tags") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTRepoTagsUpdate.self)
                guard body.repoIDs.count <= 1000 else {
                    throw MesaError.invalid("'repo_ids' lists \(body.repoIDs.count) repos; send at most 1000 per request")
                }
                let value: String?
                switch body.action {
                case .set:
                    guard let given = body.value else { throw MesaError.invalid("'value' is required when 'action' is 'set'") }
                    value = given
                case .remove:
                    value = nil
                }
                return RESTUpdated(updated: try backend.updateRepoTags(org: call.param("org"), repoIDs: body.repoIDs,
                                                                       key: body.key, value: value))
            }
        }
        v1.get(":org/:repo") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTRepo(try backend.repo(org: call.param("org"), name: call.param("repo")))
            }
        }
        v1.patch(":org/:repo") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTUpdateRepo.self)
                return RESTRepo(try backend.updateRepo(org: call.param("org"), name: call.param("repo"), newName: body.name,
                                                       defaultBookmark: body.defaultBookmark, tags: body.tags ?? [:],
                                                       upstream: try body.upstreamUpdate()))
            }
        }
        v1.delete(":org/:repo") { req, ctx in
            await handle(req, ctx) { backend, call in
                try backend.deleteRepo(org: call.param("org"), name: call.param("repo"))
                return RESTSuccess()
            }
        }
        }

    /// Upstream syncs: creating one needs write scope (the route's key must reach the repo),
    /// reading needs read; they run on the store's sync worker.
    func addSyncRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        v1.post(":org/:repo/upstream/syncs") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let (direction, globs) = try call.decode(RESTCreateSync.self).parsed()
                return RESTSync(try backend.createSync(org: call.param("org"), repo: call.param("repo"), direction: direction,
                                                       refGlobs: globs))
            }
        }
        v1.get(":org/:repo/upstream/syncs") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTSyncPage(try backend.listSyncs(org: call.param("org"), repo: call.param("repo"), cursor: call.query["cursor"],
                                                   limit: try call.limit()))
            }
        }
        v1.get(":org/:repo/upstream/syncs/:sync") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTSync(try backend.sync(org: call.param("org"), repo: call.param("repo"), id: call.param("sync")))
            }
        }
    }
}
