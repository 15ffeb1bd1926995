import Client
import Foundation
import MesaDaemon
import MesaProtocol
import Model
import RPC
@testable import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Scope enforcement with real processes: an admin daemon mints keys with mesa-client,
/// stops, and daemons started one after another on the same store act with those keys
/// (`MESA_ORGS`, `MESA_ORG`+`MESA_API_KEY`). The store belongs to one process at a time,
/// so the daemons run in turn, never together.
@Suite(.timeLimit(.minutes(5))) struct EndToEndScopeTests {
    @Test func keysFromTheEnvironmentAreEnforced() async throws {
        let sandbox = try Sandbox()
        func client(_ arguments: [String], _ environment: [String: String] = [:]) async throws -> Run {
            try await Run.run("mesa-client", arguments + ["--no-start"], sandbox: sandbox, environment: environment)
        }
        func secret(_ run: Run) -> String { run.stdout.trimmingCharacters(in: .whitespacesAndNewlines) }

        // 1. The bootstrapped admin creates repos and keys.
        var keys: [String: (id: String, secret: String)] = [:]
        do {
            let admin = try await DaemonProcess.start(sandbox)
            defer { admin.kill() }
            #expect(try await client(["create-repo", "alpha"]).code == 0)
            #expect(try await client(["create-repo", "beta"]).code == 0)
            for (name, arguments) in [("reader", ["--scopes", "read"]), ("scoped", ["--scopes", "read,write", "--repo", "alpha"]),
                                      ("doomed", ["--scopes", "read"]), ("stale", ["--scopes", "read"])] {
                let run = try await client(["create-ephemeral-key", "--name", name, "--json"] + arguments)
                #expect(run.code == 0, "\(run.stderr)")
                let json = try #require(run.json)
                keys[name] = (try #require((json["info"] as? [String: Any])?["id"] as? String), try #require(json["key"] as? String))
            }
            #expect(try await client(["revoke-key", try #require(keys["doomed"]).id]).code == 0)
            #expect(try await admin.stop() == 0)
        }
        // Expire "stale" (lifetimes start at 100 s; the test does not wait them out).
        do {
            let store = try Store(directory: sandbox.paths.storeDirectory)
            try expire(try #require(keys["stale"]).id, in: store)
        }

        // 2. A read-only key: reads work, createRepo is FORBIDDEN with errorClass bad-input.
        do {
            let reader = try #require(keys["reader"]).secret
            let daemon = try await DaemonProcess.start(sandbox, environment: ["MESA_ORGS": "local:\(reader)"])
            defer { daemon.kill() }
            let me = try await client(["whoami", "--json"])
            #expect(me.json?["scopes"] as? [String] == ["read"])
            #expect(me.json?["keyName"] as? String == "reader")
            let repos = try await client(["list-repos", "--json"])
            #expect(Set((repos.json?["repos"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }) == ["alpha", "beta"])
            let refused = try await client(["create-repo", "gamma"])
            #expect(refused.code == 1)
            #expect(refused.stderr.contains("[FORBIDDEN]"), "\(refused.stderr)")
            #expect(refused.stderr.contains("write"), "\(refused.stderr)")
            #expect(try await client(["list-keys"]).code == 1)
            // The wire error carries code, class and errno.
            let connection = try daemon.client()
            defer { connection.close() }
            do {
                _ = try await connection.call(CreateRepo.self, .init(name: "gamma"))
                Issue.record("createRepo succeeded with a read-only key")
            } catch .method(let error) {
                expectError(error, code: -32008, name: "FORBIDDEN", errorClass: "bad-input")
                #expect(error.errno == EACCES)
            } catch {
                Issue.record("unexpected \(error)")
            }
            #expect(try await daemon.stop() == 0)
        }

        // 3. A repo-scoped key through MESA_ORG + MESA_API_KEY: sees one repo.
        do {
            let scoped = try #require(keys["scoped"]).secret
            let daemon = try await DaemonProcess.start(sandbox, environment: ["MESA_ORG": "local", "MESA_API_KEY": scoped])
            defer { daemon.kill() }
            let repos = try await client(["list-repos", "--json"])
            #expect((repos.json?["repos"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["alpha"])
            #expect(try await client(["get-repo", "beta"]).code == 1)
            #expect(try await client(["get-repo", "alpha"]).code == 0)
            let create = try await client(["create-repo", "gamma"])
            #expect(create.code == 1)
            #expect(create.stderr.contains("FORBIDDEN"))
            #expect(try await daemon.stop() == 0)
        }

        // 4. Revoked and expired keys: mesad refuses to start, naming the org, without
        //    printing the secret; `mesad -d` reports the same and returns non-zero.
        for (name, word) in [("doomed", "revoked"), ("stale", "expired")] {
            let key = try #require(keys[name]).secret
            let run = try await Run.run("mesad", [], sandbox: sandbox, environment: ["MESA_ORGS": "local:\(key)"])
            #expect(run.code != 0)
            #expect(run.stderr.contains("organization 'local'"), "\(run.stderr)")
            #expect(run.stderr.contains(word), "\(run.stderr)")
            #expect(!run.stderr.contains(key), "the secret is not printed")
            defer { killRecordedDaemon(sandbox) }
            let detached = try await Run.run("mesad", ["-d"], sandbox: sandbox, environment: ["MESA_ORGS": "local:\(key)"])
            #expect(detached.code != 0)
            #expect(detached.stderr.contains(word), "\(detached.stderr)")
            #expect(!Daemonizer.answers(sandbox.socketPath))
        }

        // 5. First boot with -y in another home over the same store: the config written
        //    holds the environment's org and key, mode 0600.
        let other = try Sandbox()
        let reader = try #require(keys["reader"]).secret
        let daemon = try await DaemonProcess.start(other, arguments: ["-y"], environment: [
            "XDG_DATA_HOME": sandbox.home + "/.local/share", "MESA_ORGS": "local:\(reader)",
        ])
        defer { daemon.kill() }
        let written = other.home + "/.config/mesa/config.toml"
        #expect(fileMode(written) == 0o600)
        let config = try DaemonConfig.load(.init(environment: other.environment()))
        #expect(config.configFile == written)
        #expect(config.organizations.map(\.name) == ["local"])
        #expect(config.organizations.first?.apiKey == reader)
        #expect(try await daemon.stop() == 0)
    }
}
