import Foundation
import Hummingbird
import MesaAPI
import Model
import NIOCore
import NIOPosix
import Store
import StoreBackend

/// mesa-server extensions (not in Mesa's API) for blobs of any size, streamed both ways
/// so neither the server nor the client holds a whole file: upload a raw body, get its
/// git object id, then reference it from a change (`blob_oid` in a file entry).
extension APIServer {
    /// Bytes per chunk of a streamed download.
    static let blobChunk = 1 << 18

    func addBlobRoutes(_ v1: RouterGroup<BasicRequestContext>) {
        // A blob's raw bytes by git oid, for clients that already know the oid from a
        // listing. Read scope; 400 for a malformed oid, 404 when the oid is not a blob
        // of this repo. Streamed with a Content-Length and `ETag: "<oid>"`.
        v1.get(":org/:repo/blobs/:sha") { req, ctx in
            let start = ContinuousClock.now
            let response = await Self.withKey(req, ctx) { await downloadBlob(req, $0) }
            logAccess(req, response, since: start)
            return response
        }
        // Stores the raw request body (any size, `Content-Length` required, any
        // Content-Type) as a blob and answers 201 `{"oid": "<sha>", "size": n}`. The key
        // and its write scope on the repo are checked from the headers before a byte
        // of the body is read; the body goes straight into the object database.
        v1.post(":org/:repo/blobs") { req, ctx in
            let start = ContinuousClock.now
            let response = await Self.withKey(req, ctx) { await uploadBlob(req, $0) }
            logAccess(req, response, since: start)
            return response
        }
    }

    /// The path of a blob route and the caller's key, read before any of the body.
    private struct BlobRequest {
        let secret: String
        let org: String
        let repo: String
        let parameters: [String: String]
    }

    /// Runs `body` for a request with a bearer key; answers the refusal for one without.
    private static func withKey(_ request: Request, _ context: BasicRequestContext,
                                _ body: (BlobRequest) async -> Response) async -> Response {
        switch bearer(request) {
        case .failure(let refusal):
            return envelope(refusal.status, refusal.code, refusal.message)
        case .success(let secret):
            let parameters = parameters(context)
            return await body(BlobRequest(secret: secret, org: parameters["org"] ?? "", repo: parameters["repo"] ?? "",
                                          parameters: parameters))
        }
    }

    private func uploadBlob(_ request: Request, _ blob: BlobRequest) async -> Response {
        let (secret, org, repo) = (blob.secret, blob.org, blob.repo)
        guard let text = request.headers[.contentLength], let size = Int(text), size >= 0 else {
            return Self.envelope(411, "LENGTH_REQUIRED",
                                 "a blob upload needs a Content-Length header (the size is part of the git object); chunked bodies are not accepted")
        }
        let store = self.store
        do {
            let writer = try await NIOThreadPool.singleton.runIfActive { () throws -> BlobWriter in
                try LocalBackend(store: store, secret: secret).blobWriter(org: org, repo: repo, size: size)
            }
            // Each chunk is hashed and deflated as it arrives; backpressure keeps at most
            // a few chunks in flight.
            for try await buffer in request.body {
                try buffer.withUnsafeReadableBytes { try writer.write($0) }
            }
            let oid = try await NIOThreadPool.singleton.runIfActive { try writer.finish() }
            return Self.json(RESTBlobCreated(oid: oid, size: size), status: .created)
        } catch {
            return render(error, request)
        }
    }

    private func downloadBlob(_ request: Request, _ blob: BlobRequest) async -> Response {
        let (secret, org, repo) = (blob.secret, blob.org, blob.repo)
        let given = blob.parameters["sha"] ?? ""
        let sha = given.lowercased()
        guard Self.isCommitOID(sha) else {
            return Self.error(.invalid("blob id must be 40 hex characters (a git object id), got '\(given.prefix(50))'"))
        }
        let store = self.store
        let reader: BlobReader
        do {
            reader = try await NIOThreadPool.singleton.runIfActive { () throws -> BlobReader in
                try LocalBackend(store: store, secret: secret).blobReader(org: org, repo: repo, oid: sha)
            }
        } catch {
            return render(error, request)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.eTag] = "\"\(sha)\""
        let body = ResponseBody(contentLength: reader.size) { writer in
            while true {
                var buffer = ByteBufferAllocator().buffer(capacity: Self.blobChunk)
                let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.blobChunk) { try reader.read(into: $0) }
                if count == 0 { break }
                try await writer.write(buffer)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

}
