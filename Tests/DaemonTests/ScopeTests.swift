import Foundation
import MesaAPI
@testable import MesaDaemon
import MesaProtocol
import Model
import RPC
@testable import Store
import StoreBackend
import Testing

/// Every method enforces the scopes of the key the daemon acts with: a daemon acting with
/// a read-only, repo-scoped, revoked or expired key, over the same store as an admin one
/// (in process: the store is locked by one process at a time).
@Suite(.timeLimit(.minutes(2))) struct ScopeTests {
    /// An admin daemon with two repos, and a way to get daemons acting with other keys.
    struct World {
        let admin: InProcessDaemon
        let store: Store
        let alpha: Repo
        let beta: Repo

        init() async throws {
            admin = try InProcessDaemon()
            store = try #require(admin.store)
            alpha = try await admin.call(CreateRepo.self, .init(name: "alpha")).repo
            beta = try await admin.call(CreateRepo.self, .init(name: "beta")).repo
        }

        func key(_ scopes: [String], repos: [String]? = nil, name: String = "test") async throws -> CreateEphemeralKey.Result {
            try await admin.call(CreateEphemeralKey.self, .init(name: name, scopes: scopes, expiresInSeconds: 3600, repos: repos))
        }

        /// A daemon acting for org `local` with `secret`, checked as mesad checks keys.
        func daemon(actingWith secret: String) throws -> InProcessDaemon {
            let backend = try LocalBackend(store: store, secret: secret)
            let orgs = OrgBackends(backends: ["local": backend], orgs: [OrgConfig(name: "local", apiKey: secret)], store: store,
                                   secrets: ["local": secret])
            return try InProcessDaemon(sandbox: admin.sandbox, orgs: orgs)
        }
    }

    @Test func readOnlyKeyReadsButCannotWrite() async throws {
        let world = try await World()
        let reader = try world.daemon(actingWith: try await world.key(["read"], name: "reader").key)
        let me = try await reader.call(Whoami.self, .init())
        #expect(me.scopes == ["read"])
        #expect(me.keyName == "reader")
        #expect(Set(try await reader.call(ListRepos.self, .init()).repos.map(\.name)) == ["alpha", "beta"])
        #expect(try await reader.call(GetRepo.self, .init(repo: "alpha")).repo.id == world.alpha.id)

        let refused = await reader.failure(CreateRepo.self, .init(name: "gamma"))
        expectError(refused, code: -32008, name: "FORBIDDEN", mentions: ["reader", "write"])
        #expect(refused?.errno == EACCES)
        expectError(await reader.failure(DeleteRepo.self, .init(repo: "alpha")), code: -32008, name: "FORBIDDEN")
        expectError(await reader.failure(CreateEphemeralKey.self, .init(scopes: ["read"])), code: -32008, name: "FORBIDDEN",
                    mentions: ["admin"])
        expectError(await reader.failure(ListKeys.self, .init()), code: -32008, name: "FORBIDDEN")
        expectError(await reader.failure(RevokeKey.self, .init(id: me.keyId ?? "")), code: -32008, name: "FORBIDDEN")
        // Nothing changed.
        #expect(Set(try await world.admin.call(ListRepos.self, .init()).repos.map(\.name)) == ["alpha", "beta"])
        #expect(try await world.admin.call(ListKeys.self, .init(.init(status: "revoked"))).keys.isEmpty)
    }

    @Test func writeKeyWritesButIsNoAdminAndCannotDeleteRepos() async throws {
        let world = try await World()
        let writer = try world.daemon(actingWith: try await world.key(["read", "write"]).key)
        #expect(try await writer.call(CreateRepo.self, .init(name: "gamma")).repo.name == "gamma")
        // Deleting destroys history: it needs admin, not the read+write of a sandbox key.
        expectError(await writer.failure(DeleteRepo.self, .init(repo: "gamma")), code: -32008, name: "FORBIDDEN", mentions: ["admin"])
        #expect(try await writer.call(GetRepo.self, .init(repo: "gamma")).repo.name == "gamma")
        #expect(try await world.admin.call(DeleteRepo.self, .init(repo: "gamma")).ok)
        expectError(await writer.failure(ListKeys.self, .init()), code: -32008, name: "FORBIDDEN", mentions: ["admin"])
        expectError(await writer.failure(CreateEphemeralKey.self, .init()), code: -32008, name: "FORBIDDEN")
    }

    @Test func repoScopedKeySeesOnlyItsRepo() async throws {
        let world = try await World()
        let created = try await world.key(["read", "write"], repos: ["alpha"], name: "scoped")
        let scoped = try world.daemon(actingWith: created.key)
        #expect(try await scoped.call(Whoami.self, .init()).repoIds == [world.alpha.id])
        let listed = try await scoped.call(ListRepos.self, .init())
        #expect(listed.repos.map(\.name) == ["alpha"])
        #expect(listed.hasMore == false)
        #expect(try await scoped.call(GetRepo.self, .init(repo: "alpha")).repo.id == world.alpha.id)
        // Repos outside the scope look missing, so their names do not leak.
        expectError(await scoped.failure(GetRepo.self, .init(repo: "beta")), code: -32001, name: "NOT_FOUND")
        expectError(await scoped.failure(DeleteRepo.self, .init(repo: "beta")), code: -32001, name: "NOT_FOUND")
        expectError(await scoped.failure(CreateRepo.self, .init(name: "gamma")), code: -32008, name: "FORBIDDEN",
                    mentions: ["scoped to specific repos"])
        #expect(try await world.admin.call(GetRepo.self, .init(repo: "beta")).repo.id == world.beta.id)
    }

    @Test func aKeyCannotMintAStrongerKey() async throws {
        let world = try await World()
        let scopedAdmin = try world.daemon(actingWith: try await world.key(["read", "write", "admin"], repos: ["alpha"]).key)
        // Narrower: fine.
        let narrower = try await scopedAdmin.call(CreateEphemeralKey.self, .init(scopes: ["read"], repos: ["alpha"]))
        #expect(narrower.info.repoIds == [world.alpha.id])
        // Outside its repos, or org-wide: refused.
        expectError(await scopedAdmin.failure(CreateEphemeralKey.self, .init(scopes: ["read"], repos: ["beta"])),
                    code: -32001, name: "NOT_FOUND")
        expectError(await scopedAdmin.failure(CreateEphemeralKey.self, .init(scopes: ["read"])), code: -32008, name: "FORBIDDEN")
    }

    @Test func revokedKeyIsRefusedNamingTheOrg() async throws {
        let world = try await World()
        let created = try await world.key(["read"], name: "doomed")
        #expect(try await world.admin.call(RevokeKey.self, .init(id: created.info.id)).ok)
        // As mesad's start-up does for a key from MESA_ORGS or config.toml.
        let error = #expect(throws: MesaError.self) { try LocalBackend(store: world.store, secret: created.key) }
        #expect(error?.code == .keyRevoked)
        #expect(error?.message.contains("org 'local'") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("doomed") == true)
        #expect(error?.responseError.data?["errorClass"]?.stringValue == "bad-input")
        #expect(error?.responseError.code.rawValue == -32007)
    }

    @Test func expiredKeyIsRefusedNamingTheOrg() async throws {
        let world = try await World()
        let created = try await world.key(["read"], name: "stale")
        try expire(created.info.id, in: world.store)
        let listed = try await world.admin.call(ListKeys.self, .init(.init(status: "expired"))).keys
        #expect(listed.map(\.id) == [created.info.id])
        let error = #expect(throws: MesaError.self) { try LocalBackend(store: world.store, secret: created.key) }
        #expect(error?.code == .keyExpired)
        #expect(error?.message.contains("org 'local'") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("expired") == true)
        #expect(error?.responseError.data?["errorClass"]?.stringValue == "bad-input")
    }

    @Test func unknownKeyIsRefused() throws {
        let daemon = try InProcessDaemon()
        let store = try #require(daemon.store)
        let error = #expect(throws: MesaError.self) {
            try LocalBackend(store: store, secret: "mesa_" + String(repeating: "0", count: 64))
        }
        #expect(error?.code == .unauthenticated)
    }

    /// A key revoked or expiring while the daemon acts with it stops working at once:
    /// the daemon does not keep serving with a credential the store no longer accepts.
    @Test func keyRevokedWhileInUseIsRefusedOnTheNextRequest() async throws {
        let world = try await World()
        let created = try await world.key(["read"], name: "live")
        let reader = try world.daemon(actingWith: created.key)
        #expect(try await reader.call(ListRepos.self, .init()).repos.count == 2)
        #expect(try await world.admin.call(RevokeKey.self, .init(id: created.info.id)).ok)
        expectError(await reader.failure(ListRepos.self, .init()), code: -32007, name: "KEY_REVOKED",
                    mentions: ["org 'local'", "revoked"])
        expectError(await reader.failure(Whoami.self, .init()), code: -32007, name: "KEY_REVOKED")
    }

    /// The same through the daemon's own start-up path (CredentialResolver).
    @Test func theDaemonsOwnKeyRevokedWhileRunning() async throws {
        let daemon = try InProcessDaemon()
        let store = try #require(daemon.store)
        let me = try await daemon.call(Whoami.self, .init())
        try store.revokeAPIKey(org: "local", id: try #require(me.keyId))
        expectError(await daemon.failure(ListRepos.self, .init()), code: -32007, name: "KEY_REVOKED",
                    mentions: ["org 'local'", "mesad-local-admin"])
        expectError(await daemon.failure(CreateRepo.self, .init(name: "late")), code: -32007, name: "KEY_REVOKED")
        #expect(throws: MesaError.self) { try store.repo(org: "local", name: "late") }
    }

    @Test func keyExpiringWhileInUseIsRefusedOnTheNextRequest() async throws {
        let world = try await World()
        let created = try await world.key(["read"], name: "short")
        let reader = try world.daemon(actingWith: created.key)
        #expect(try await reader.call(GetRepo.self, .init(repo: "alpha")).repo.name == "alpha")
        try expire(created.info.id, in: world.store)
        expectError(await reader.failure(GetRepo.self, .init(repo: "alpha")), code: -32006, name: "KEY_EXPIRED",
                    mentions: ["org 'local'", "expired"])
    }
}

/// Moves a key's expiry into the past (the store refuses lifetimes under 100 s, and a
/// test should not wait that long).
func expire(_ keyID: String, in store: Store) throws {
    try store.withDatabase { db in
        try db.query("UPDATE api_keys SET expires_at = ? WHERE id = ?",
                     [.double(Date().timeIntervalSince1970 - 10), .text(keyID)])
    }
}
