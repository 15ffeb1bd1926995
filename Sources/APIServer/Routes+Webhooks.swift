import Foundation
import Hummingbird
import MesaAPI
import Model
import Store
import StoreBackend

extension APIServer {
    /// `/{org}/webhook-targets` (scope admin, org-wide keys only) and the read-only
    /// delivery log `/{org}/webhook-targets/{id}/deliveries` (a mesa-server extension).
    func addWebhookRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        v1.post(":org/webhook-targets") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let org = try Self.webhookAdmin(backend, call)
                let body = try call.decode(RESTCreateWebhookTarget.self)
                let created = try backend.store.createWebhookTarget(org: org, name: body.name, url: body.url,
                                                                    events: try webhookEventTypes(body.events), repoIDs: body.repoIDs)
                return RESTWebhookTarget(created.target, secret: created.secret)
            }
        }
        v1.get(":org/webhook-targets") { req, ctx in
            await handle(req, ctx) { backend, call in
                let org = try Self.webhookAdmin(backend, call)
                return RESTWebhookTargetPage(try backend.store.listWebhookTargets(org: org, cursor: call.query["cursor"],
                                                                                  limit: try call.limit()))
            }
        }
        v1.get(":org/webhook-targets/:id") { req, ctx in
            await handle(req, ctx) { backend, call in
                let org = try Self.webhookAdmin(backend, call)
                return RESTWebhookTarget(try backend.store.webhookTarget(org: org, id: call.param("id")))
            }
        }
        v1.patch(":org/webhook-targets/:id") { req, ctx in
            await handle(req, ctx) { backend, call in
                let org = try Self.webhookAdmin(backend, call)
                let body = try call.decode(RESTUpdateWebhookTarget.self)
                return RESTWebhookTarget(try backend.store.updateWebhookTarget(
                    org: org, id: call.param("id"), name: body.name, url: body.url,
                    events: try webhookEventTypes(body.events), repoIDs: body.repoIDs))
            }
        }
        v1.delete(":org/webhook-targets/:id") { req, ctx in
            await handle(req, ctx) { backend, call in
                let org = try Self.webhookAdmin(backend, call)
                try backend.store.deleteWebhookTarget(org: org, id: call.param("id"))
                return RESTSuccess()
            }
        }
        v1.get(":org/webhook-targets/:id/deliveries") { req, ctx in
            await handle(req, ctx) { backend, call in
                let org = try Self.webhookAdmin(backend, call)
                return RESTWebhookDeliveryPage(try backend.store.webhookDeliveries(
                    org: org, targetID: call.param("id"), cursor: call.query["cursor"], limit: try call.limit()))
            }
        }
    }

    /// Targets see every repo's events and hold secrets: an org-wide admin key only.
    /// Returns the org slug.
    static func webhookAdmin(_ backend: LocalBackend, _ call: Call) throws -> String {
        let org = call.param("org")
        let principal = backend.principal
        try backend.store.authorize(principal, .read, org: org)
        guard principal.has(.admin) else {
            throw MesaError(.forbidden, "key '\(principal.keyName ?? principal.keyID)' has scopes \(principal.scopes.map(\.rawValue).joined(separator: ",")); managing webhook targets needs 'admin'")
        }
        guard principal.repoIDs == nil else {
            throw MesaError(.forbidden, "key '\(principal.keyName ?? principal.keyID)' is scoped to specific repos and cannot manage webhook targets; use an org-wide admin key")
        }
        return org
    }
}
