import Foundation
import Hummingbird
import MesaAPI
import Model
import Store

extension APIServer {
    /// Directory listings default to this depth when `depth` is omitted (the reference
    /// leaves the default open): direct children only, like `ls`.
    static let defaultContentDepth = 1

    func addContentRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        // `change_id` (default: the change at the default bookmark; the virtual root is
        // allowed), `path` (default: the root), `depth` 0–10. `metadata[...]` filters
        // are accepted and ignored: mesa-server stores no per-path metadata. With
        // `Accept: application/octet-stream` a file or symlink answers its raw bytes with
        // `ETag: "<blob oid>"`; a directory answers 406.
        v1.get(":org/:repo/content") { req, ctx in
            await handle(req, ctx) { backend, call in
                var revision = Revision.head
                if let text = call.query["change_id"], !text.isEmpty {
                    revision = .change(try Self.changeID(text, field: "change_id"))
                }
                var path = call.query["path"] ?? ""
                if path.count > 1 && path.hasSuffix("/") { path.removeLast() }
                var depth = Self.defaultContentDepth
                if let text = call.query["depth"] {
                    guard let value = Int(text), (0...10).contains(value) else {
                        throw MesaError.invalid("'depth' must be an integer from 0 to 10, got '\(text.prefix(20))'")
                    }
                    depth = value
                }
                let raw = call.accepts("application/octet-stream")
                // List at least one level so `child_count` is known at depth 0 too.
                let content = try backend.content(org: call.param("org"), repo: call.param("repo"), at: revision,
                                                  path: path, depth: max(depth, 1))
                switch content {
                case .directory(let dirPath, let oid, let entries):
                    if raw {
                        throw HTTPRefusal(status: 406, code: "NOT_ACCEPTABLE",
                                          message: "'\(dirPath.isEmpty ? "/" : dirPath)' is a directory and has no raw bytes; ask for application/json to list it")
                    }
                    let direct = RESTContent(content).childCount
                    return depth == 0 ? RESTContent(.directory(path: dirPath, oid: oid, entries: []), childCount: direct)
                        : RESTContent(content)
                case .file(_, let bytes, _, let oid):
                    return raw ? RawReply(bytes: bytes, contentType: "application/octet-stream", etag: oid) : RESTContent(content)
                case .symlink(_, let target, let oid):
                    return raw ? RawReply(bytes: Array(target.utf8), contentType: "application/octet-stream", etag: oid)
                        : RESTContent(content)
                }
            }
        }

        addBlobRoutes(v1)

        // `conflicts=include|exclude|only`: mesa-server keeps conflicts as marker text
        // inside files, so they are ordinary entries; `conflicted_entries` is always
        // empty and `only` answers no entries. `Accept: text/plain` → a unified patch.
        v1.get(":org/:repo/diff") { req, ctx in
            await handle(req, ctx) { backend, call in
                let base = try Self.changeID(try call.required("base_change_id"), field: "base_change_id")
                let head = try Self.changeID(try call.required("head_change_id"), field: "head_change_id")
                let conflicts = call.query["conflicts"] ?? "include"
                guard ["include", "exclude", "only"].contains(conflicts) else {
                    throw MesaError.invalid("'conflicts' must be include, exclude or only, got '\(conflicts.prefix(20))'")
                }
                let org = call.param("org"), repo = call.param("repo")
                if call.accepts("text/plain") {
                    let patch = try backend.diffPatch(org: org, repo: repo, base: base, head: head)
                    return RawReply(bytes: conflicts == "only" ? [] : Array(patch.utf8), contentType: "text/plain; charset=utf-8")
                }
                return RESTDiff(try backend.diff(org: org, repo: repo, base: base, head: head), includeEntries: conflicts != "only")
            }
        }
    }
}
