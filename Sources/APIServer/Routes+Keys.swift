import Foundation
import Hummingbird
import MesaAPI
import Model
import Store

extension APIServer {
    func addKeyRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        v1.post(":org/api-keys") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateKey.self)
                return RESTCreatedKey(try backend.createKey(org: call.param("org"), try body.request()))
            }
        }
        // Filters: `status` (default all), `query` (case-insensitive name substring),
        // `scope` (keys listing that scope), `repo_id` (keys scoped to that repo).
        v1.get(":org/api-keys") { req, ctx in
            await handle(req, ctx) { backend, call in
                var status: KeyStatus?
                if let text = call.query["status"], text != "all" {
                    guard let parsed = KeyStatus(rawValue: text) else {
                        throw MesaError.invalid("'status' must be active, revoked, expired or all, got '\(text.prefix(20))'")
                    }
                    status = parsed
                }
                var scope: Scope?
                if let text = call.query["scope"] {
                    guard let parsed = Scope(rawValue: text) else {
                        throw MesaError.invalid("'scope' must be read, write or admin, got '\(text.prefix(20))'")
                    }
                    scope = parsed
                }
                if let query = call.query["query"], query.isEmpty {
                    throw MesaError.invalid("'query' must not be empty; omit it to list every key")
                }
                return RESTKeyPage(try backend.listKeys(org: call.param("org"), status: status, query: call.query["query"],
                                                        scope: scope, repoID: call.query["repo_id"],
                                                        cursor: call.query["cursor"], limit: try call.limit()))
            }
        }
        v1.delete(":org/api-keys/:id") { req, ctx in
            await handle(req, ctx) { backend, call in
                try backend.revokeKey(org: call.param("org"), id: call.param("id"))
                return RESTSuccess()
            }
        }
        // Tag keys are lower-cased, 1–64 characters, not starting with '$'; values ≤256.
        v1.patch(":org/api-keys/:id") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTKeyTags.self)
                return RESTKeyTagsResult(tags: try backend.updateKeyTags(org: call.param("org"), id: call.param("id"), tags: body.tags))
            }
        }
    }
}
