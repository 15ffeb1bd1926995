import Client
import Foundation
import MesaDaemon
import MesaProtocol
import Model
import RPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mesa-client` and `mesa` as a script sees them: exit statuses, JSON output, messages.
@Suite(.timeLimit(.minutes(3))) struct ClientTests {
    @Test func exitStatuses() async throws {
        let sandbox = try Sandbox()
        // 3: nothing answers, and --no-start forbids starting mesad.
        let unreachable = try await Run.run("mesa-client", ["whoami", "--no-start"], sandbox: sandbox)
        #expect(unreachable.code == 3)
        #expect(unreachable.stderr.contains("not running"), "\(unreachable.stderr)")
        #expect(!exists(sandbox.pidFile), "--no-start started nothing")
        // shutdown never starts a daemon either.
        #expect(try await Run.run("mesa-client", ["shutdown"], sandbox: sandbox).code == 3)
        #expect(!exists(sandbox.pidFile))

        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        // 0: success, readable text.
        let whoami = try await Run.run("mesa-client", ["whoami"], sandbox: sandbox)
        #expect(whoami.code == 0, "\(whoami.stderr)")
        #expect(whoami.stdout.contains("org local"), "\(whoami.stdout)")
        #expect(whoami.stdout.contains("scopes read,write,admin"), "\(whoami.stdout)")
        // 1: the method failed; the message and its symbolic code on stderr.
        let missing = try await Run.run("mesa-client", ["get-repo", "missing"], sandbox: sandbox)
        #expect(missing.code == 1)
        #expect(missing.stderr.contains("missing"), "\(missing.stderr)")
        #expect(missing.stderr.contains("[NOT_FOUND]"), "\(missing.stderr)")
        #expect(missing.stdout.isEmpty)
        // 2: usage errors never reach the daemon.
        for arguments in [["whoami", "--bogus"], ["get-repo"], ["create-ephemeral-key", "--expires-in", "soon"],
                          ["call", "listRepos", "{not json"], ["no-such-verb"]] {
            let usage = try await Run.run("mesa-client", arguments, sandbox: sandbox)
            #expect(usage.code == 2, "\(arguments): \(usage.code) \(usage.stderr)")
            #expect(!usage.stderr.isEmpty)
        }
        // --help is success.
        let help = try await Run.run("mesa-client", ["--help"], sandbox: sandbox)
        #expect(help.code == 0)
        #expect(help.stdout.contains("create-ephemeral-key"))
    }

    @Test func jsonOutputAndCall() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }

        let whoami = try await Run.run("mesa-client", ["whoami", "--json"], sandbox: sandbox)
        #expect(whoami.code == 0)
        let me = try #require(whoami.json, "not JSON: \(whoami.stdout)")
        #expect((me["org"] as? [String: Any])?["slug"] as? String == "local")
        #expect(me["backend"] as? String == "embedded")

        let created = try await Run.run("mesa-client", ["create-repo", "agent-workspace", "--json"], sandbox: sandbox)
        #expect(created.code == 0, "\(created.stderr)")
        let repo = try #require(created.json?["repo"] as? [String: Any])
        #expect(repo["name"] as? String == "agent-workspace")
        let repoID = try #require(repo["id"] as? String)

        let plain = try await Run.run("mesa-client", ["create-repo", "notes"], sandbox: sandbox)
        #expect(plain.stdout.contains("created local/notes"), "\(plain.stdout)")

        // call: any method, JSON params, JSON result.
        let call = try await Run.run("mesa-client", ["call", "listRepos", "{}"], sandbox: sandbox)
        #expect(call.code == 0, "\(call.stderr)")
        let repos = try #require(call.json?["repos"] as? [[String: Any]])
        #expect(Set(repos.compactMap { $0["name"] as? String }) == ["agent-workspace", "notes"])
        #expect(call.json?["hasMore"] as? Bool == false)
        let limited = try await Run.run("mesa-client", ["call", "listRepos", #"{"limit":1}"#], sandbox: sandbox)
        #expect((limited.json?["repos"] as? [Any])?.count == 1)
        #expect(limited.json?["hasMore"] as? Bool == true)
        // Default params are {}.
        #expect(try await Run.run("mesa-client", ["call", "listOrgs"], sandbox: sandbox).json?["orgs"] != nil)
        let callError = try await Run.run("mesa-client", ["call", "getRepo", #"{"repo":"nope"}"#], sandbox: sandbox)
        #expect(callError.code == 1)
        #expect(callError.stderr.contains("NOT_FOUND"))
        let unknown = try await Run.run("mesa-client", ["call", "noSuchMethod", "{}"], sandbox: sandbox)
        #expect(unknown.code == 1)
        #expect(unknown.stderr.contains("noSuchMethod"))

        // Keys: the plain output of create-ephemeral-key is the secret alone (for $(…)).
        let key = try await Run.run("mesa-client", ["create-ephemeral-key", "--scopes", "read", "--expires-in", "600",
                                              "--repo", "agent-workspace", "--name", "ci"], sandbox: sandbox)
        #expect(key.code == 0, "\(key.stderr)")
        let secret = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("mesa_") && !secret.contains(" "), "\(key.stdout)")
        let keys = try await Run.run("mesa-client", ["list-keys", "--json"], sandbox: sandbox)
        let listed = try #require(keys.json?["keys"] as? [[String: Any]])
        let ci = try #require(listed.first { $0["name"] as? String == "ci" })
        #expect(ci["scopes"] as? [String] == ["read"])
        #expect(ci["repoIds"] as? [String] == [repoID])
        #expect(!keys.stdout.contains(secret), "list-keys never shows a secret")
        let table = try await Run.run("mesa-client", ["list-keys"], sandbox: sandbox)
        #expect(table.stdout.contains("ID"))
        #expect(table.stdout.contains("ci"))
        let revoked = try await Run.run("mesa-client", ["revoke-key", try #require(ci["id"] as? String)], sandbox: sandbox)
        #expect(revoked.code == 0)
        let afterRevoke = try await Run.run("mesa-client", ["list-keys", "--status", "revoked", "--json"], sandbox: sandbox)
        #expect((afterRevoke.json?["keys"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["ci"])

        #expect(try await Run.run("mesa-client", ["delete-repo", "notes"], sandbox: sandbox).code == 0)
        #expect(try await Run.run("mesa-client", ["get-repo", "notes"], sandbox: sandbox).code == 1)
        #expect(try await Run.run("mesa-client", ["list-orgs"], sandbox: sandbox).stdout.contains("local"))

        let shutdown = try await Run.run("mesa-client", ["shutdown"], sandbox: sandbox)
        #expect(shutdown.code == 0)
        #expect(try await daemon.child.waitExitCode(timeout: .seconds(30)) == 0)
    }

    @Test func mesaCommand() async throws {
        let sandbox = try Sandbox()
        let offline = try await Run.run("mesa", ["status", "--no-start"], sandbox: sandbox)
        #expect(offline.code == 3, "\(offline.stderr)")
        let version = try await Run.run("mesa", ["version"], sandbox: sandbox)
        #expect(version.code == 0)
        #expect(version.stdout.contains("mesa 0.1.0"))
        #expect(!version.stdout.contains("mesad"), "no daemon runs, and `version` starts none")
        #expect(!exists(sandbox.pidFile))

        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        #expect(try await Run.run("mesa", ["version"], sandbox: sandbox).stdout.contains("mesad 0.1.0 (protocol 1)"))
        let status = try await Run.run("mesa", ["status", "--json"], sandbox: sandbox)
        #expect(status.code == 0, "\(status.stderr)")
        #expect(status.json?["socket"] as? String == sandbox.socketPath)
        #expect((status.json?["orgs"] as? [[String: Any]])?.first?["name"] as? String == "local")
        _ = try await Run.run("mesa-client", ["create-repo", "web"], sandbox: sandbox)
        let list = try await Run.run("mesa", ["repo", "list"], sandbox: sandbox)
        #expect(list.code == 0)
        #expect(list.stdout.contains("web"))
        #expect(list.stdout.contains("REPO"))
        let json = try await Run.run("mesa", ["repo", "list", "--all", "--json"], sandbox: sandbox)
        let repos = try #require((try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8))) as? [[String: Any]])
        #expect(repos.map { $0["name"] as? String } == ["web"])
        #expect(try await Run.run("mesa", ["repo", "frobnicate"], sandbox: sandbox).code == 2)
    }

    @Test func clientStartsTheDaemonWhenNoneRuns() async throws {
        let sandbox = try Sandbox()
        defer { killRecordedDaemon(sandbox) }
        let run = try await Run.run("mesa-client", ["whoami", "--json"], sandbox: sandbox)
        let started = recordedDaemon(sandbox)
        #expect(run.code == 0, "\(run.stderr)")
        #expect((run.json?["org"] as? [String: Any])?["slug"] as? String == "local")
        let daemon = try #require(started, "no daemon was started")
        #expect(daemon.isAlive)
        // It was started with -y: the first-boot config exists, private.
        #expect(fileMode(sandbox.home + "/.config/mesa/config.toml") == 0o600)
        // The next call reuses it.
        #expect(try await Run.run("mesa-client", ["list-orgs", "--no-start"], sandbox: sandbox).code == 0)
        #expect(try await Run.run("mesa-client", ["shutdown"], sandbox: sandbox).code == 0)
        #expect(await eventually(timeout: .seconds(30)) { !daemon.isAlive })
    }
}
