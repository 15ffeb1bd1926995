import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import StoreBackend
import Testing

@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(3)))
struct CrashTests {
    /// The daemon dies with the mount in place: the mount point is stale, the journal
    /// holds everything closed; a new daemon clears the mount, replays and uploads.
    @Test func aJournalServesOneMountAtATime() throws {
        let fx = try MountFixture()
        let first = try fx.mount()
        expectErrno(EBUSY) { try fx.mount() }
        _ = first
    }

    @Test func crashLeavesAStaleMountAndTheJournalRestoresEverythingClosed() throws {
        let fx = try MountFixture()
        try fx.seed(["keep.txt": "k\n", "dir/old.txt": "o\n"])
        let path = fx.scratch("mnt")
        var fs: RepoFileSystem? = try fx.mount()
        var session: MountSession? = try MountSession.start(at: path, root: try #require(fs))
        defer { MountSession.clearStaleMount(at: path) }  // whatever happens below
        try mustRun("for i in $(seq 1 50); do echo $i > f$i.txt; done && echo edit >> keep.txt && mv dir renamed && rm renamed/old.txt && mkdir -p new/deep && printf 'x' > new/deep/x && sync", in: path)
        session?.simulateCrash()
        var info = statvfs()
        #expect(statvfs(path, &info) != 0 && (errno == ENOTCONN || errno == ECONNABORTED), "the mount point is stale")
        session = nil
        fs = nil
        #expect(MountSession.clearStaleMount(at: path))
        #expect(statvfs(path, &info) == 0)
        let recovered = try fx.mount()
        let restarted = try MountSession.start(at: path, root: recovered)
        defer { restarted.stop() }
        try mustRun("test \"$(cat f50.txt)\" = 50 && test \"$(cat keep.txt)\" = \"$(printf 'k\\nedit')\" && test -d renamed && ! test -e dir && test -e new/deep/x", in: path)
        try recovered.flush()
        let tree = try fx.tree(at: .change(#require(recovered.status().workingChange)))
        #expect(tree.count == 52)
        #expect(tree["keep.txt"] == "k\nedit\n")
        #expect(tree["f17.txt"] == "17\n")
        #expect(tree["new/deep/x"] == "x")
        #expect(tree["renamed/old.txt"] == nil)
    }

    /// Switching the revision under an open mount invalidates the kernel's caches,
    /// even the page cache that `keep_cache` let it keep.
    /// Crash, recover, write more, crash again: every round's fsynced work survives,
    /// also while an unsynced writer is running at the moment of the crash.
    @Test func repeatedCrashesUnderLoadLoseNothingFsynced() throws {
        let fx = try MountFixture()
        let path = fx.scratch("mnt")
        defer { MountSession.clearStaleMount(at: path) }
        for round in 1...3 {
            var fs: RepoFileSystem? = try fx.mount()
            var session: MountSession? = try MountSession.start(at: path, root: try #require(fs))
            for previous in 1..<round {
                try mustRun("test \"$(cat r\(previous)/f20)\" = \(previous)-20", in: path)
            }
            try mustRun("mkdir r\(round) && for i in $(seq 1 20); do echo \(round)-$i > r\(round)/f$i; done && sync r\(round)/f20 && sync .", in: path)
            // An unsynced writer is running when the daemon dies.
            let background = Process()
            background.executableURL = URL(fileURLWithPath: "/bin/sh")
            background.arguments = ["-c", "i=0; while [ $i -lt 100000 ]; do echo $i > noise$i 2>/dev/null || exit 0; i=$((i+1)); done"]
            background.currentDirectoryURL = URL(fileURLWithPath: path)
            try background.run()
            usleep(200_000)
            session?.simulateCrash()
            background.waitUntilExit()
            session = nil
            fs = nil
            #expect(MountSession.clearStaleMount(at: path))
        }
        let recovered = try fx.mount()
        try recovered.flush()
        let stored = try fx.paths(at: .change(#require(recovered.status().workingChange)))
        for round in 1...3 { #expect(stored["r\(round)/f20"] != nil, "round \(round) survived") }
    }

    @Test func editChangeInvalidatesKernelCaches() throws {
        let fx = try MountFixture()
        try fx.seed(["f.txt": "version one\n"])
        let other = try fx.store.createChange(org: fx.org, repo: fx.repo, base: .root, message: "",
                                              files: [.upsert(path: "f.txt", content: Array("version two\n".utf8))])
        let fs = try fx.mount(mode: .ro)
        try fx.withMount(fs) { path in
            #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "version one\n")
            _ = try fs.editChange(.change(other.id))
            #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "version two\n")
        }
    }
}

@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(2)))
struct FollowTests {
    @Test func readOnlyMountFollowsAMovedBookmark() throws {
        let fx = try MountFixture()
        try fx.seed(["f.txt": "old\n"])
        let fs = try fx.mount(mode: .ro)
        try fx.withMount(fs) { path in
            #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "old\n")
            #expect(try fs.followBookmark() == .unchanged, "nothing moved yet")
            try fx.seed(["f.txt": "new\n", "g.txt": "g\n"])
            guard case .moved = try fs.followBookmark() else { Issue.record("should follow"); return }
            #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "new\n")
            #expect(FileManager.default.fileExists(atPath: path + "/g.txt"))
        }
    }

    @Test func mountWithLocalWorkDoesNotFollow() throws {
        let fx = try MountFixture()
        try fx.seed(["f.txt": "old\n"])
        let fs = try fx.mount()
        try fs.writeText("mine", "m")
        try fx.seed(["f.txt": "theirs\n"])
        guard case .heldBack = try fs.followBookmark() else { Issue.record("should hold back"); return }
        #expect(try fs.readText("mine") == "m")
    }

    /// A read-write mount's page cache (blobs are opened with keep_cache) must not
    /// serve the old revision's bytes of a file that changed under the same inode.
    @Test func readWriteMountFollowsWithoutStaleKernelCaches() throws {
        let fx = try MountFixture()
        try fx.seed(["f.txt": "version one\n", "gone.txt": "bye\n", "dir/inner.txt": "in\n"])
        let fs = try fx.mount()
        try fx.withMount(fs) { path in
            #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "version one\n")
            #expect(try String(contentsOfFile: path + "/dir/inner.txt", encoding: .utf8) == "in\n")
            #expect(FileManager.default.fileExists(atPath: path + "/gone.txt"))
            let tip = try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "main").changeID
            let next = try fx.store.createChange(org: fx.org, repo: fx.repo, base: tip, message: "theirs", files: [
                .upsert(path: "f.txt", content: Array("version two, longer\n".utf8)), .delete(path: "gone.txt"),
                .upsert(path: "dir/inner.txt", content: Array("IN\n".utf8)), .upsert(path: "new.txt", content: Array("n\n".utf8)),
            ])
            _ = try fx.store.moveBookmark(org: fx.org, repo: fx.repo, bookmark: "main", to: next.id)
            #expect(try fs.followBookmark() == .moved(bookmark: "main", from: tip, to: next.id))
            #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "version two, longer\n")
            #expect(try String(contentsOfFile: path + "/dir/inner.txt", encoding: .utf8) == "IN\n")
            #expect(try String(contentsOfFile: path + "/new.txt", encoding: .utf8) == "n\n")
            #expect(!FileManager.default.fileExists(atPath: path + "/gone.txt"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: path).sorted() == ["dir", "f.txt", "new.txt"])
            // Writing on the new view works and checkpoints on top of it.
            try "mine\n".write(toFile: path + "/mine.txt", atomically: false, encoding: .utf8)
            let saved = try fs.checkpoint(message: "mine")
            #expect(try fx.tree(at: .bookmark("main")) == ["f.txt": "version two, longer\n", "dir/inner.txt": "IN\n",
                                                          "new.txt": "n\n", "mine.txt": "mine\n"])
            #expect(saved.savedChange != next.id)
        }
    }

    @Test func keyWithoutWriteScopeMakesTheMountReadOnly() throws {
        let fx = try MountFixture()
        let key = try fx.store.createAPIKey(org: fx.org, name: "reader", scopes: [.read])
        let reader = LocalBackend(store: fx.store, principal: try fx.store.authenticate(secret: key.secret))
        let fs = try fx.mount(mode: .rw, backend: reader)
        #expect(fs.isReadOnly)
        expectErrno(EROFS) { try fs.mkdir(parent: 1, name: "x", permissions: 0o755) }
    }
}
