import Foundation
@testable import MesaDaemon
import MesaProtocol
import Model
import RPC
import Store
import Testing

/// Every method's success and error paths, in process: a Daemon over a fresh embedded
/// store, called through a real JSON-RPC connection (a socketpair).
@Suite(.timeLimit(.minutes(2))) struct MethodTests {
    @Test func whoamiOfTheBootstrappedAdminKey() async throws {
        let daemon = try InProcessDaemon()
        let me = try await daemon.call(Whoami.self, .init())
        #expect(me.org.slug == "local")
        #expect(me.org.id.hasPrefix("org_"))
        #expect(me.keyName == "mesad-local-admin")
        #expect(me.keyId?.hasPrefix("key_") == true)
        #expect(Set(me.scopes) == ["read", "write", "admin"])
        #expect(me.repoIds == nil)
        #expect(me.backend == "embedded")
        // The same with the org named.
        #expect(try await daemon.call(Whoami.self, .init(org: "local")).keyId == me.keyId)
    }

    @Test func bootstrapKeyIsSavedPrivately() async throws {
        let daemon = try InProcessDaemon()
        let secrets = daemon.daemon.config.paths.secretsFile
        #expect(fileMode(secrets) == 0o600)
        let stored = try SecretsFile(path: secrets).keys()
        let key = try #require(stored["local"])
        #expect(key.hasPrefix("mesa_"))
        // The saved key is the one the daemon acts with.
        let store = try #require(daemon.store)
        #expect(try store.authenticate(secret: key).keyID == (try await daemon.call(Whoami.self, .init()).keyId))
        // The store is locked while the daemon lives: a second one is refused clearly.
        #expect {
            try CredentialResolver.embedded(daemon.daemon.config, logger: quietLogger)
        } throws: { error in
            (error as? ConfigError)?.message.contains("cannot open the embedded store") == true
        }
    }

    @Test func bootstrapReusesTheSavedKey() throws {
        let sandbox = try Sandbox()
        let paths = sandbox.paths
        let store = try Store(directory: paths.storeDirectory)
        let secrets = SecretsFile(path: paths.secretsFile)
        let first = try CredentialResolver.bootstrapLocal(store: store, secrets: secrets, logger: quietLogger)
        let second = try CredentialResolver.bootstrapLocal(store: store, secrets: secrets, logger: quietLogger)
        #expect(first == second)
        #expect(try store.listAPIKeys(org: "local").items.count == 1)
        // A saved key that no longer works (revoked) is replaced by a new admin key.
        let principal = try store.authenticate(secret: first)
        try store.revokeAPIKey(org: "local", id: principal.keyID)
        let third = try CredentialResolver.bootstrapLocal(store: store, secrets: secrets, logger: quietLogger)
        #expect(third != first)
        #expect(try secrets.keys()["local"] == third)
        #expect(try store.authenticate(secret: third).has(.admin))
    }

    @Test func unknownOrgIsNotFoundAndNamesTheConfiguredOnes() async throws {
        let daemon = try InProcessDaemon()
        let error = await daemon.failure(Whoami.self, .init(org: "acme"))
        expectError(error, code: -32001, name: "NOT_FOUND", mentions: ["'acme'", "local"])
        #expect(error?.errno == ENOENT)
    }

    @Test func listOrgs() async throws {
        let daemon = try InProcessDaemon()
        let orgs = try await daemon.call(ListOrgs.self, .init()).orgs
        #expect(orgs.count == 1)
        #expect(orgs.first?.name == "local")
        #expect(orgs.first?.mount == "all")
        #expect(orgs.first?.backend == "embedded")
    }

    @Test func createGetListDeleteRepo() async throws {
        let daemon = try InProcessDaemon()
        #expect(try await daemon.call(ListRepos.self, .init()).repos.isEmpty)

        let created = try await daemon.call(CreateRepo.self, .init(name: "agent-workspace")).repo
        #expect(created.name == "agent-workspace")
        #expect(created.org == "local")
        #expect(created.id.hasPrefix("repo_"))
        #expect(created.defaultBookmark == "main")
        #expect(created.headChangeID.rawValue == String(repeating: "z", count: 32))
        let other = try await daemon.call(CreateRepo.self, .init(org: "local", name: "notes", defaultBookmark: "trunk")).repo
        #expect(other.defaultBookmark == "trunk")

        #expect(try await daemon.call(GetRepo.self, .init(repo: "agent-workspace")).repo == created)
        let listed = try await daemon.call(ListRepos.self, .init())
        #expect(Set(listed.repos.map(\.name)) == ["agent-workspace", "notes"])
        #expect(listed.hasMore == false)
        #expect(listed.nextCursor == nil)

        // Pagination: one per page, the cursor leads to the other.
        let page1 = try await daemon.call(ListRepos.self, .init(.init(), .init(limit: 1)))
        #expect(page1.repos.count == 1)
        #expect(page1.hasMore)
        let cursor = try #require(page1.nextCursor)
        let page2 = try await daemon.call(ListRepos.self, .init(.init(), .init(cursor: cursor, limit: 1)))
        #expect(page2.repos.count == 1)
        #expect(Set((page1.repos + page2.repos).map(\.name)) == ["agent-workspace", "notes"])

        #expect(try await daemon.call(DeleteRepo.self, .init(repo: "notes")).ok)
        expectError(await daemon.failure(GetRepo.self, .init(repo: "notes")), code: -32001, name: "NOT_FOUND", mentions: ["notes"])
        #expect(try await daemon.call(ListRepos.self, .init()).repos.map(\.name) == ["agent-workspace"])
    }

    @Test func repoErrors() async throws {
        let daemon = try InProcessDaemon()
        _ = try await daemon.call(CreateRepo.self, .init(name: "taken"))
        expectError(await daemon.failure(CreateRepo.self, .init(name: "taken")), code: -32002, name: "ALREADY_EXISTS",
                    mentions: ["taken"])
        for bad in ["..", "has space", "x.git", "repos", String(repeating: "a", count: 101), "", "a/b"] {
            let error = await daemon.failure(CreateRepo.self, .init(name: bad))
            expectError(error, code: -32602, name: "INVALID_ARGUMENT")
            #expect(error?.errno == EINVAL)
        }
        expectError(await daemon.failure(GetRepo.self, .init(repo: "missing")), code: -32001, name: "NOT_FOUND")
        expectError(await daemon.failure(DeleteRepo.self, .init(repo: "missing")), code: -32001, name: "NOT_FOUND")
        expectError(await daemon.failure(ListRepos.self, .init(.init(), .init(limit: 0))), code: -32602, name: "INVALID_ARGUMENT")
        expectError(await daemon.failure(ListRepos.self, .init(.init(), .init(limit: 101))), code: -32602, name: "INVALID_ARGUMENT")
        expectError(await daemon.failure(ListRepos.self, .init(.init(), .init(cursor: "not-a-cursor"))), code: -32602, name: "INVALID_ARGUMENT")
        // Nothing was created by the refused requests.
        #expect(try await daemon.call(ListRepos.self, .init()).repos.map(\.name) == ["taken"])
    }

    @Test func createEphemeralKeyListAndRevoke() async throws {
        let daemon = try InProcessDaemon()
        let repo = try await daemon.call(CreateRepo.self, .init(name: "agent-workspace")).repo
        let before = Date()
        let created = try await daemon.call(CreateEphemeralKey.self, .init(name: "sandbox", scopes: ["read", "write"],
                                                                           expiresInSeconds: 600, repos: ["agent-workspace"]))
        #expect(created.key.hasPrefix("mesa_"))
        #expect(created.key.count == 5 + 64, "mesa_ + 256 bits in hex")
        #expect(created.info.name == "sandbox")
        #expect(created.info.scopes == ["read", "write"])
        #expect(created.info.repoIds == [repo.id])
        #expect(created.info.status == "active")
        let expires = try #require(created.info.expiresAt.flatMap { ISO8601DateFormatter.withFractions.date(from: $0) })
        #expect(abs(expires.timeIntervalSince(before) - 600) < 60)

        // Defaults: read+write, one hour, org-wide; repos by id work too.
        let defaults = try await daemon.call(CreateEphemeralKey.self, .init()).info
        #expect(defaults.scopes == ["read", "write"])
        #expect(defaults.repoIds == nil)
        let defaultExpiry = try #require(defaults.expiresAt.flatMap { ISO8601DateFormatter.withFractions.date(from: $0) })
        #expect(abs(defaultExpiry.timeIntervalSince(before) - 3600) < 60)
        let byID = try await daemon.call(CreateEphemeralKey.self, .init(repos: [repo.id])).info
        #expect(byID.repoIds == [repo.id])

        // Listed (newest first), never with a secret.
        let listed = try await daemon.call(ListKeys.self, .init())
        #expect(listed.keys.count == 4)
        #expect(listed.keys.first?.id == byID.id)
        let wire = String(decoding: try EncodedJSON(encoding: listed).bytes, as: UTF8.self)
        #expect(!wire.contains("mesa_"), "no secret in listKeys")

        #expect(try await daemon.call(RevokeKey.self, .init(id: created.info.id)).ok)
        let revoked = try await daemon.call(ListKeys.self, .init(.init(status: "revoked"))).keys
        #expect(revoked.map(\.id) == [created.info.id])
        #expect(revoked.first?.revokedAt != nil)
        let active = try await daemon.call(ListKeys.self, .init(.init(status: "active"))).keys
        #expect(active.count == 3)
        #expect(try await daemon.call(ListKeys.self, .init(.init(status: "expired"))).keys.isEmpty)
    }

    @Test func keyErrors() async throws {
        let daemon = try InProcessDaemon()
        expectError(await daemon.failure(CreateEphemeralKey.self, .init(scopes: ["read", "superuser"])),
                    code: -32602, name: "INVALID_ARGUMENT", mentions: ["superuser"])
        expectError(await daemon.failure(CreateEphemeralKey.self, .init(scopes: [])), code: -32602, name: "INVALID_ARGUMENT")
        for seconds in [99, 0, -1, 31_536_001] {
            expectError(await daemon.failure(CreateEphemeralKey.self, .init(expiresInSeconds: seconds)),
                        code: -32602, name: "INVALID_ARGUMENT", mentions: ["\(seconds)"])
        }
        _ = try await daemon.call(CreateEphemeralKey.self, .init(expiresInSeconds: 100))
        _ = try await daemon.call(CreateEphemeralKey.self, .init(expiresInSeconds: 31_536_000))
        expectError(await daemon.failure(CreateEphemeralKey.self, .init(repos: ["no-such-repo"])),
                    code: -32001, name: "NOT_FOUND", mentions: ["no-such-repo"])
        expectError(await daemon.failure(CreateEphemeralKey.self, .init(repos: ["repo_0000000000000000deadbeef"])),
                    code: -32001, name: "NOT_FOUND")
        expectError(await daemon.failure(ListKeys.self, .init(.init(status: "sleepy"))), code: -32602, name: "INVALID_ARGUMENT",
                    mentions: ["sleepy"])
        expectError(await daemon.failure(RevokeKey.self, .init(id: "key_missing")), code: -32001, name: "NOT_FOUND",
                    mentions: ["key_missing"])
        // Only the admin key and the two valid ones exist.
        #expect(try await daemon.call(ListKeys.self, .init()).keys.count == 3)
    }

    // MARK: Generic JSON-RPC errors through the daemon

    /// Params that embed the shared selector and paging are one flat object on the wire,
    /// both ways, and a bad field is named as it was when every method spelled them out.
    @Test func sharedSelectorAndPagingStayFlatOnTheWire() async throws {
        let params = ListChanges.Params(.repo("demo", org: "local"), .init(.init(bookmark: "main"), .init(cursor: "c1", limit: 5)))
        #expect(try JSONValue(encoding: params) == ["org": "local", "repo": "demo", "bookmark": "main", "cursor": "c1", "limit": 5])
        let decoded = try (["path": "/m/a", "limit": 2, "bookmark": "b"] as JSONValue).decode(ListChanges.Params.self)
        #expect(decoded.selector.mount.path == "/m/a" && decoded.limit == 2 && decoded.bookmark == "b" && decoded.cursor == nil)
        let result = ListBookmarks.Result(.init(bookmarks: []), .init(nextCursor: "n", hasMore: true))
        #expect(try JSONValue(encoding: result) == ["bookmarks": [], "nextCursor": "n", "hasMore": true])
        #expect(try JSONValue(encoding: Checkpoint.Params(.id("local/demo"))) == ["mountId": "local/demo"])

        let daemon = try InProcessDaemon()
        for (method, params, message) in [
            ("createBookmark", ["org": "local", "repo": "demo"], "invalid params for 'createBookmark': required field 'params.name' is missing"),
            ("listChanges", ["repo": "demo", "limit": "ten"], "invalid params for 'listChanges': field 'params.limit' must be an integer"),
            ("checkpoint", ["mountId": 7, "message": "m"], "invalid params for 'checkpoint': field 'params.mountId' must be a string"),
            ("moveBookmark", ["mountId": "m", "name": "main"], "invalid params for 'moveBookmark': required field 'params.changeId' is missing"),
        ] as [(String, JSONValue, String)] {
            do {
                _ = try await daemon.raw(method, params)
                Issue.record("\(method) \(params) succeeded")
            } catch let error as ResponseError {
                #expect(error.code == .invalidParams)
                #expect(error.message.hasPrefix(message), "\(error.message)")
            }
        }
    }

    @Test func wrongParameterTypesNameTheField() async throws {
        let daemon = try InProcessDaemon()
        do {
            _ = try await daemon.raw("createRepo", ["name": 5])
            Issue.record("createRepo with a numeric name succeeded")
        } catch let error as ResponseError {
            expectError(error, code: -32602, mentions: ["params.name", "string"])
            #expect(error.data?["field"]?.stringValue == "params.name")
        }
        do {
            _ = try await daemon.raw("getRepo", [:])
            Issue.record("getRepo without repo succeeded")
        } catch let error as ResponseError {
            expectError(error, code: -32602, mentions: ["params.repo", "missing"])
        }
        do {
            _ = try await daemon.raw("createEphemeralKey", ["expiresInSeconds": "soon"])
            Issue.record("a string lifetime was accepted")
        } catch let error as ResponseError {
            expectError(error, code: -32602, mentions: ["expiresInSeconds"])
        }
        #expect(try await daemon.call(ListRepos.self, .init()).repos.isEmpty)
    }

    @Test func unknownMethod() async throws {
        let daemon = try InProcessDaemon()
        do {
            _ = try await daemon.raw("mountEverything", nil)
            Issue.record("unknown method succeeded")
        } catch let error as ResponseError {
            expectError(error, code: -32601, mentions: ["mountEverything"])
        }
    }

    @Test func methodsWithoutParamsAcceptEmptyOrNothing() async throws {
        let daemon = try InProcessDaemon()
        for params: JSONValue? in [nil, [:]] {
            let result = try await daemon.raw("listOrgs", params)
            #expect(result["orgs"]?.arrayValue?.count == 1)
        }
    }

    @Test func manyOrgsNeedTheOrgParameter() async throws {
        // Two orgs in one store, each with an admin key, handed over with MESA_ORGS.
        let sandbox = try Sandbox()
        let (localKey, acmeKey) = try {
            let store = try Store(directory: sandbox.paths.storeDirectory)
            _ = try store.createOrg(slug: "local", name: "Local")
            _ = try store.createOrg(slug: "acme", name: "Acme")
            return (try store.createAPIKey(org: "local", scopes: [.read, .write, .admin]).secret,
                    try store.createAPIKey(org: "acme", scopes: [.read, .write, .admin]).secret)
        }()
        let daemon = try InProcessDaemon(sandbox: sandbox, environment: ["MESA_ORGS": "local:\(localKey),acme:\(acmeKey)"])
        let both = daemon
        expectError(await both.failure(Whoami.self, .init()), code: -32602, name: "INVALID_ARGUMENT",
                    mentions: ["more than one organization", "acme", "local"])
        #expect(try await both.call(Whoami.self, .init(org: "acme")).org.slug == "acme")
        #expect(try await both.call(Whoami.self, .init(org: "local")).org.slug == "local")
        _ = try await both.call(CreateRepo.self, .init(org: "acme", name: "web"))
        #expect(try await both.call(ListRepos.self, .init(.init(org: "acme"))).repos.map(\.name) == ["web"])
        #expect(try await both.call(ListRepos.self, .init(.init(org: "local"))).repos.isEmpty)
        #expect(Set(try await both.call(ListOrgs.self, .init()).orgs.map(\.name)) == ["local", "acme"])
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withFractions: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
}
