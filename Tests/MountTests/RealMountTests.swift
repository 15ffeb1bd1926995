import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(5)))
struct RealMountTests {
    @Test func readsAndWritesThroughTheKernel() throws {
        let fx = try MountFixture()
        try fx.seed(["README.md": "hello\n", "src/main.c": "int main(void) { return 0; }\n", "bin/run": "#!/bin/sh\necho run\n"],
                    executable: ["bin/run"], symlinks: ["latest": "README.md"])
        let fs = try fx.mount()
        try fx.withMount(fs) { path in
            #expect(try String(contentsOfFile: path + "/README.md", encoding: .utf8) == "hello\n")
            #expect(try FileManager.default.contentsOfDirectory(atPath: path).sorted() == ["README.md", "bin", "latest", "src"])
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path + "/latest") == "README.md")
            #expect(FileManager.default.isExecutableFile(atPath: path + "/bin/run"))
            try mustRun("./bin/run > out.txt && echo more >> out.txt", in: path)
            #expect(try String(contentsOfFile: path + "/out.txt", encoding: .utf8) == "run\nmore\n")
            try mustRun("sed -i 's/hello/goodbye/' README.md && mkdir -p a/b && mv src a/b/ && rm bin/run && chmod +x out.txt", in: path)
            try mustRun("ln README.md hard && test $(stat -c %h README.md) = 2 && test README.md -ef hard", in: path)
            let xattr = try shell("setfattr -n user.x -v 1 README.md", in: path)
            #expect(xattr.status != 0)
        }
        try fs.flush()
        #expect(try fx.tree(at: .change(#require(fs.status().workingChange))) == [
            "README.md": "goodbye\n", "a/b/src/main.c": "int main(void) { return 0; }\n", "latest": "->README.md",
            "out.txt": "x:run\nmore\n", "hard": "goodbye\n",
        ])
    }

    @Test func realToolsCpTarAndGitWork() throws {
        let fx = try MountFixture()
        try fx.seed(["docs/a.md": "a\n"])
        let fs = try fx.mount()
        let source = fx.scratch("src")
        try mustRun("mkdir -p \(source)/tree/sub && for i in $(seq 1 300); do echo $i > \(source)/tree/sub/f$i.txt; done && "
                    + "chmod +x \(source)/tree/sub/f1.txt && ln -s sub/f2.txt \(source)/tree/link && "
                    + "tar -C \(source) -cf \(source)/t.tar tree", in: fx.root.path)
        try fx.withMount(fs) { path in
            try mustRun("cp -a \(source)/tree copied", in: path)
            try mustRun("mkdir untarred && tar -C untarred -xf \(source)/t.tar", in: path)
            try mustRun("diff -r \(source)/tree copied && diff -r \(source)/tree untarred/tree", in: path)
            try mustRun("git init -q proj && cd proj && echo x > x.txt && git add -A && git -c user.name=t -c user.email=t@t commit -qm init && git log --oneline | grep -q init && git status --porcelain | wc -l | grep -q '^0$'", in: path)
            // An editor-style save: temp file, fsync, rename over the original.
            try mustRun("printf 'saved' > docs/.a.md.swp && sync docs/.a.md.swp && mv docs/.a.md.swp docs/a.md", in: path)
        }
        try fs.flush()
        let tree = try fx.tree(at: .change(#require(fs.status().workingChange)))
        #expect(tree["docs/a.md"] == "saved")
        #expect(tree["copied/sub/f300.txt"] == "300\n")
        #expect(tree["copied/sub/f1.txt"] == "x:1\n")
        #expect(tree["untarred/tree/link"] == "->sub/f2.txt")
        #expect(tree["proj/x.txt"] == "x\n")
        #expect(!tree.keys.contains { $0.contains(".git/") }, "a repository's .git stays local")
        #expect(tree.count == 1 + 301 * 2 + 1)
    }

    @Test func otherUsersReachTheMountOnlyWithAllowOther() throws {
        for allowOther in [false, true] {
            let fx = try MountFixture()
            try fx.seed(["a.txt": "shared\n"])
            let fs = try fx.mount()
            let path = fx.scratch("mnt")
            // Let another user walk down to the mount point, so only FUSE decides.
            var ancestor = path
            while ancestor.count > 1 {
                ancestor = parentPath(ancestor)
                if !ancestor.isEmpty { chmod(ancestor, 0o755) }
            }
            let session = try MountSession.start(at: path, root: fs, name: "acme/x", options: .init(allowOther: allowOther))
            defer { session.stop() }
            let asNobody = try shell("setpriv --reuid=65534 --regid=65534 --clear-groups cat \(path)/a.txt 2>&1", in: "/")
            if allowOther {
                #expect(asNobody.status == 0 && asNobody.output == "shared\n", "\(asNobody.output)")
                let write = try shell("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x > \(path)/a.txt' 2>&1", in: "/")
                #expect(write.status != 0, "modes still apply: \(write.output)")
            } else {
                #expect(asNobody.status != 0 && asNobody.output.contains("Permission denied"), "\(asNobody.output)")
            }
            #expect(try String(contentsOfFile: path + "/a.txt", encoding: .utf8) == "shared\n")
        }
    }

    @Test func readOnlyMountAnswersEROFS() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let fs = try fx.mount(mode: .ro)
        try fx.withMount(fs) { path in
            #expect(try String(contentsOfFile: path + "/a", encoding: .utf8) == "1")
            let result = try shell("echo x > b", in: path)
            #expect(result.status != 0)
            #expect(result.output.contains("Read-only file system"))
            #expect(try shell("rm a", in: path).output.contains("Read-only file system"))
        }
    }

    @Test func staleMountPointIsCleared() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mesa-stale-\(UUID().uuidString)").path
        #expect(!MountSession.clearStaleMount(at: path), "nothing to clear on a missing path")
    }
}
