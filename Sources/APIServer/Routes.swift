import Foundation
import Hummingbird
import MesaAPI
import Model
import Store

extension APIServer {
    /// The `/v1` routes of the reference (one file per resource: Routes+Repos, +Changes,
    /// +Bookmarks, +Content, +Keys, +Webhooks). Endpoints mesa-server does not support answer 501
    /// in the standard envelope.
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
                let (org, count) = try backend.org(call.param("org"))
                return RESTOrgInfo(createdAt: org.createdAt, numRepos: count)
            }
        }

        addRepoRoutes(v1)
        addChangeRoutes(v1)
        addBookmarkRoutes(v1)
        addContentRoutes(v1)
        addKeyRoutes(v1)
        addWebhookRoutes(v1)
        addSyncRoutes(v1)
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
