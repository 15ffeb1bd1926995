import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension E2E {
    /// Read-only mounts, repo-scoped keys, layouts.
    @Suite(.timeLimit(.minutes(5)))
    struct Access {
        /// Makes `repo` with `files` checkpointed on main, through the daemon tree.
        static func seed(_ home: Home, _ repo: String, _ files: [String: String], executable: [String] = []) async throws {
            try await home.ok(["mesa-client", "create-repo", repo])
            let path = home.repo(repo)
            #expect(await eventually { FileManager.default.fileExists(atPath: path) })
            for (name, text) in files {
                try FileManager.default.createDirectory(atPath: ((path + "/" + name) as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try write(path + "/" + name, text)
            }
            for name in executable { chmod(path + "/" + name, 0o755) }
            try await home.ok(["mesa", "checkpoint", "-m", "seed"], in: path)
        }

        @Test("a ro path mount (`mesa-client mount --mode ro --at-path`) reads, and answers every change with EROFS")
        func readOnlyPathMount() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await Self.seed(home, "docs", ["readme.txt": "read me\n", "dir/a.txt": "a\n", "run.sh": "#!/bin/sh\n"],
                                executable: ["run.sh"])
            let ro = home.root + "/ro"
            try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: false)
            let mounted = try await home.ok(["mesa-client", "mount", "docs", "--mode", "ro", "--at-path", ro])
            #expect(mounted.contains("mounted at \(ro)"), "\(mounted)")
            #expect(home.isMounted(ro))
            let expected: [String: Entry] = ["readme.txt": .file("read me\n"), "dir/a.txt": .file("a\n"),
                                             "run.sh": .file("#!/bin/sh\n", executable: true)]
            #expect(try walk(ro) == expected)

            let attempts: [(String, () -> Int32)] = [
                ("create", { open(ro + "/new.txt", O_CREAT | O_WRONLY, 0o644) }),
                ("open for writing", { open(ro + "/readme.txt", O_WRONLY) }),
                ("open with O_TRUNC", { open(ro + "/readme.txt", O_RDWR | O_TRUNC) }),
                ("mkdir", { mkdir(ro + "/newdir", 0o755) }),
                ("unlink", { unlink(ro + "/readme.txt") }),
                ("rmdir", { rmdir(ro + "/dir") }),
                ("rename", { rename(ro + "/readme.txt", ro + "/moved.txt") }),
                ("chmod", { chmod(ro + "/run.sh", 0o644) }),
                ("symlink", { symlink("readme.txt", ro + "/link") }),
                ("truncate", { truncate(ro + "/readme.txt", 0) }),
                ("utimens", { utimensat(AT_FDCWD, ro + "/readme.txt", nil, 0) }),
            ]
            for (name, attempt) in attempts {
                let error = errnoOf(attempt)
                #expect(error == EROFS, "\(name) on a ro mount: \(error == 0 ? "succeeded" : String(cString: strerror(error)))")
            }
            #expect(try walk(ro) == expected, "a refused change altered the ro mount")
            let checkpoint = try await home.run(["mesa", "checkpoint"], in: ro)
            #expect(checkpoint.code == 1 && checkpoint.stderr.contains("read-only"), "\(checkpoint)")

            let mounts = try await home.call("listMounts")
            let entry = (mounts["mounts"] as? [[String: Any]])?.first { $0["path"] as? String == ro }
            #expect(entry?["mode"] as? String == "ro")
            try await home.ok(["mesa-client", "unmount", ro])
            #expect(!home.isMounted(ro))
            #expect(home.isMounted(home.mountPoint), "unmounting the path mount took the tree with it")
        }

        @Test("restarted with MESA_ORGS=local:<key scoped to one repo>, the tree shows only that repo")
        func repoScopedKeySeesOneRepo() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await Self.seed(home, "mine", ["m.txt": "mine\n"])
            try await Self.seed(home, "theirs", ["t.txt": "theirs\n"])
            let key = try await home.ok(["mesa-client", "create-ephemeral-key", "--repo", "mine", "--scopes", "read,write"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(key.hasPrefix("mesa_"), "\(key)")
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: home.mountPoint + "/local")) == ["mine", "theirs"])

            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")
            try await home.startDaemon(environment: ["MESA_ORGS": "local:\(key)"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: home.mountPoint + "/local") == ["mine"])
            var info = stat()
            #expect(stat(home.repo("theirs") + "/t.txt", &info) != 0 && errno == ENOENT, "the other repo is reachable by name")
            let repos = try await home.ok(["mesa", "repo", "list"])
            #expect(repos.contains("mine") && !repos.contains("theirs"), "\(repos)")
            // The key writes: edits in its repo reach the store.
            #expect(read(home.repo("mine") + "/m.txt") == "mine\n")
            try write(home.repo("mine") + "/more.txt", "more\n")
            try await home.ok(["mesa", "checkpoint", "-m", "scoped"], in: home.repo("mine"))
            #expect(try await storeTree(home, repo: "mine", rev: "main") == ["m.txt": .file("mine\n"), "more.txt": .file("more\n")])
        }

        @Test("`mesa mount --layout` mounts a rw and a ro declaration; a layout with an unknown key is refused (exit 2)")
        func layout() async throws {
            let home = try Home()
            defer { home.close() }
            let workspace = home.root + "/ws"
            let bad = home.root + "/bad.json"
            try write(bad, #"{"\#(workspace)/bad": {"kind": "repo", "name": "app", "mode": "rw", "colour": "red"}}"#)
            // Refused before anything starts.
            let refusedCold = try await home.run(["mesa", "mount", "--layout", bad])
            #expect(refusedCold.code == 2, "\(refusedCold)")
            #expect(refusedCold.stderr.contains("unknown key 'colour'") && refusedCold.stderr.contains(bad), "\(refusedCold)")
            #expect(home.noteDaemon() == nil, "a refused layout started mesad")

            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await Self.seed(home, "app", ["main.c": "int main(void) { return 0; }\n"])
            try await Self.seed(home, "docs", ["guide.md": "# Guide\n"])
            #expect(try await home.stopDaemon(), "mesad needed SIGKILL")

            let layout = home.root + "/layout.json"
            try write(layout, """
                {"\(workspace)/app": {"kind": "repo", "name": "app", "mode": "rw"},
                 "\(workspace)/docs": {"kind": "repo", "name": "docs", "mode": "ro", "at": {"bookmark": "main"}}}
                """)
            let mounted = try await home.run(["mesa", "mount", "--layout", layout], timeout: .seconds(150))
            #expect(mounted.code == 0, "\(mounted)")
            #expect(mounted.stdout.contains("mounted local/app (rw) at \(workspace)/app")
                    && mounted.stdout.contains("mounted local/docs (ro) at \(workspace)/docs"), "\(mounted)")
            #expect(read(workspace + "/app/main.c") == "int main(void) { return 0; }\n")
            #expect(read(workspace + "/docs/guide.md") == "# Guide\n")
            #expect(errnoOf { open(workspace + "/docs/new.md", O_CREAT | O_WRONLY, 0o644) } == EROFS)
            try write(workspace + "/app/util.c", "int util(void) { return 1; }\n")
            try await home.ok(["mesa", "checkpoint", "-m", "util"], in: workspace + "/app")
            #expect(try await storeTree(home, repo: "app", rev: "main").keys.sorted() == ["main.c", "util.c"])

            // Refused with the daemon running too, and nothing changes.
            let before = try await home.call("listMounts")
            let refused = try await home.run(["mesa", "mount", "--layout", bad])
            #expect(refused.code == 2 && refused.stderr.contains("unknown key 'colour'"), "\(refused)")
            #expect(!home.isMounted(workspace + "/bad"))
            #expect(NSDictionary(dictionary: try await home.call("listMounts")) == NSDictionary(dictionary: before))
        }
    }
}
