import Foundation
import Hummingbird
import MesaAPI
import Model
import Store

extension APIServer {
    func addChangeRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        v1.get(":org/:repo/changes") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTChangePage(try backend.listChanges(org: call.param("org"), repo: call.param("repo"),
                                                       bookmark: call.query["bookmark"], cursor: call.query["cursor"],
                                                       limit: try call.limit()))
            }
        }
        // `author` defaults to the calling key's identity, `committer` to the author.
        v1.post(":org/:repo/changes") { req, ctx in
            await handle(req, ctx, status: .created) { backend, call in
                let body = try call.decode(RESTCreateChange.self)
                let base = try Self.changeID(body.baseChangeID, field: "base_change_id")
                let files = try Self.operations(body.files)
                return RESTChange(try backend.createChange(org: call.param("org"), repo: call.param("repo"), base: base,
                                                           message: body.message ?? "", author: body.author?.undated,
                                                           committer: body.committer?.undated, files: files))
            }
        }
        v1.get(":org/:repo/changes/:change") { req, ctx in
            await handle(req, ctx) { backend, call in
                let id = try Self.changeID(call.param("change"), field: "change_id")
                return RESTChange(try backend.change(org: call.param("org"), repo: call.param("repo"), id: id))
            }
        }
        // Amends the change: a new commit owned by the same change id. With
        // `base_commit_oid` the amend only happens if the change still sits at that
        // commit (409 CONFLICT otherwise: re-read and retry). Writing a conflicted path
        // with `files` resolves it (mesa-server keeps conflicts as marker text, so this
        // is how they are resolved; `resolutions` are not supported and answer 501).
        v1.patch(":org/:repo/changes/:change") { req, ctx in
            await handle(req, ctx) { backend, call in
                let id = try Self.changeID(call.param("change"), field: "change_id")
                let body = try call.decode(RESTUpdateChange.self)
                if let resolutions = body.resolutions, !resolutions.isEmpty {
                    throw Self.notImplemented("'resolutions' on PATCH /{org}/{repo}/changes/{change_id} (rewrite the conflicted files with 'files' instead)")
                }
                if let oid = body.baseCommitOID, !Self.isCommitOID(oid) {
                    throw MesaError.invalid("'base_commit_oid' must be 40 lower-case hex characters, got '\(oid.prefix(50))'")
                }
                let files = try Self.operations(body.files)
                return RESTChange(try backend.updateChange(org: call.param("org"), repo: call.param("repo"), id: id,
                                                           message: body.message, author: body.author?.undated,
                                                           committer: body.committer?.undated, files: files,
                                                           expectedCommit: body.baseCommitOID))
            }
        }
    }

    static func operations(_ ops: [RESTFileOp]?) throws(MesaError) -> [FileOperation] {
        try (ops ?? []).map { (op: RESTFileOp) throws(MesaError) -> FileOperation in try op.operation() }
    }

    static func isCommitOID(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
