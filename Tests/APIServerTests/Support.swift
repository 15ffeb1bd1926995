import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import NIOCore
import Store
import Testing

/// One HTTP answer as a client sees it.
struct Reply {
    let status: Int
    let body: Data
    let headers: HTTPFields

    var text: String { String(decoding: body, as: UTF8.self) }
    var bytes: [UInt8] { Array(body) }
    /// The error envelope's code, or "" when the body is not an envelope.
    var code: String { (try? decode(RESTErrorEnvelope.self, body).error.code) ?? "" }
    var envelope: RESTErrorEnvelope.Body? { try? decode(RESTErrorEnvelope.self, body).error }
    func json<T: Decodable>(_ type: T.Type) throws -> T { try decode(T.self, body) }
}

func send(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, key: String?,
          json: String? = nil, accept: String? = nil) async throws -> Reply {
    var headers = HTTPFields()
    if let key { headers[.authorization] = "Bearer \(key)" }
    if json != nil { headers[.contentType] = "application/json" }
    if let accept { headers[.accept] = accept }
    let response = try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    return Reply(status: Int(response.status.code), body: Data(response.body.readableBytesView), headers: response.headers)
}

/// Percent-encodes a query value (JSON filters, globs).
func q(_ value: String) -> String {
    value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value
}

extension Fixture {
    /// A repo with one change on the root, its default bookmark moved onto it.
    @discardableResult
    func seed(_ repo: String, files: [String: String], message: String = "seed") throws -> Change {
        if (try? store.repo(org: "acme", name: repo)) == nil { _ = try store.createRepo(org: "acme", name: repo) }
        let change = try store.createChange(org: "acme", repo: repo, base: .root, message: message,
                                            files: files.keys.sorted().map { .upsert(path: $0, content: Array(files[$0]!.utf8)) })
        _ = try store.moveBookmark(org: "acme", repo: repo, bookmark: "main", to: change.id)
        return change
    }

    func key(_ scopes: [Scope], repos: [String]? = nil, name: String = "k") throws -> String {
        try store.createAPIKey(org: "acme", name: name, scopes: scopes, repoIDs: repos).secret
    }

    func changeCount(_ repo: String) throws -> Int {
        try store.listChanges(org: "acme", repo: repo, limit: 100).items.count
    }
}

/// Walks a list endpoint page by page and returns every item's identity in order.
func walk<Page: Decodable>(_ client: any TestClientProtocol, _ uri: String, key: String, limit: Int, _ type: Page.Type,
                           items: (Page) -> [String], next: (Page) -> String?) async throws -> [String] {
    var collected: [String] = []
    var cursor: String?
    let separator = uri.contains("?") ? "&" : "?"
    for _ in 0..<1000 {
        var url = uri + separator + "limit=\(limit)"
        if let cursor { url += "&cursor=\(q(cursor))" }
        let reply = try await send(client, .get, url, key: key)
        #expect(reply.status == 200, "\(url): \(reply.text)")
        guard reply.status == 200 else { return collected }
        let page = try reply.json(Page.self)
        let got = items(page)
        #expect(got.count <= limit)
        collected += got
        guard let nextCursor = next(page) else { return collected }
        cursor = nextCursor
    }
    Issue.record("pagination of \(uri) did not end")
    return collected
}
