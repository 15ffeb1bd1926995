import Foundation
import Hummingbird
import MesaAPI
import Model
import Store

extension APIServer {
    func addBookmarkRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        v1.get(":org/:repo/bookmarks") { req, ctx in
            await handle(req, ctx) { backend, call in
                let glob = call.query["glob"].flatMap { $0.isEmpty ? nil : $0 }
                return RESTBookmarkPage(try backend.listBookmarks(org: call.param("org"), repo: call.param("repo"), glob: glob,
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
        // Merges `source` into `target`. Textual conflicts without `allow_conflicted`
        // answer 409 MERGE_CONFLICT with `details.conflict_paths` and persist nothing;
        // with it, target moves to a merge commit holding conflict markers.
        // `resolutions` are not supported (501): resolve in the source bookmark and retry.
        v1.post(":org/:repo/bookmarks/merge") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTMergeRequest.self)
                if let resolutions = body.resolutions, !resolutions.isEmpty {
                    throw Self.notImplemented("'resolutions' on POST /{org}/{repo}/bookmarks/merge (resolve the conflicts in the source bookmark and merge again)")
                }
                return RESTMergeResult(try backend.mergeBookmark(org: call.param("org"), repo: call.param("repo"),
                                                                 target: body.target, source: body.source, message: body.message,
                                                                 allowConflicted: body.allowConflicted ?? false,
                                                                 deleteSource: body.deleteSource ?? false))
            }
        }
        v1.get(":org/:repo/bookmarks/:bookmark") { req, ctx in
            await handle(req, ctx) { backend, call in
                RESTBookmark(try backend.bookmark(org: call.param("org"), repo: call.param("repo"), name: call.param("bookmark")))
            }
        }
        // A move must go forward unless `allow_backwards`. A backward move without it is
        // 400 INVALID_ARGUMENT, not 409: the caller has to change the request, and 409
        // is reserved for races that a plain retry can win (a concurrent move).
        v1.patch(":org/:repo/bookmarks/:bookmark") { req, ctx in
            await handle(req, ctx) { backend, call in
                let body = try call.decode(RESTMoveBookmark.self)
                let id = try Self.changeID(body.changeID, field: "change_id")
                let expected = try body.expectedChangeID.map { try Self.changeID($0, field: "expected_change_id") }
                return RESTBookmark(try backend.moveBookmark(org: call.param("org"), repo: call.param("repo"),
                                                             name: call.param("bookmark"), to: id, expectedFrom: expected,
                                                             allowBackwards: body.allowBackwards ?? false))
            }
        }
        v1.delete(":org/:repo/bookmarks/:bookmark") { req, ctx in
            await handle(req, ctx) { backend, call in
                try backend.deleteBookmark(org: call.param("org"), repo: call.param("repo"), name: call.param("bookmark"))
                return RESTSuccess()
            }
        }
    }
}
