import Foundation
import Hummingbird
import MesaAPI
import Store

extension APIServer {
    /// The `/v1` routes of the reference. Endpoints not built yet answer 501 in the
    /// standard envelope.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: EnvelopeMiddleware())
        let v1 = router.group("v1")

        // Identity and org
        v1.get("whoami") { req, ctx in
            await handle(req, ctx) { backend, _ in RESTWhoami(try backend.whoami()) }
        }
        v1.get(":org") { req, ctx in
            await handle(req, ctx) { backend, call in
                let org = call.param("org")
                return try mesaErrors {
                    try backend.store.authorize(backend.principal, .read, org: org)
                    let info = try backend.store.org(org)
                    let count = try backend.store.repoCount(org: org)
                    return RESTOrgInfo(createdAt: info.createdAt, numRepos: count)
                }
            }
        }

        // Repos
        v1.get(":org/repos") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTRepoPage(try backend.listRepos(org: call.param("org"), cursor: call.query["cursor"], limit: try call.limit()))
            }
        }
        v1.post(":org/repos") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateRepo.self)
                let org = call.param("org")
                let name = body.name ?? "repo-" + UUID().uuidString.prefix(8).lowercased()
                var repo = try backend.createRepo(org: org, name: name, defaultBookmark: body.defaultBookmark)
                if let tags = body.tags, !tags.isEmpty {
                    repo = try mesaErrors { try backend.store.updateRepo(org: org, name: repo.name, tags: tags) }
                }
                return RESTRepo(repo)
            }
        }
        v1.patch(":org/repos/tags") { req, ctx in
            await handle(req, ctx) { _, _ in throw Self.notImplemented("PATCH /{org}/repos/tags") }
        }
        v1.get(":org/:repo") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTRepo(try backend.repo(org: call.param("org"), name: call.param("repo")))
            }
        }
        v1.patch(":org/:repo") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTUpdateRepo.self)
                let org = call.param("org"), name = call.param("repo")
                return try mesaErrors {
                    let repo = try backend.repo(org: org, name: name)
                    try backend.store.authorize(backend.principal, .write, org: org, repoID: repo.id)
                    return RESTRepo(try backend.store.updateRepo(org: org, name: name, newName: body.name,
                                                                 defaultBookmark: body.defaultBookmark, tags: body.tags ?? [:]))
                }
            }
        }
        v1.delete(":org/:repo") { req, ctx in
            await handle(req, ctx) { backend, call in
                try backend.deleteRepo(org: call.param("org"), name: call.param("repo"))
                return RESTSuccess()
            }
        }

        // Changes
        v1.get(":org/:repo/changes") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTChangePage(try backend.listChanges(org: call.param("org"), repo: call.param("repo"),
                                                       bookmark: call.query["bookmark"], cursor: call.query["cursor"],
                                                       limit: try call.limit()))
            }
        }
        v1.post(":org/:repo/changes") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateChange.self)
                let base = try Self.changeID(body.baseChangeID, field: "base_change_id")
                let files = try (body.files ?? []).map { (op: RESTFileOp) throws(MesaError) -> FileOperation in try op.operation() }
                return RESTChange(try backend.createChange(org: call.param("org"), repo: call.param("repo"), base: base,
                                                           message: body.message ?? "", files: files))
            }
        }
        v1.get(":org/:repo/changes/:change") { req, ctx in
            await handle(req, ctx) { backend, call in
                let id = try Self.changeID(call.param("change"), field: "change_id")
                return RESTChange(try backend.change(org: call.param("org"), repo: call.param("repo"), id: id))
            }
        }
        v1.patch(":org/:repo/changes/:change") { req, ctx in
            await handle(req, ctx) { _, _ in throw Self.notImplemented("PATCH /{org}/{repo}/changes/{change_id}") }
        }

        // Bookmarks
        v1.get(":org/:repo/bookmarks") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTBookmarkPage(try backend.listBookmarks(org: call.param("org"), repo: call.param("repo"),
                                                           cursor: call.query["cursor"], limit: try call.limit()))
            }
        }
        v1.post(":org/:repo/bookmarks") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateBookmark.self)
                let id = try Self.changeID(body.changeID, field: "change_id")
                return RESTBookmark(try backend.createBookmark(org: call.param("org"), repo: call.param("repo"),
                                                               name: body.name, at: id))
            }
        }
        v1.post(":org/:repo/bookmarks/merge") { req, ctx in
            await handle(req, ctx) { _, _ in throw Self.notImplemented("POST /{org}/{repo}/bookmarks/merge") }
        }
        v1.get(":org/:repo/bookmarks/:bookmark") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTBookmark(try backend.bookmark(org: call.param("org"), repo: call.param("repo"), name: call.param("bookmark")))
            }
        }
        v1.patch(":org/:repo/bookmarks/:bookmark") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTMoveBookmark.self)
                let id = try Self.changeID(body.changeID, field: "change_id")
                return RESTBookmark(try backend.moveBookmark(org: call.param("org"), repo: call.param("repo"),
                                                             name: call.param("bookmark"), to: id, expectedFrom: nil,
                                                             allowBackwards: body.allowBackwards ?? false))
            }
        }
        v1.delete(":org/:repo/bookmarks/:bookmark") { req, ctx in
            await handle(req, ctx) { backend, call in
                try backend.deleteBookmark(org: call.param("org"), repo: call.param("repo"), name: call.param("bookmark"))
                return RESTSuccess()
            }
        }

        // API keys
        v1.post(":org/api-keys") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateKey.self)
                return RESTCreatedKey(try backend.createKey(org: call.param("org"), try body.request()))
            }
        }
        v1.get(":org/api-keys") { req, ctx in
            await handle(req, ctx) { backend, call in
                var status: KeyStatus?
                if let text = call.query["status"], text != "all" {
                    guard let parsed = KeyStatus(rawValue: text) else {
                        throw MesaError.invalid("'status' must be active, revoked, expired or all, got '\(text.prefix(20))'")
                    }
                    status = parsed
                }
                return RESTKeyPage(try backend.listKeys(org: call.param("org"), status: status, cursor: call.query["cursor"],
                                                        limit: try call.limit()))
            }
        }
        v1.delete(":org/api-keys/:id") { req, ctx in
            await handle(req, ctx) { backend, call in
                try backend.revokeKey(org: call.param("org"), id: call.param("id"))
                return RESTSuccess()
            }
        }
        v1.patch(":org/api-keys/:id") { req, ctx in
            await handle(req, ctx) { _, _ in throw Self.notImplemented("PATCH /{org}/api-keys/{id}") }
        }

        // Not built yet: content, diff, upstream syncs, webhooks.
        for path in [":org/:repo/content", ":org/:repo/diff", ":org/:repo/upstream/syncs", ":org/:repo/upstream/syncs/:sync",
                     ":org/webhook-targets", ":org/webhook-targets/:id"] {
            for method in [HTTPRequest.Method.get, .post, .patch, .delete] {
                v1.on(RouterPath(path), method: method) { req, ctx in
                    await handle(req, ctx) { _, _ in throw Self.notImplemented("\(method.rawValue) /v1/\(path)") }
                }
            }
        }
        return router
    }

    static func notImplemented(_ what: String) -> NotImplemented { NotImplemented(what: what) }
}

/// Rendered as 501 `NOT_IMPLEMENTED`.
struct NotImplemented: Error {
    let what: String
}

/// Unmatched routes and other framework errors answer in the standard envelope too.
struct EnvelopeMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "NOT_FOUND" : "HTTP_\(error.status.code)"
            let message = error.status == .notFound ? "no route for \(request.method.rawValue) \(request.uri.path)"
                : (error.body ?? error.status.reasonPhrase)
            return APIServer.envelope(Int(error.status.code), code, message)
        }
    }
}
