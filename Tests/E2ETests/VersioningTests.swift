import Client
import Foundation
import MesaProtocol
import RPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every end-to-end test runs the real executables against real FUSE mounts, one at a
/// time (they compete for two cores and for /dev/fuse with the other test targets).
@Suite("End to end: mesad, mesa and mesa-client on real mounts", .serialized,
       .enabled(if: canMount, "needs root, /dev/fuse and fusermount3"))
struct E2E {}

/// The id in `mesa checkpoint`'s "saved <id>; main moved onto it".
func savedID(_ output: String) -> String? {
    output.split(separator: " ").dropFirst().first.map { String($0.prefix(32)) }
}

extension E2E {
    @Suite(.timeLimit(.minutes(5)))
    struct Versioning {
        @Test("`mesa mount -d -y` returns once the repo answers; a repo created later appears without a restart")
        func mountReturnsOnceTheRepoAnswers() async throws {
            let home = try Home()
            defer { home.close() }
            // A repo with content, made through a first daemon, which is then stopped.
            try await home.startDaemon(["--mount"])
            try await home.ok(["mesa-client", "create-repo", "demo"])
            let demo = home.repo("demo")
            #expect(await eventually { FileManager.default.fileExists(atPath: demo) })
            try write(demo + "/hello.txt", "hello\n")
            try await home.ok(["mesa", "checkpoint", "-m", "hello"], in: demo)
            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")
            #expect(home.mounts.isEmpty, "a stopped daemon left mounts: \(home.mounts)")

            // Nothing runs: `mesa mount -d -y` starts mesad. When it returns, the repo
            // answers at once (no polling here).
            let mounted = try await home.run(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            #expect(mounted.code == 0, "\(mounted)")
            #expect(mounted.stdout.contains(home.mountPoint), "\(mounted)")
            #expect(read(demo + "/hello.txt") == "hello\n")
            #expect(home.isMounted(home.mountPoint))
            #expect(FileManager.default.fileExists(atPath: home.home + "/.config/mesa/config.toml"), "-y wrote no first-boot config")
            let daemon = try home.daemon()

            // A repo created now shows up in the next listing, and takes writes.
            try await home.ok(["mesa-client", "create-repo", "later"])
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: home.mountPoint + "/local")) == ["demo", "later"])
            try write(home.repo("later") + "/x.txt", "x\n")
            let saved = try await home.ok(["mesa", "checkpoint", "-m", "later"], in: home.repo("later"))
            #expect(saved.contains("main moved onto it"), "\(saved)")
            #expect(try await storeTree(home, repo: "later", rev: "main") == ["x.txt": .file("x\n")])
            #expect(try home.daemon() == daemon, "the daemon was restarted")

            // `mesa status` names both mounted repos; `mesa unmount` unmounts the tree;
            // `mesa mount -d` with the daemon running mounts it again before returning.
            let status = try await home.ok(["mesa", "status"])
            #expect(status.contains("local/demo at \(demo) (rw)") && status.contains("local/later"), "\(status)")
            try await home.ok(["mesa", "unmount"])
            #expect(!home.isMounted(home.mountPoint))
            #expect(!FileManager.default.fileExists(atPath: demo))
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(60))
            #expect(read(demo + "/hello.txt") == "hello\n")
            #expect(read(home.repo("later") + "/x.txt") == "x\n")
        }

        @Test("write, edit, rename, delete, mkdir, symlink and chmod +x become one change with exactly the expected tree")
        func editsBecomeAChangeWithTheExpectedTree() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "work"])
            let repo = home.repo("work")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })
            try await home.sh("""
                printf 'keep\\n' > keep.txt && printf 'one\\n' > edit.txt && printf 'old\\n' > old-name.txt
                printf 'doomed\\n' > doomed.txt && printf '#!/bin/sh\\necho tool\\n' > tool.sh
                mkdir -p dir/inner && printf 'nested\\n' > dir/inner/nested.txt
                """, in: repo)
            let base = try #require(savedID(try await home.ok(["mesa", "checkpoint", "-m", "base"], in: repo)))
            #expect(try await storeTree(home, repo: "work", rev: "main") == [
                "keep.txt": .file("keep\n"), "edit.txt": .file("one\n"), "old-name.txt": .file("old\n"),
                "doomed.txt": .file("doomed\n"), "tool.sh": .file("#!/bin/sh\necho tool\n"), "dir/inner/nested.txt": .file("nested\n"),
            ])

            try await home.sh("""
                printf 'new\\n' > new.txt
                printf 'two\\n' >> edit.txt
                mkdir moved && mv old-name.txt moved/renamed.txt
                rm doomed.txt
                mkdir -p made/deeper && printf 'deep\\n' > made/deeper/file.txt
                mkdir empty-dir
                ln -s edit.txt link
                chmod +x tool.sh
                mv dir dir2
                """, in: repo)
            let expected: [String: Entry] = [
                "keep.txt": .file("keep\n"), "edit.txt": .file("one\ntwo\n"), "new.txt": .file("new\n"),
                "moved/renamed.txt": .file("old\n"), "tool.sh": .file("#!/bin/sh\necho tool\n", executable: true),
                "made/deeper/file.txt": .file("deep\n"), "link": .symlink("edit.txt"), "dir2/inner/nested.txt": .file("nested\n"),
            ]
            #expect(try walk(repo) == expected)
            // Extended attributes are not versioned: reading or setting one is "not supported".
            let xattrs = try await home.ok(["python3", "-c", """
                import os
                for call in (lambda: os.getxattr("keep.txt", "user.note"), lambda: os.setxattr("keep.txt", "user.note", b"x")):
                    try: call(); print("ok")
                    except OSError as e: print(e.errno)
                """], in: repo)
            #expect(xattrs == "\(EOPNOTSUPP)\n\(EOPNOTSUPP)\n")

            // Before any checkpoint, the edits are one working change on top of main.
            let shown = try await home.call("show", ["path": repo])
            let change = try #require(shown["change"] as? [String: Any])
            let working = try #require(change["id"] as? String)
            #expect(working != base)
            #expect(change["parents"] as? [String] == [base])
            #expect(Set(change["files"] as? [String] ?? []) == [
                "new.txt", "edit.txt", "old-name.txt", "moved/renamed.txt", "doomed.txt", "made/deeper/file.txt", "link",
                "tool.sh", "dir/inner/nested.txt", "dir2/inner/nested.txt",
            ])
            let entries = ((shown["diff"] as? [String: Any])?["entries"] as? [[String: Any]]) ?? []
            let summary = Set(entries.map { "\($0["status"] ?? "?") \($0["oldPath"].map { "\($0) -> " } ?? "")\($0["path"] ?? "?")" })
            #expect(summary == [
                "added new.txt", "modified edit.txt", "renamed old-name.txt -> moved/renamed.txt", "deleted doomed.txt",
                "added made/deeper/file.txt", "added link", "modified tool.sh", "renamed dir/inner/nested.txt -> dir2/inner/nested.txt",
            ])
            let diff = try await home.ok(["mesa-client", "diff"], in: repo)
            #expect(diff.contains("D doomed.txt") && diff.contains("A new.txt"), "\(diff)")
            let bookmarks = try await home.call("listBookmarks", ["repo": "work"])
            #expect((bookmarks["bookmarks"] as? [[String: Any]])?.first?["changeId"] as? String == base, "main moved before a checkpoint")

            // The checkpoint saves that same change; the store's git tree is exactly what
            // the mount shows (the empty directory is not versioned).
            let saved = try await home.ok(["mesa", "checkpoint", "-m", "edits"], in: repo)
            #expect(savedID(saved) == working, "\(saved)")
            #expect(try await storeTree(home, repo: "work", rev: "main") == expected)
            #expect(FileManager.default.fileExists(atPath: repo + "/empty-dir"))

            // And a plain `git clone` of the store's repository has the same files.
            let clone = home.root + "/clone"
            try await home.ok(["/usr/bin/git", "clone", "-q", try await bareRepo(home, repo: "work"), clone])
            #expect(try walk(clone) == expected)
            try await home.ok(["/usr/bin/git", "-C", clone, "fsck", "--strict"])
        }

        @Test("checkpoint moves main; a bookmark moved underneath gives a transient CONFLICT and loses nothing")
        func checkpointAndABookmarkMovedUnderneath() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "race"])
            let repo = home.repo("race")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })

            try write(repo + "/a.txt", "a\n")
            let one = try #require(savedID(try await home.ok(["mesa", "checkpoint", "-m", "one"], in: repo)))
            try write(repo + "/b.txt", "b\n")
            let two = try #require(savedID(try await home.ok(["mesa", "checkpoint", "-m", "two"], in: repo)))
            let log = try await home.ok(["mesa", "log"], in: repo).split(separator: "\n").map(String.init)
            #expect(log.count == 4 && log[0].hasPrefix(two.prefix(12)) && log[1].contains("two")
                    && log[2].hasPrefix(one.prefix(12)) && log[3].contains("one"), "\(log)")
            #expect(try await mainChange(home, "race") == two)

            // Work in progress, then someone else moves main back underneath the mount.
            try write(repo + "/c.txt", "c\n")
            try await home.ok(["mesa-client", "move-bookmark", "--org", "local", "--repo", "race", "main", one, "--allow-backwards"])
            let refused = try await home.run(["mesa", "checkpoint", "-m", "three"], in: repo)
            #expect(refused.code == 1, "\(refused)")
            #expect(refused.stderr.contains("[CONFLICT]") && refused.stderr.contains("moved by someone else")
                    && refused.stderr.contains("nothing is lost"), "\(refused)")
            // Retryable, as the error class says.
            let client = try MesaClient.connect(paths: Paths(environment: home.environment()), autostart: false)
            defer { client.close() }
            switch await checkpointOutcome(client, path: repo, message: "three") {
            case .success:
                Issue.record("checkpoint succeeded over a moved bookmark")
            case .failure(.method(let error)):
                #expect(error.errorClass == .transient, "\(error)")
                #expect(error.data?["code"]?.stringValue == "CONFLICT", "\(error)")
            case .failure(let other):
                Issue.record("checkpoint failed without an answer: \(other)")
            }
            #expect(try await mainChange(home, "race") == one, "the failed checkpoint moved main")

            // Nothing is lost: the mount still shows the work, and the working change
            // holds it in the store.
            #expect(try walk(repo) == ["a.txt": .file("a\n"), "b.txt": .file("b\n"), "c.txt": .file("c\n")])
            let status = try await home.call("status", ["path": repo])
            let working = try #require((status["mounts"] as? [[String: Any]])?.first?["workingChangeId"] as? String)
            #expect(try await storeTree(home, repo: "race", rev: try await commit(home, "race", working))
                    == ["a.txt": .file("a\n"), "b.txt": .file("b\n"), "c.txt": .file("c\n")])

            // Doing what the message says (move the bookmark onto the work), then
            // checkpointing again, succeeds.
            try await home.ok(["mesa-client", "move-bookmark", "--org", "local", "--repo", "race", "main", working])
            let retried = try await home.run(["mesa", "checkpoint", "-m", "three"], in: repo)
            #expect(retried.code == 0, "\(retried)")
            #expect(try await mainChange(home, "race") == working)
            try write(repo + "/d.txt", "d\n")
            let four = try await home.run(["mesa", "checkpoint", "-m", "four"], in: repo)
            #expect(four.code == 0, "\(four)")
            #expect(try await storeTree(home, repo: "race", rev: "main").keys.sorted() == ["a.txt", "b.txt", "c.txt", "d.txt"])
        }

        @Test("`mesa new`, `mesa edit` and `mesa show` run with the working directory inside the mount")
        func newEditAndShowFromInsideTheMount() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "jj"])
            let repo = home.repo("jj")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })
            let sub = repo + "/sub"
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
            try write(sub + "/s.txt", "s\n")
            let base = try #require(savedID(try await home.ok(["mesa", "checkpoint", "-m", "base"], in: sub)))

            #expect(try await home.ok(["mesa", "new"], in: sub).contains("on top of \(base)"))
            try write(repo + "/x.txt", "x\n")
            let first = try await home.ok(["mesa", "show"], in: sub)
            let firstID = try #require(first.split(separator: "\n").first?.split(separator: " ").last.map(String.init))
            #expect(firstID != base)
            // The patch is git's (issue 13): a new file says so in git's own header.
            #expect(first.contains("diff --git a/x.txt b/x.txt\nnew file mode 100644\n") && first.contains("\n+x\n"), "\(first)")
            #expect(try await home.ok(["mesa", "new"], in: sub).contains("on top of \(firstID)"))
            try write(repo + "/y.txt", "y\n")
            #expect(try await home.ok(["mesa", "show", "--name-only"], in: sub).hasSuffix("\ny.txt\n"))
            let second = try await home.call("show", ["path": sub])
            #expect((second["change"] as? [String: Any])?["parents"] as? [String] == [firstID])
            // main did not move: `mesa log` (main's history) and `mesa show main`.
            let log = try await home.ok(["mesa", "log"], in: sub)
            #expect(log.split(separator: "\n").count == 2 && log.hasPrefix(String(base.prefix(12))), "\(log)")
            #expect(try await home.ok(["mesa", "show", "main", "--name-only"], in: sub).hasSuffix("\nsub/s.txt\n"))

            // Back to main: the uncommitted changes leave the view (they stay in the store).
            let edited = try await home.ok(["mesa", "edit", "main"], in: sub)
            #expect(edited.contains("now on bookmark main, change \(base)"), "\(edited)")
            #expect(try walk(repo) == ["sub/s.txt": .file("s\n")])
            // Editing the first change in place: writes amend it.
            #expect(try await home.ok(["mesa", "edit", firstID], in: sub).contains(firstID))
            #expect(try walk(repo) == ["sub/s.txt": .file("s\n"), "x.txt": .file("x\n")])
            try write(repo + "/z.txt", "z\n")
            let amended = try await home.call("show", ["path": repo])
            #expect((amended["change"] as? [String: Any])?["id"] as? String == firstID)
            #expect(Set((amended["change"] as? [String: Any])?["files"] as? [String] ?? []) == ["x.txt", "z.txt"])
            #expect(try await storeTree(home, repo: "jj", rev: try await commit(home, "jj", firstID)).keys.sorted()
                    == ["sub/s.txt", "x.txt", "z.txt"])
        }

        @Test("after `mesa edit` and a daemon restart the mount shows the same tree (the old view's journal is not replayed)")
        func editThenRestartKeepsTheView() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "views"])
            let repo = home.repo("views")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })
            try write(repo + "/a.txt", "a\n")
            try write(repo + "/b.txt", "b\n")
            try await home.ok(["mesa", "checkpoint", "-m", "one"], in: repo)
            try await home.ok(["mesa-client", "create-bookmark", "side"], in: repo)
            // Work on main that side does not have: a deletion, a new file, an empty dir.
            try await home.sh("rm a.txt && echo only-main > main.txt && mkdir scratch", in: repo)
            _ = try await home.call("show", ["path": repo])  // uploaded into a working change
            try await home.ok(["mesa", "edit", "side"], in: repo)
            let side: [String: Entry] = ["a.txt": .file("a\n"), "b.txt": .file("b\n")]
            #expect(try walk(repo) == side)
            #expect(!FileManager.default.fileExists(atPath: repo + "/scratch"))

            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")
            try await home.startDaemon()
            #expect(await eventually(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: repo + "/b.txt") })
            #expect(try walk(repo) == side, "the restarted mount replayed edits made before `mesa edit side`")
            #expect(!FileManager.default.fileExists(atPath: repo + "/scratch"))
            let status = try await home.call("status", ["path": repo])
            let mount = (status["mounts"] as? [[String: Any]])?.first
            #expect(mount?["bookmark"] as? String == "side")
            #expect(mount?["pendingUploads"] as? Int == 0 && mount?["workingChangeId"] as? String == nil, "\(String(describing: mount))")
        }
    }
}

/// Where `main` of a repo points.
func mainChange(_ home: Home, _ repo: String) async throws -> String? {
    let result = try await home.call("listBookmarks", ["repo": repo])
    return (result["bookmarks"] as? [[String: Any]])?.first { $0["name"] as? String == "main" }?["changeId"] as? String
}

/// The git commit of a change, for reading its tree from the store.
func commit(_ home: Home, _ repo: String, _ change: String) async throws -> String {
    let result = try await home.call("show", ["repo": repo, "rev": change])
    guard let oid = (result["change"] as? [String: Any])?["commitOid"] as? String else { throw TestFailure("show \(change): \(result)") }
    return oid
}

func checkpointOutcome(_ client: MesaClient, path: String, message: String) async -> Result<Checkpoint.Result, MesaClient.Failure> {
    do { return .success(try await client.call(Checkpoint.self, .init(.path(path), .init(message: message)))) } catch { return .failure(error) }
}
