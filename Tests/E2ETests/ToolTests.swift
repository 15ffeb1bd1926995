import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension E2E {
    /// Ordinary tools, run in a mounted repo exactly as an agent runs them.
    @Suite(.timeLimit(.minutes(10)))
    struct Tools {
        static let haveTools = ["/usr/bin/git", "/usr/bin/rsync", "/usr/bin/cc", "/bin/tar", "/bin/sed"]
            .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

        @Test("git, tar -x of 2,000 files, cp -a, rsync -a, sed -i, cc and an editor-style save work in the mount and reach the store",
              .enabled(if: haveTools, "needs git, rsync, cc, tar and sed (scripts/install-deps.sh)"))
        func realTools() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "tools"])
            let repo = home.repo("tools")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })

            // A source tree of 2,000 files (40 directories of 50), an executable and a
            // symlink, built outside the mount, plus its tarball.
            let source = home.root + "/source"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try await home.sh("""
                mkdir src && for d in $(seq 0 39); do mkdir src/d$d; for f in $(seq 0 49); do echo "file $d/$f" > src/d$d/f$f.txt; done; done
                printf '#!/bin/sh\\necho run\\n' > src/run.sh && chmod +x src/run.sh && ln -s d0/f0.txt src/link
                tar -cf tree.tar src
                """, in: source, timeout: .seconds(300))

            // git in the mount: init, add, commit, a clean status afterwards.
            try await home.sh("""
                printf 'hello\\n' > README && git init -q && git add -A && git commit -q -m 'first commit'
                test -z "$(git status --porcelain)" && git log --oneline | grep -q 'first commit' && git fsck --strict
                """, in: repo)

            // Archives and copies of the tree.
            try await home.sh("tar -xf \(source)/tree.tar && mv src from-tar", in: repo, timeout: .seconds(300))
            try await home.sh("cp -a \(source)/src from-cp", in: repo, timeout: .seconds(300))
            try await home.sh("rsync -a \(source)/src/ from-rsync/", in: repo, timeout: .seconds(300))
            for copy in ["from-tar", "from-cp", "from-rsync"] {
                let same = try await home.run(["/usr/bin/diff", "-r", "--no-dereference", source + "/src", repo + "/" + copy], timeout: .seconds(120))
                #expect(same.code == 0, "\(copy) differs from the source: \(same)")
            }
            #expect(fileMode(repo + "/from-rsync/run.sh").map { $0 & 0o111 != 0 } == true)

            // sed -i (writes a temporary file and renames it over the original).
            try write(repo + "/config.ini", "mode=debug\nlevel=1\n")
            try await home.sh("sed -i 's/debug/release/' config.ini", in: repo)
            #expect(read(repo + "/config.ini") == "mode=release\nlevel=1\n")

            // A compile and a run of the result.
            try write(repo + "/hello.c", "#include <stdio.h>\nint main(void) { puts(\"hello from the mount\"); return 0; }\n")
            try await home.sh("cc -O0 -o hello hello.c", in: repo, timeout: .seconds(120))
            #expect(try await home.sh("./hello", in: repo) == "hello from the mount\n")

            // An editor's save: write a temporary file, fsync it, rename it over the target.
            try write(repo + "/notes.md", "draft\n")
            try await home.sh("""
                python3 -c '
                import os
                fd = os.open(".notes.md.swp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, b"saved by the editor\\n")
                os.fsync(fd)
                os.close(fd)
                os.rename(".notes.md.swp", "notes.md")
                dfd = os.open(".", os.O_RDONLY)
                os.fsync(dfd)
                '
                """, in: repo)
            #expect(read(repo + "/notes.md") == "saved by the editor\n")
            #expect(!FileManager.default.fileExists(atPath: repo + "/.notes.md.swp"))

            // The checkpoint holds all of it; `.git` stays local (and keeps working).
            let saved = try await home.ok(["mesa", "checkpoint", "-m", "tools"], in: repo, timeout: .seconds(180))
            #expect(saved.contains("main moved onto it"), "\(saved)")
            let clone = home.root + "/clone"
            try await home.ok(["/usr/bin/git", "clone", "-q", try await bareRepo(home, repo: "tools"), clone], timeout: .seconds(120))
            let stored = try walk(clone)
            #expect(try walk(repo) == stored, "the mount and a clone of the store differ")
            #expect(stored.count == 3 * 2002 + 5, "files in the store: \(stored.count)")
            #expect(stored["from-rsync/run.sh"] == .file("#!/bin/sh\necho run\n", executable: true))
            #expect(stored["from-tar/link"] == .symlink("d0/f0.txt"))
            #expect(stored["config.ini"] == .file("mode=release\nlevel=1\n"))
            #expect(stored["notes.md"] == .file("saved by the editor\n"))
            #expect(fileMode(clone + "/hello").map { $0 & 0o111 != 0 } == true, "the compiled binary lost its exec bit")
            #expect(try await home.sh("\(clone)/hello") == "hello from the mount\n")
            let git = try await bareRepo(home, repo: "tools")
            let paths = try await home.ok(["/usr/bin/git", "--git-dir", git, "ls-tree", "-r", "--name-only", "main"])
            #expect(!paths.split(separator: "\n").contains { $0.hasPrefix(".git/") }, "a .git path was uploaded")
            try await home.sh("git status --porcelain | grep -q from-tar && git log --oneline | grep -q 'first commit'", in: repo)
        }
    }
}

func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
}
