import Client
import Foundation
import MesaProtocol
import Testing

/// Deliverable 4 of issue 13 end to end in a real mesad with the tree mounted: a repo
/// created with `mesa-client create-repo --upstream`, pulled with `mesa-client sync run`,
/// shows the upstream's files through the mount; a checkpoint made through the mount,
/// pushed, is an ordinary commit in the upstream's `git log`.
@Suite(.serialized, .timeLimit(.minutes(3))) struct UpstreamMountTests {
    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// Runs git with a fixed identity and no user configuration; throws on failure.
    @discardableResult
    static func git(_ sandbox: Sandbox, _ arguments: [String]) async throws -> String {
        let run = try await Run.run("/usr/bin/git", arguments, sandbox: sandbox, environment: [
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"])
        guard run.code == 0 else { throw TestFailure("git \(arguments) failed: \(run.stderr)") }
        return run.stdout
    }

    @Test func pullShowsUpstreamFilesAndAPushedCheckpointIsAnOrdinaryCommit() async throws {
        let mesa = try await MountedDaemon.start(repos: [], debounceMilliseconds: 200)
        defer { mesa.cleanup() }
        let sandbox = mesa.sandbox
        let bare = sandbox.root + "/up.git", work = sandbox.root + "/up-work"
        try await Self.git(sandbox, ["init", "-q", "--bare", "-b", "main", bare])
        try await Self.git(sandbox, ["init", "-q", "-b", "main", work])
        try "from upstream\n".write(toFile: work + "/README", atomically: true, encoding: .utf8)
        try await Self.git(sandbox, ["-C", work, "add", "-A"])
        try await Self.git(sandbox, ["-C", work, "commit", "-q", "-m", "upstream commit"])
        try await Self.git(sandbox, ["-C", work, "push", "-q", bare, "main"])

        let created = try await Run.run("mesa-client", ["create-repo", "app", "--upstream", "file://" + bare],
                                        sandbox: sandbox, timeout: .seconds(30))
        #expect(created.code == 0, "\(created.stderr)")
        // A credential option names an environment variable; an unset one is a usage error.
        let unset = try await Run.run("mesa-client", ["create-repo", "other", "--upstream", bare, "--token-env", "MESA_TEST_UNSET"],
                                      sandbox: sandbox, timeout: .seconds(30))
        #expect(unset.code == 2 && unset.stderr.contains("MESA_TEST_UNSET"), "\(unset.stderr)")

        let pulled = try await Run.run("mesa-client", ["sync", "run", "app", "--direction", "pull", "--wait"],
                                       sandbox: sandbox, timeout: .seconds(60))
        #expect(pulled.code == 0 && pulled.stdout.contains("completed"), "\(pulled.stdout)\(pulled.stderr)")
        #expect(pulled.stdout.contains("updated") && pulled.stdout.contains("refs/heads/main"))

        let app = mesa.repoPath("app")
        #expect(await eventually(timeout: .seconds(15)) { Self.read(app + "/README") == "from upstream\n" },
                "the mount never showed the pulled file: \(Self.read(app + "/README") ?? "(absent)")")

        // The agent's work: written through the mount, checkpointed, pushed.
        try await offPool { try "agent\n".write(toFile: app + "/AGENT.md", atomically: false, encoding: .utf8) }
        let client = try mesa.client()
        defer { client.close() }
        _ = try await client.call(Checkpoint.self, .init(.path(app), .init(message: "agent work")))
        let pushed = try await Run.run("mesa-client", ["sync", "run", "app", "--direction", "push", "--wait"],
                                       sandbox: sandbox, timeout: .seconds(60))
        #expect(pushed.code == 0, "\(pushed.stdout)\(pushed.stderr)")
        #expect(try await Self.git(sandbox, ["-C", bare, "log", "--format=%s", "main"]) == "agent work\nupstream commit\n")
        #expect(try await Self.git(sandbox, ["-C", bare, "show", "main:AGENT.md"]) == "agent\n")
        let listed = try await Run.run("mesa-client", ["sync", "list", "app"], sandbox: sandbox, timeout: .seconds(30))
        #expect(listed.code == 0 && listed.stdout.components(separatedBy: "completed").count == 3, "\(listed.stdout)")
    }
}
