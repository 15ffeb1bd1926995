import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Mesa's `mesa show`, `mesa stats` and `mesa repo open|close` (issue 13, deliverable 6),
// run as a user runs them against a real daemon and real mounts.

extension E2E {
    @Suite(.timeLimit(.minutes(5)))
    struct CLIParity {
        /// Bytes no text diff can carry: every byte value, NULs included.
        static func binary(_ count: Int, seed: Int) -> Data { Data((0..<count).map { UInt8(truncatingIfNeeded: $0 * 7 + seed) }) }

        @Test("`mesa show --git` applies with `git apply` to the parent: text edit, new, deleted, renamed, binary, exec bit")
        func showGitPatchApplies() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "work"])
            let repo = home.repo("work")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })
            try await home.sh("""
                printf 'one\\ntwo\\nthree\\n' > edit.txt && printf 'doomed\\n' > doomed.txt && printf 'keep\\n' > old-name.txt
                printf '#!/bin/sh\\necho tool\\n' > tool.sh && mkdir -p sub && printf 'deep\\n' > sub/deep.txt
                """, in: repo)
            try Self.binary(3000, seed: 1).write(to: URL(fileURLWithPath: repo + "/blob.bin"))
            try await home.ok(["mesa", "checkpoint", "-m", "base"], in: repo)
            let base = try await home.call("show", ["path": repo, "rev": "main"])
            let baseCommit = try #require((base["change"] as? [String: Any])?["commitOid"] as? String)

            try await home.sh("""
                printf 'one\\nTWO\\nthree\\nfour' > edit.txt && rm doomed.txt && mv old-name.txt new-name.txt
                chmod +x tool.sh && printf 'fresh\\n' > sub/fresh.txt && printf '#!/bin/sh\\n' > run.sh && chmod +x run.sh
                """, in: repo)
            try Self.binary(5000, seed: 2).write(to: URL(fileURLWithPath: repo + "/blob.bin"))
            try Self.binary(700, seed: 3).write(to: URL(fileURLWithPath: repo + "/new.bin"))
            try await home.ok(["mesa", "checkpoint", "-m", "second\n\nwith a body"], in: repo)

            let show = try await home.ok(["mesa", "show", "main", "--git"], in: repo)
            #expect(show.contains("    second\n    \n    with a body"), "\(show.prefix(400))")
            for expected in ["new file mode 100644", "deleted file mode 100644", "old mode 100644\nnew mode 100755",
                             "rename from old-name.txt\nrename to new-name.txt", "new file mode 100755", "GIT binary patch",
                             "\\ No newline at end of file"] {
                #expect(show.contains(expected), "no `\(expected)` in the patch")
            }
            // Without --git the output is the same git patch (Mesa: --git changes nothing).
            #expect(try await home.ok(["mesa", "show", "main"], in: repo) == show)

            // A clone of the store at the parent, patched, is the new change exactly.
            let git = try await bareRepo(home, repo: "work")
            let copy = home.root + "/copy"
            try await home.ok(["/usr/bin/git", "clone", "-q", git, copy])
            try await home.ok(["/usr/bin/git", "-C", copy, "checkout", "-q", baseCommit])
            try write(home.root + "/change.patch", show)
            try await home.ok(["/usr/bin/git", "-C", copy, "apply", "--check", home.root + "/change.patch"])
            try await home.ok(["/usr/bin/git", "-C", copy, "apply", home.root + "/change.patch"])
            try await home.ok(["/usr/bin/git", "-C", copy, "add", "-A"])
            let left = try await home.run(["/usr/bin/git", "-C", copy, "diff", "--cached", "--stat", "--exit-code", "origin/main"])
            #expect(left.code == 0, "the patched parent differs from main: \(left.stdout)")
            #expect(try walk(copy) == walk(repo))

            // --name-only: the paths, no patch; --no-patch: the description only.
            let names = try await home.ok(["mesa", "show", "main", "--name-only"], in: repo)
            #expect(!names.contains("diff --git"))
            let listed = Set(names.split(separator: "\n").map(String.init))
            #expect(listed.isSuperset(of: ["edit.txt", "doomed.txt", "new-name.txt", "tool.sh", "sub/fresh.txt", "run.sh", "blob.bin", "new.bin"]),
                    "\(names)")
            let described = try await home.ok(["mesa", "show", "main", "--no-patch"], in: repo)
            #expect(described.contains("with a body") && !described.contains("diff --git") && !described.contains("edit.txt"), "\(described)")
            let both = try await home.run(["mesa", "show", "--name-only", "--no-patch"], in: repo)
            #expect(both.code == 2, "\(both)")

            // A revision that does not exist: a clear error, status 1, nothing on stdout.
            let bad = try await home.run(["mesa", "show", "no-such-bookmark"], in: repo)
            #expect(bad.code == 1, "\(bad)")
            #expect(bad.stdout.isEmpty && bad.stderr.contains("no-such-bookmark"), "\(bad)")
        }

        @Test("`mesa stats`: cache hits rise with reads, pending uploads with a write; --pid picks the daemon; none running is status 3")
        func statsFollowWhatTheUserDoes() async throws {
            let home = try Home()
            defer { home.close() }
            let offline = try await home.run(["mesa", "stats"])
            #expect(offline.code == 3, "\(offline)")
            #expect(home.noteDaemon() == nil, "`mesa stats` started a daemon")

            // Uploads wait for a minute of quiet, so a write stays pending until checkpoint.
            try FileManager.default.createDirectory(atPath: home.home + "/.config/mesa", withIntermediateDirectories: true)
            try write(home.home + "/.config/mesa/config.toml", "[daemon]\nflush-debounce-ms = 60000\n")
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "stats"])
            let repo = home.repo("stats")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })
            try write(repo + "/a.txt", "alpha\n")
            try await home.ok(["mesa", "checkpoint", "-m", "a"], in: repo)
            // A file written here is read from the mount's own data; after a restart,
            // reads go through the blob cache.
            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")
            let daemon = try await home.startDaemon(["--mount"])

            func stats() async throws -> [String: Any] {
                let output = try await home.run(["mesa", "stats", "--format", "json"])
                guard output.code == 0 else { throw TestFailure(output.description) }
                return output.object
            }
            func cache(_ stats: [String: Any]) -> (hits: Int, misses: Int) {
                let cache = stats["cache"] as? [String: Any] ?? [:]
                return (cache["hits"] as? Int ?? -1, cache["misses"] as? Int ?? -1)
            }
            let before = try await stats()
            #expect(before["pid"] as? Int == Int(daemon.pid))
            #expect(before["pendingUploads"] as? Int == 0)
            #expect(before["syncsInFlight"] as? Int == 0, "the embedded store runs no sync: \(before)")
            for _ in 0..<3 { #expect(read(repo + "/a.txt") == "alpha\n") }
            let afterReads = try await stats()
            // A repo of the tree is opened on first use, and listed from then on.
            let mounts = (afterReads["mounts"] as? [[String: Any]] ?? []).compactMap { $0["mountId"] as? String }
            #expect(mounts.contains("tree") && mounts.contains("local/stats"), "\(mounts)")
            // The first read may download (a miss); the next ones are served from the cache.
            #expect(cache(afterReads).hits >= cache(before).hits + 1, "reads did not count: \(cache(before)) → \(cache(afterReads))")
            #expect(cache(afterReads).misses <= cache(before).misses + 1, "\(cache(before)) → \(cache(afterReads))")

            try write(repo + "/b.txt", "beta\n")
            let afterWrite = try await stats()
            #expect(afterWrite["pendingUploads"] as? Int == 1, "\(afterWrite)")
            let table = try await home.ok(["mesa", "stats"])
            #expect(table.contains("pending uploads  1") && table.contains("cache hit rate") && table.contains("local/stats"), "\(table)")
            try await home.ok(["mesa", "checkpoint", "-m", "b"], in: repo)
            #expect(try await stats()["pendingUploads"] as? Int == 0)
            #expect(try await home.call("stats")["pid"] as? Int == Int(daemon.pid))
            #expect(try await home.ok(["mesa-client", "stats"]).contains("\"hitRate\""))

            // --pid / --pid-file name the daemon to ask; another one is refused.
            try await home.ok(["mesa", "stats", "--pid", "\(daemon.pid)"])
            try await home.ok(["mesa", "stats", "--pid-file", home.pidFile])
            let other = try await home.run(["mesa", "stats", "--pid", "1"])
            #expect(other.code == 3 && other.stderr.contains("pid 1"), "\(other)")
            #expect(try await home.run(["mesa", "stats", "--pid", "1", "--pid-file", home.pidFile]).code == 2)
            #expect(try await home.run(["mesa", "stats", "--format", "yaml"]).code == 2)
        }

        @Test("`mesa repo open|close` edit config.toml and show or hide the repo at once; refused in all mode, which changes nothing")
        func repoOpenAndCloseEditTheConfig() async throws {
            let home = try Home()
            defer { home.close() }
            let config = home.home + "/.config/mesa/config.toml"
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "docs"])
            try await home.ok(["mesa-client", "create-repo", "web"])

            // All mode (the first-boot config): both shown, open and close refused with the reason.
            let first = try #require(read(config))
            for verb in ["open", "close"] {
                let refused = try await home.run(["mesa", "repo", verb, "docs"])
                #expect(refused.code == 1 && refused.stderr.contains("mounts all repos") && refused.stderr.contains("explicit"), "\(refused)")
            }
            #expect(read(config) == first, "a refused open/close edited config.toml")
            let all = try await home.ok(["mesa", "repo", "list"])
            #expect(all.contains("docs") && all.contains("web") && all.contains("mounts all repos"), "\(all)")

            // Explicit mode: nothing is shown until opened.
            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")
            try write(config, first + "\n# my org\n[organizations.local]\nmount = \"explicit\" # only what I open\n")
            try await home.startDaemon(["--mount"])
            let orgDirectory = home.mountPoint + "/local"
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: orgDirectory)) ?? []).isEmpty)
            let none = try await home.ok(["mesa", "repo", "list", "--all"])
            #expect(none.contains("○") && !none.contains("●"), "\(none)")

            try await home.ok(["mesa", "repo", "open", "docs"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: orgDirectory) == ["docs"])
            let opened = try #require(read(config))
            #expect(opened.contains("[organizations.local.repos.docs]") && opened.contains("# only what I open"), "\(opened)")
            let listed = try await home.ok(["mesa", "repo", "list"])
            #expect(listed.contains("docs") && !listed.contains("web"), "\(listed)")
            let missing = try await home.run(["mesa", "repo", "open", "nope"])
            #expect(missing.code == 1 && missing.stderr.contains("nope"), "\(missing)")
            #expect(read(config) == opened)

            // Writes in a repo being closed are uploaded first; then it is gone from the tree and the file.
            try write(home.repo("docs") + "/readme.md", "docs\n")
            try await home.ok(["mesa", "repo", "close", "docs"])
            #expect(await eventually { ((try? FileManager.default.contentsOfDirectory(atPath: orgDirectory)) ?? ["?"]).isEmpty })
            let closed = try #require(read(config))
            #expect(!closed.contains("repos.docs") && closed.contains("mount = \"explicit\""), "\(closed)")
            let notOpen = try await home.run(["mesa", "repo", "close", "docs"])
            #expect(notOpen.code == 1 && notOpen.stderr.contains("not open"), "\(notOpen)")

            // What is open survives a restart through config.toml.
            try await home.ok(["mesa", "repo", "open", "web"])
            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")
            try await home.startDaemon(["--mount"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: orgDirectory) == ["web"])
            try await home.ok(["mesa", "repo", "open", "docs"])
            #expect(read(home.repo("docs") + "/readme.md") == "docs\n", "the write before close was lost")
        }
    }
}
