import Foundation
// @testable only to age a key in the metadata database (see `age(_:_:)`); every
// assertion goes through the public API.
import Model
@testable import Store
import Testing

@Suite struct KeyTests {
    /// Moves a key's expiry into the past, as if its lifetime had run out.
    func age(_ fx: Fixture, _ keyID: String) throws {
        _ = try fx.store.withDatabase { db in
            try db.query("UPDATE api_keys SET expires_at = ? WHERE id = ?",
                         [.double(Date().timeIntervalSince1970 - 1), .text(keyID)])
        }
    }

    // MARK: Create

    @Test func createdKeyHasAMesaSecretAndDefaultScopes() throws {
        let fx = try Fixture()
        let created = try fx.store.createAPIKey(org: fx.org, name: "ci")
        #expect(created.secret.hasPrefix("mesa_"))
        let random = created.secret.dropFirst(5)
        #expect(random.count == 64)
        #expect(random.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
        #expect(created.key.scopes == [.read, .write])
        #expect(created.key.repoIDs == nil)
        #expect(created.key.expiresAt == nil)
        #expect(created.key.name == "ci")
        #expect(created.key.org == fx.org)
        #expect(created.key.status() == .active)
        #expect(try fx.store.apiKey(org: fx.org, id: created.key.id) == created.key)
        let other = try fx.store.createAPIKey(org: fx.org)
        #expect(other.secret != created.secret)
        #expect(other.key.id != created.key.id)
    }

    @Test func keyScopesAreDeduplicatedAndSorted() throws {
        let fx = try Fixture()
        let key = try fx.store.createAPIKey(org: fx.org, scopes: [.admin, .read, .admin]).key
        #expect(key.scopes == [.read, .admin])
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, scopes: []) }
        expectStoreError(.invalidArgument) { try Scope.parse("owner") }
        #expect(try Scope.parse("write") == .write)
    }

    @Test func keyExpiryMustBeBetween100SecondsAndOneYear() throws {
        let fx = try Fixture()
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, expiresInSeconds: 99) }
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, expiresInSeconds: 31_536_001) }
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, expiresInSeconds: 0) }
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, expiresInSeconds: -100) }
        #expect(try fx.store.listAPIKeys(org: fx.org).items.isEmpty)

        let short = try fx.store.createAPIKey(org: fx.org, expiresInSeconds: 100).key
        let expiry = try #require(short.expiresAt)
        #expect(abs(expiry.timeIntervalSince(short.createdAt) - 100) < 0.01)
        #expect(short.status() == .active)
        let long = try fx.store.createAPIKey(org: fx.org, expiresInSeconds: 31_536_000).key
        #expect(abs(try #require(long.expiresAt).timeIntervalSince(long.createdAt) - 31_536_000) < 0.01)
    }

    @Test func keyCanBeScopedToReposOfItsOrg() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo("one")
        let key = try fx.store.createAPIKey(org: fx.org, repoIDs: [repo.id, repo.id]).key
        #expect(key.repoIDs == [repo.id])
        expectStoreError(.notFound) { try fx.store.createAPIKey(org: fx.org, repoIDs: ["repo_nonexistent"]) }
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, repoIDs: []) }
        _ = try fx.store.createOrg(slug: "beta")
        let foreign = try fx.store.createRepo(org: "beta", name: "theirs")
        expectStoreError(.notFound) { try fx.store.createAPIKey(org: fx.org, repoIDs: [foreign.id]) }
        expectStoreError(.notFound) { try fx.store.createAPIKey(org: "nobody") }
        #expect(try fx.store.listAPIKeys(org: fx.org).items.count == 1)
    }

    @Test func keyNameAndTagsAreValidated() throws {
        let fx = try Fixture()
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, name: String(repeating: "n", count: 201)) }
        expectStoreError(.invalidArgument) { try fx.store.createAPIKey(org: fx.org, tags: ["$x": "y"]) }
        let key = try fx.store.createAPIKey(org: fx.org, tags: ["Team": "Infra"]).key
        #expect(key.tags == ["team": "Infra"], "tag keys are lower-cased")
    }

    // MARK: List, revoke, tags

    @Test func listNeverExposesTheSecret() throws {
        let fx = try Fixture()
        let created = try fx.store.createAPIKey(org: fx.org, name: "deploy")
        let page = try fx.store.listAPIKeys(org: fx.org)
        #expect(page.items.map(\.id) == [created.key.id])
        let rendered = String(reflecting: page.items) + String(describing: page.items)
        let random = String(created.secret.dropFirst(5))
        #expect(!rendered.contains(random), "a listing must not carry the secret")
        #expect(!String(reflecting: try fx.store.apiKey(org: fx.org, id: created.key.id)).contains(random))
    }

    @Test func listIsNewestFirstPaginatedAndFilteredByStatus() throws {
        let fx = try Fixture()
        let active = try fx.store.createAPIKey(org: fx.org, name: "active").key
        let revoked = try fx.store.createAPIKey(org: fx.org, name: "revoked").key
        let expired = try fx.store.createAPIKey(org: fx.org, name: "expired", expiresInSeconds: 100).key
        try fx.store.revokeAPIKey(org: fx.org, id: revoked.id)
        try age(fx, expired.id)

        #expect(try fx.store.listAPIKeys(org: fx.org).items.map(\.id) == [expired.id, revoked.id, active.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, status: .active).items.map(\.id) == [active.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, status: .revoked).items.map(\.id) == [revoked.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, status: .expired).items.map(\.id) == [expired.id])

        let first = try fx.store.listAPIKeys(org: fx.org, limit: 2)
        #expect(first.items.map(\.id) == [expired.id, revoked.id])
        let second = try fx.store.listAPIKeys(org: fx.org, cursor: first.nextCursor, limit: 2)
        #expect(second.items.map(\.id) == [active.id])
        #expect(second.nextCursor == nil)
        expectStoreError(.invalidArgument) { try fx.store.listAPIKeys(org: fx.org, limit: 0) }
        expectStoreError(.invalidArgument) { try fx.store.listAPIKeys(org: fx.org, cursor: "junk!") }
    }

    @Test func revokedKeyIsRefusedWithKeyRevoked() throws {
        let fx = try Fixture()
        let created = try fx.store.createAPIKey(org: fx.org, name: "temp")
        _ = try fx.store.authenticate(secret: created.secret)
        try fx.store.revokeAPIKey(org: fx.org, id: created.key.id)
        expectStoreError(.keyRevoked) { try fx.store.authenticate(secret: created.secret) }
        let key = try fx.store.apiKey(org: fx.org, id: created.key.id)
        #expect(key.revokedAt != nil)
        #expect(key.status() == .revoked)
        // Revoking again is harmless and keeps the first revocation time.
        try fx.store.revokeAPIKey(org: fx.org, id: created.key.id)
        #expect(try fx.store.apiKey(org: fx.org, id: created.key.id).revokedAt == key.revokedAt)
        expectStoreError(.notFound) { try fx.store.revokeAPIKey(org: fx.org, id: "key_missing") }
        _ = try fx.store.createOrg(slug: "beta")
        expectStoreError(.notFound) { try fx.store.revokeAPIKey(org: "beta", id: created.key.id) }
    }

    @Test func keyTagsArePatchedAndNilRemovesATag() throws {
        let fx = try Fixture()
        let key = try fx.store.createAPIKey(org: fx.org, tags: ["team": "infra", "env": "prod"]).key
        let tags = try fx.store.updateAPIKeyTags(org: fx.org, id: key.id, tags: ["env": nil, "Owner": "ada", "team": "core"])
        #expect(tags == ["team": "core", "owner": "ada"])
        #expect(try fx.store.apiKey(org: fx.org, id: key.id).tags == ["team": "core", "owner": "ada"])
        expectStoreError(.invalidArgument) { try fx.store.updateAPIKeyTags(org: fx.org, id: key.id, tags: ["$bad": "x"]) }
        #expect(try fx.store.apiKey(org: fx.org, id: key.id).tags == ["team": "core", "owner": "ada"])
        expectStoreError(.notFound) { try fx.store.updateAPIKeyTags(org: fx.org, id: "key_missing", tags: ["a": "b"]) }
    }

    // MARK: Authenticate

    @Test func authenticateReturnsOrgScopesAndRepoScope() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo()
        let created = try fx.store.createAPIKey(org: fx.org, name: "bot", scopes: [.read], repoIDs: [repo.id])
        let principal = try fx.store.authenticate(secret: created.secret)
        #expect(principal.org.slug == fx.org)
        #expect(principal.org == (try fx.store.org(fx.org)))
        #expect(principal.keyID == created.key.id)
        #expect(principal.keyName == "bot")
        #expect(principal.scopes == [.read])
        #expect(principal.repoIDs == [repo.id])
        #expect(try fx.store.apiKey(org: fx.org, id: created.key.id).lastUsedAt != nil, "use is recorded")
    }

    @Test func unknownSecretsAreUnauthenticated() throws {
        let fx = try Fixture()
        let created = try fx.store.createAPIKey(org: fx.org)
        var tampered = Array(created.secret)
        tampered[tampered.count - 1] = tampered.last == "0" ? "1" : "0"
        for secret in ["", "garbage", "mesa_", "mesa_" + String(repeating: "0", count: 64), String(tampered),
                       created.secret.uppercased(), " " + created.secret, created.secret + "\n"] {
            expectStoreError(.unauthenticated) { try fx.store.authenticate(secret: secret) }
        }
        _ = try fx.store.authenticate(secret: created.secret)
    }

    @Test func expiredKeyIsRefusedWithKeyExpired() throws {
        let fx = try Fixture()
        let created = try fx.store.createAPIKey(org: fx.org, expiresInSeconds: 100)
        _ = try fx.store.authenticate(secret: created.secret)
        try age(fx, created.key.id)
        expectStoreError(.keyExpired) { try fx.store.authenticate(secret: created.secret) }
        #expect(try fx.store.apiKey(org: fx.org, id: created.key.id).status() == .expired)
    }

    // MARK: Authorize

    func principal(_ fx: Fixture, scopes: [Scope], repoIDs: [String]? = nil) throws -> Principal {
        try fx.store.authenticate(secret: fx.store.createAPIKey(org: fx.org, scopes: scopes, repoIDs: repoIDs).secret)
    }

    @Test func authorizeFollowsTheScopeHierarchy() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo()
        let read = try principal(fx, scopes: [.read])
        let write = try principal(fx, scopes: [.write])
        let admin = try principal(fx, scopes: [.admin])
        // (principal, action, allowed?)
        let matrix: [(Principal, Action, Bool)] = [
            (read, .read, true), (read, .write, false), (read, .createRepo, false), (read, .admin, false),
            (write, .read, true), (write, .write, true), (write, .createRepo, true), (write, .admin, false),
            (admin, .read, true), (admin, .write, true), (admin, .createRepo, true), (admin, .admin, true),
        ]
        for (who, action, allowed) in matrix {
            if allowed {
                #expect(throws: Never.self, "\(who.scopes) should be allowed \(action)") {
                    try fx.store.authorize(who, action, org: fx.org, repoID: action == .createRepo ? nil : repo.id)
                }
            } else {
                expectStoreError(.forbidden) {
                    try fx.store.authorize(who, action, org: fx.org, repoID: action == .createRepo ? nil : repo.id)
                }
            }
        }
    }

    @Test func repoScopedKeySeesOnlyItsReposAndCannotCreateRepos() throws {
        let fx = try Fixture()
        let mine = try fx.makeRepo("mine")
        let other = try fx.makeRepo("other")
        let scoped = try principal(fx, scopes: [.write], repoIDs: [mine.id])
        try fx.store.authorize(scoped, .read, org: fx.org, repoID: mine.id)
        try fx.store.authorize(scoped, .write, org: fx.org, repoID: mine.id)
        expectStoreError(.notFound) { try fx.store.authorize(scoped, .read, org: fx.org, repoID: other.id) }
        expectStoreError(.notFound) { try fx.store.authorize(scoped, .write, org: fx.org, repoID: other.id) }
        expectStoreError(.forbidden) { try fx.store.authorize(scoped, .createRepo, org: fx.org) }
        let scopedAdmin = try principal(fx, scopes: [.admin], repoIDs: [mine.id])
        expectStoreError(.forbidden) { try fx.store.authorize(scopedAdmin, .createRepo, org: fx.org) }
        // Key management is org-wide: a repo-scoped admin key cannot list or revoke keys.
        expectStoreError(.forbidden) { try fx.store.authorize(scopedAdmin, .admin, org: fx.org) }
    }

    @Test func keyOfAnotherOrgGetsNotFound() throws {
        let fx = try Fixture()
        _ = try fx.store.createOrg(slug: "beta")
        let theirs = try fx.store.createRepo(org: "beta", name: "theirs")
        let admin = try principal(fx, scopes: [.admin])
        expectStoreError(.notFound) { try fx.store.authorize(admin, .read, org: "beta") }
        expectStoreError(.notFound) { try fx.store.authorize(admin, .read, org: "beta", repoID: theirs.id) }
        expectStoreError(.notFound) { try fx.store.authorize(admin, .createRepo, org: "beta") }
    }

    @Test func creatorCannotMintAKeyWithMoreThanItHolds() throws {
        let fx = try Fixture()
        let one = try fx.makeRepo("one")
        let two = try fx.makeRepo("two")
        let writer = try principal(fx, scopes: [.write])
        expectStoreError(.forbidden) { try fx.store.createAPIKey(org: fx.org, scopes: [.admin], creator: writer) }
        #expect(try fx.store.createAPIKey(org: fx.org, scopes: [.read], creator: writer).key.scopes == [.read])

        let scoped = try principal(fx, scopes: [.admin], repoIDs: [one.id])
        expectStoreError(.forbidden) { try fx.store.createAPIKey(org: fx.org, creator: scoped) }
        expectStoreError(.forbidden) { try fx.store.createAPIKey(org: fx.org, repoIDs: [one.id, two.id], creator: scoped) }
        expectStoreError(.forbidden) { try fx.store.createAPIKey(org: fx.org, repoIDs: [two.id], creator: scoped) }
        let narrow = try fx.store.createAPIKey(org: fx.org, repoIDs: [one.id], creator: scoped).key
        #expect(narrow.repoIDs == [one.id])
        // writer, scoped, and the two keys they were allowed to make.
        #expect(try fx.store.listAPIKeys(org: fx.org).items.count == 4)
    }

    @Test func creatorFromAnotherOrgCannotMintKeys() throws {
        let fx = try Fixture()
        _ = try fx.store.createOrg(slug: "beta")
        let outsider = try fx.store.authenticate(secret: fx.store.createAPIKey(org: "beta", scopes: [.admin]).secret)
        let error = expectStoreError(.notFound) { try fx.store.createAPIKey(org: fx.org, scopes: [.read], creator: outsider) }
        _ = error
        #expect(try fx.store.listAPIKeys(org: fx.org).items.isEmpty)
    }
}
