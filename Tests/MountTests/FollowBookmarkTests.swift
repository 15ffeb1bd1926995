import Dispatch
import Foundation
import Model
import Synchronization
import MesaAPI
@testable import Mount
import Store
import Testing

/// `followBookmark` on the core (no kernel): a clean mount shows where someone else
/// moved its bookmark; a mount with work of its own stays put and loses nothing.
struct FollowBookmarkTests {
    /// Someone else (another mount, the SDK) moves `main` with these operations.
    @discardableResult
    func moveMain(_ fx: MountFixture, _ operations: [FileOperation]) throws -> (from: ChangeID, to: ChangeID) {
        let tip = try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "main").changeID
        let change = try fx.store.createChange(org: fx.org, repo: fx.repo, base: tip, message: "theirs", files: operations)
        _ = try fx.store.moveBookmark(org: fx.org, repo: fx.repo, bookmark: "main", to: change.id)
        return (tip, change.id)
    }

    func text(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func cleanMountFollowsAMovedBookmark() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one", "gone.txt": "bye", "dir/b.txt": "b"])
        let fs = try fx.mount()
        #expect(try fs.readText("a.txt") == "one")
        #expect(try fs.readText("gone.txt") == "bye")
        #expect(try fs.followBookmark() == .unchanged)
        _ = fs.drainChangedPaths()
        let moved = try moveMain(fx, [.upsert(path: "a.txt", content: text("two, longer")), .delete(path: "gone.txt"),
                                      .upsert(path: "dir/new.txt", content: text("n"))])
        #expect(try fs.followBookmark() == .moved(bookmark: "main", from: moved.from, to: moved.to))
        #expect(try fs.readText("a.txt") == "two, longer")
        #expect(try fs.readText("dir/new.txt") == "n")
        #expect(try fs.readText("dir/b.txt") == "b")
        expectErrno(ENOENT) { try fs.ino("gone.txt") }
        #expect(try fs.list(InodeTable.rootIno) == ["a.txt", "dir"])
        #expect(fs.status().baseChange == moved.to)
        #expect(fs.status().workingChange == nil)
        #expect(fs.drainChangedPaths().paths == ["a.txt", "dir/new.txt", "gone.txt"])
        #expect(try fs.followBookmark() == .unchanged)
        // Work on the new view checkpoints on top of it: no conflict.
        try fs.writeText("mine.txt", "m")
        _ = try fs.checkpoint(message: "mine")
        #expect(try fx.tree(at: .bookmark("main")) == ["a.txt": "two, longer", "dir/b.txt": "b", "dir/new.txt": "n", "mine.txt": "m"])
    }

    @Test func followingSurvivesARestart() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        var fs: RepoFileSystem? = try fx.mount()
        let moved = try moveMain(fx, [.upsert(path: "a.txt", content: text("two"))])
        #expect(try fs?.followBookmark() == .moved(bookmark: "main", from: moved.from, to: moved.to))
        fs = nil
        // The journal header records the new base: a restarted mount shows it, and its
        // checkpoint compares against it.
        let again = try fx.mount()
        #expect(again.status().baseChange == moved.to)
        try again.writeText("b.txt", "b")
        _ = try again.checkpoint(message: "b")
        #expect(try fx.tree(at: .bookmark("main")) == ["a.txt": "two", "b.txt": "b"])
    }

    @Test func aWorkingChangeHoldsTheMountBackAndCheckpointReportsTheConflict() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        let fs = try fx.mount()
        try fs.writeText("mine.txt", "m")
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        let moved = try moveMain(fx, [.upsert(path: "a.txt", content: text("theirs"))])
        guard case .heldBack(let bookmark, let at, let reason) = try fs.followBookmark() else {
            Issue.record("a mount with a working change must not switch")
            return
        }
        #expect(bookmark == "main" && at == moved.to)
        #expect(reason.contains("working change"))
        #expect(try fs.readText("mine.txt") == "m")
        #expect(try fs.readText("a.txt") == "one")
        #expect(fs.status().workingChange == working)
        do {
            _ = try fs.checkpoint(message: "mine")
            Issue.record("checkpoint should report the conflict")
        } catch {
            #expect(error.errorClass == .transient)
        }
        #expect(try fx.tree(at: .change(working))["mine.txt"] == "m")
    }

    @Test func pathsNotUploadedHoldTheMountBack() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        let fs = try fx.mount()  // no background flusher: the write stays pending
        try fs.writeText("mine.txt", "m")
        try moveMain(fx, [.upsert(path: "a.txt", content: text("theirs"))])
        guard case .heldBack(_, _, let reason) = try fs.followBookmark() else {
            Issue.record("pending paths must hold the mount back")
            return
        }
        #expect(reason.contains("not uploaded"))
        #expect(try fs.readText("mine.txt") == "m")
        #expect(fs.status().pendingUploads == 1)
    }

    /// A file open for writing whose last bytes were checkpointed: the next write
    /// through the same handle must land in the view it was opened in.
    @Test func aFileOpenForWritingHoldsTheMountBack() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        let fs = try fx.mount()
        let (attributes, opened) = try fs.create(parent: InodeTable.rootIno, name: "draft.txt", permissions: 0o644,
                                                 flags: OpenFlags(write: true))
        _ = try Array("draft".utf8).withUnsafeBytes { raw throws(FSError) in
            try fs.write(attributes.ino, handle: opened.handle, offset: 0, bytes: raw)
        }
        _ = try fs.checkpoint(message: "draft")
        #expect(fs.status().workingChange == nil && fs.status().pendingUploads == 0)
        try moveMain(fx, [.upsert(path: "a.txt", content: text("theirs"))])
        guard case .heldBack(_, _, let reason) = try fs.followBookmark() else {
            Issue.record("an open writable file must hold the mount back")
            return
        }
        #expect(reason.contains("open for writing"))
        _ = try Array(" more".utf8).withUnsafeBytes { raw throws(FSError) in
            try fs.write(attributes.ino, handle: opened.handle, offset: 5, bytes: raw)
        }
        try fs.flush(attributes.ino, handle: opened.handle)
        fs.release(attributes.ino, handle: opened.handle)
        #expect(try fs.readText("draft.txt") == "draft more")
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working))["draft.txt"] == "draft more")
    }

    @Test func localOnlyContentHoldsTheMountBack() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        let fs = try fx.mount()
        try fs.mkdirPath(".git")
        try fs.writeText(".git/HEAD", "ref: refs/heads/main\n")
        try fs.flush()
        #expect(fs.status().workingChange == nil, "a .git tree is never uploaded")
        try moveMain(fx, [.upsert(path: "a.txt", content: text("theirs"))])
        guard case .heldBack(_, _, let reason) = try fs.followBookmark() else {
            Issue.record("a local .git tree must hold the mount back")
            return
        }
        #expect(reason.contains(".git"))
        #expect(try fs.readText(".git/HEAD") == "ref: refs/heads/main\n")
    }

    @Test func aMountPinnedToAChangeNeverMoves() throws {
        let fx = try MountFixture()
        let pinned = try fx.seed(["a.txt": "one"])
        let fs = try fx.mount(.change(pinned.id), mode: .ro)
        try moveMain(fx, [.upsert(path: "a.txt", content: text("two"))])
        #expect(try fs.followBookmark() == .pinned)
        #expect(try fs.readText("a.txt") == "one")
        #expect(fs.status().baseChange == pinned.id)
    }

    @Test func readOnlyMountOfABookmarkFollows() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        let fs = try fx.mount(mode: .ro)
        #expect(try fs.readText("a.txt") == "one")
        let moved = try moveMain(fx, [.upsert(path: "a.txt", content: text("two"))])
        #expect(try fs.followBookmark() == .moved(bookmark: "main", from: moved.from, to: moved.to))
        #expect(try fs.readText("a.txt") == "two")
    }

    @Test func anUnavailableBackendSwitchesNothing() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "one"])
        let faulty = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try fx.mount(backend: faulty)
        #expect(try fs.readText("a.txt") == "one")
        let before = fs.status().baseChange
        let moved = try moveMain(fx, [.upsert(path: "a.txt", content: text("two"))])
        faulty.setOffline(true)
        #expect(throws: MesaError.self) { try fs.followBookmark() }
        #expect(fs.status().baseChange == before)
        #expect(try fs.readText("a.txt") == "one", "the cached view stays readable")
        // The tip's time is fetched after the bookmark: failing there switches nothing either.
        faulty.setOffline(false)
        faulty.failNext(1, method: "listChanges", with: MesaError(.unavailable, "down"))
        faulty.failNext(1, method: "change", with: MesaError(.unavailable, "down"))
        #expect(throws: MesaError.self) { try fs.followBookmark() }
        #expect(fs.status().baseChange == before)
        #expect(try fs.readText("a.txt") == "one")
        // Back online: the next look follows.
        #expect(try fs.followBookmark() == .moved(bookmark: "main", from: before, to: moved.to))
        #expect(try fs.readText("a.txt") == "two")
    }

    /// The kernel may still hold an inode number of the old view (its invalidation is
    /// on the way): opening it for writing must not write into a detached node.
    @Test func aStaleInodeOpenedForWritingAfterASwitchGetsESTALE() throws {
        let fx = try MountFixture()
        try fx.seed(["shared.txt": "old", "dir/x.txt": "x"])
        let fs = try fx.mount()
        let stale = try fs.ino("shared.txt")
        let staleDir = try fs.ino("dir")
        try moveMain(fx, [.upsert(path: "shared.txt", content: text("theirs"))])
        guard case .moved = try fs.followBookmark() else { Issue.record("should follow"); return }
        expectErrno(ESTALE) { try fs.open(stale, flags: OpenFlags(write: true)) }
        expectErrno(ESTALE) { try fs.create(parent: staleDir, name: "new.txt", permissions: 0o644, flags: OpenFlags(write: true)) }
        expectErrno(ESTALE) { try fs.setattr(stale, AttributeChanges(permissions: 0o755)) }
        #expect(fs.status().pendingUploads == 0, "nothing was written into the old view")
        // Looked up again (as the kernel does on ESTALE): the same path, the new revision.
        try fs.writeText("shared.txt", "mine", append: true)
        try fs.writeText("dir/new.txt", "n")
        #expect(try fs.readText("shared.txt") == "theirsmine")
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working)) == ["shared.txt": "theirsmine", "dir/x.txt": "x", "dir/new.txt": "n"])
    }

    /// Writers racing the follower: every write that succeeded is in the mount's view
    /// afterwards and in the uploaded working change, whichever came first.
    @Test func writesRacingAFollowAreNeverLost() throws {
        for round in 0..<25 {
            let fx = try MountFixture()
            try fx.seed(["shared.txt": "0123456789", "dir/x.txt": "x"])
            let fs = try fx.mount()
            #expect(try fs.readText("shared.txt") == "0123456789")
            try moveMain(fx, [.upsert(path: "shared.txt", content: text("abcdefghij")), .upsert(path: "theirs.txt", content: text("t"))])
            let group = DispatchGroup()
            let outcome = Mutex<FollowOutcome?>(nil)
            let writerError = Mutex<String?>(nil)
            DispatchQueue.global().async(group: group) {
                // As the kernel and the adapter would: on ESTALE look the path up again,
                // on "would block" (a directory re-listed meanwhile) run again.
                for attempt in 0..<5 {
                    do {
                        if round % 2 == 0 {
                            let ino = try fs.ino("shared.txt")
                            let handle = try fs.open(ino, flags: OpenFlags(write: true)).handle
                            _ = try Array("MINE".utf8).withUnsafeBytes { raw throws(FSError) in
                                try fs.write(ino, handle: handle, offset: 0, bytes: raw)
                            }
                            try fs.flush(ino, handle: handle)
                            fs.release(ino, handle: handle)
                        } else {
                            try fs.writeText("dir/mine.txt", "MINE")
                        }
                        return
                    } catch let error as FSError where (error.errno == ESTALE || error.isWouldBlock) && attempt < 4 {
                        continue
                    } catch {
                        writerError.withLock { $0 = "\(error)" }
                        return
                    }
                }
            }
            DispatchQueue.global().async(group: group) {
                let result = try? fs.followBookmark()
                outcome.withLock { $0 = result }
            }
            group.wait()
            #expect(writerError.withLock { $0 } == nil, "round \(round): \(writerError.withLock { $0 } ?? "")")
            let followed = outcome.withLock { $0 }
            let moved = if case .moved = followed { true } else { false }
            let path = round % 2 == 0 ? "shared.txt" : "dir/mine.txt"
            let expected = round % 2 == 0 ? (moved ? "MINEefghij" : "MINE456789") : "MINE"
            #expect(try fs.readText(path) == expected, "round \(round), follow: \(String(describing: followed))")
            try fs.flush()
            let working = try #require(fs.status().workingChange, "round \(round)")
            #expect(try fx.tree(at: .change(working))[path] == expected, "round \(round)")
        }
    }
}
