import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

@Suite struct FlushAndVersioningTests {
    @Test func flushCreatesExactlyTheExpectedTree() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["keep": "k", "gone": "g", "old/a": "a", "old/deep/b": "b", "file2dir": "f"])
        let fs = try fx.mount()
        let root = InodeTable.rootIno
        try fs.mkdirPath("new")
        try fs.mkdirPath("new/nested")
        try fs.writeText("new/nested/n.txt", "n")
        try fs.unlink(parent: root, name: "gone")
        try fs.rename(parent: root, name: "old", newParent: root, newName: "renamed")
        try fs.unlink(parent: root, name: "file2dir")
        try fs.mkdirPath("file2dir")
        try fs.writeText("file2dir/inside", "i")
        _ = try fs.symlink(parent: root, name: "ln", target: "keep")
        try fs.mkdirPath("emptydir")
        try fs.mkdirPath(".git")
        try fs.writeText(".git/HEAD", "ref: refs/heads/main")
        try fs.flush()
        let status = fs.status()
        let working = try #require(status.workingChange)
        #expect(status.baseChange == seed.id)
        #expect(status.pendingUploads == 0)
        #expect(try fx.tree(at: .change(working)) == [
            "keep": "k", "renamed/a": "a", "renamed/deep/b": "b", "file2dir/inside": "i", "ln": "->keep",
            "new/nested/n.txt": "n",
        ])
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: working).change.parents == [seed.id])
        // Later flushes amend the same change.
        try fs.writeText("keep", "k2")
        try fs.flush()
        #expect(fs.status().workingChange == working)
        #expect(try fx.tree(at: .change(working))["keep"] == "k2")
        #expect(try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "main").changeID == seed.id, "no checkpoint yet")
    }

    @Test func checkpointMovesBookmarkAndStartsAFreshChange() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let fs = try fx.mount()
        try fs.writeText("a", "2")
        let saved = try fs.checkpoint(message: "first")
        #expect(saved.created)
        let main = try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "main")
        #expect(main.changeID == saved.savedChange)
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: saved.savedChange).change.message == "first")
        #expect(fs.status().workingChange == nil)
        try fs.writeText("b", "3")
        try fs.flush()
        let next = try #require(fs.status().workingChange)
        #expect(next != saved.savedChange)
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: next).change.parents == [saved.savedChange])
        let second = try fs.checkpoint(message: nil)
        #expect(try fx.tree(at: .bookmark("main")) == ["a": "2", "b": "3"])
        #expect(second.savedChange == next)
    }

    @Test func bookmarkMovedUnderneathGivesTransientErrorAndLosesNothing() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let fs = try fx.mount()
        try fs.writeText("mine", "work")
        try fx.seed(["theirs": "x"])  // someone else moves main meanwhile
        do {
            _ = try fs.checkpoint(message: "mine")
            Issue.record("checkpoint should fail")
        } catch {
            #expect(error.errorClass == .transient)
            #expect(error.message.contains("moved"))
        }
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working))["mine"] == "work")
        // The mount keeps working into the same change.
        try fs.writeText("more", "m")
        try fs.flush()
        #expect(fs.status().workingChange == working)
        #expect(try fx.tree(at: .change(working))["more"] == "m")
    }

    @Test func offlineBackendStillAcceptsWritesAndUploadsLater() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let faulty = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try fx.mount(backend: faulty)
        _ = try fs.readText("a")
        faulty.setOffline(true)
        try fs.writeText("a", "offline edit")
        try fs.writeText("b", "new")
        #expect(throws: MesaError.self) { try fs.flush() }
        #expect(fs.status().lastError != nil)
        #expect(fs.status().pendingUploads == 2)
        faulty.setOffline(false)
        try fs.flush()
        #expect(fs.status().pendingUploads == 0)
        #expect(fs.status().lastError == nil)
        #expect(try fx.tree(at: .change(#require(fs.status().workingChange))) == ["a": "offline edit", "b": "new"])
    }

    @Test func backgroundFlusherUploadsAfterCloseAndRetries() async throws {
        let fx = try MountFixture()
        let faulty = FaultInjectingBackend(wrapping: fx.backend)
        faulty.failNext(2, method: "createChange", with: MesaError(.unavailable, "injected"))
        let configuration = MountConfiguration(org: fx.org, repo: fx.repo, journalDirectory: fx.journalDirectory,
                                               debounce: .milliseconds(50), maxRetryDelay: .milliseconds(200))
        let fs = try RepoFileSystem(configuration: configuration, backend: faulty, cache: fx.cache)
        defer { fs.stopFlusher() }
        try fs.writeText("f", "background")
        var working: ChangeID?
        for _ in 0..<100 {
            if let change = fs.status().workingChange, fs.status().pendingUploads == 0 { working = change; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let change = try #require(working, "the flusher uploaded within 5 s despite two failures")
        #expect(try fx.tree(at: .change(change)) == ["f": "background"])
    }

    @Test func journalReplayAfterCrashLosesNothingClosed() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1", "dir/b": "2", "dir/c": "3"])
        var fs: RepoFileSystem? = try fx.mount()
        try fs?.writeText("a", "edited")
        try fs?.writeText("dir/new", "n")
        try fs?.flush()  // part of the work is uploaded ...
        try fs?.writeText("late", "after flush")  // ... the rest only journaled
        try fs?.unlink(parent: fs?.ino("dir") ?? 0, name: "b")
        try fs?.rename(parent: InodeTable.rootIno, name: "dir", newParent: InodeTable.rootIno, newName: "dir2")
        try fs?.fsyncdir()
        let working = fs?.status().workingChange
        fs = nil  // "kill -9": no flush, no cleanup
        do {
            let recovered = try fx.mount()
            #expect(recovered.status().workingChange == working, "amends the same working change")
            #expect(try recovered.readText("late") == "after flush")
            #expect(try recovered.list(InodeTable.rootIno) == ["a", "dir2", "late"])
            try recovered.flush()
            #expect(try fx.tree(at: .change(#require(working))) == ["a": "edited", "dir2/c": "3", "dir2/new": "n", "late": "after flush"])
        }
        // A second restart replays nothing new and changes nothing.
        let again = try fx.mount()
        #expect(again.status().pendingUploads == 0)
        #expect(try again.readText("late") == "after flush")
    }

    @Test func whatTheStoreCannotHoldSurvivesARestartAfterUpload() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount()
        try fs?.mkdirPath("empty")
        try fs?.mkdirPath("empty/nested")
        try fs?.mkdirPath("work")
        try fs?.mkdirPath("work/.git")
        try fs?.writeText("work/.git/HEAD", "ref")
        try fs?.writeText("file", "f")
        try fs?.flush()  // compacts the journal: uploaded records go
        try fs?.writeText("work/.git/HEAD", "ref2")
        try fs?.flush()
        fs = nil
        let recovered = try fx.mount()
        #expect(try recovered.list(InodeTable.rootIno) == ["empty", "file", "work"])
        #expect(try recovered.list(try recovered.ino("empty")) == ["nested"])
        #expect(try recovered.readText("work/.git/HEAD") == "ref2")
        try recovered.flush()
        #expect(try fx.tree(at: .change(#require(recovered.status().workingChange))) == ["file": "f"])
    }

    @Test func branchedFromForksAnEmptyChangeOnOpen() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let fs = try fx.mount(.branchedFrom(BranchSpec(bookmark: "main", newBookmark: "run-1", describe: "agent run")))
        let fork = try #require(fs.status().workingChange)
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: fork).change.parents == [seed.id])
        #expect(try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "run-1").changeID == fork)
        try fs.writeText("b", "2")
        let saved = try fs.checkpoint(message: "done")
        #expect(saved.savedChange == fork)
        #expect(try fx.tree(at: .bookmark("run-1")) == ["a": "1", "b": "2"])
        #expect(try fx.tree(at: .bookmark("main")) == ["a": "1"])
    }

    @Test func editChangeSwitchesTheViewAndNewChangeStacks() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let other = try fx.store.createChange(org: fx.org, repo: fx.repo, base: .root, message: "",
                                              files: [.upsert(path: "z", content: Array("z".utf8))])
        let fs = try fx.mount()
        let a = try fs.ino("a")
        try fs.writeText("a", "2")
        let first = try fs.newChange()
        try fs.writeText("b", "3")
        try fs.flush()
        let second = try #require(fs.status().workingChange)
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: second).change.parents == [first])
        _ = try fs.editChange(.change(other.id))
        #expect(try fs.list(InodeTable.rootIno) == ["z"])
        try fs.writeText("z", "amended")
        try fs.flush()
        #expect(try fx.tree(at: .change(other.id)) == ["z": "amended"], "edit amends the change itself")
        _ = try fs.editChange(.bookmark("main"))
        #expect(try fs.ino("a") == a, "a path that exists again keeps its inode number")
        #expect(try fs.readText("a") == "1")
    }

    /// Regression: the journal rewrite that records a new working change renumbered the
    /// records, so the compaction after that first upload kept them all, and `editChange`
    /// kept them too. A restart then replayed the old view's edits (here: a deletion)
    /// onto the new revision.
    @Test func editThenRestartDoesNotReplayTheOldView() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1", "b": "2"])
        _ = try fx.store.createBookmark(org: fx.org, repo: fx.repo, bookmark: "side", at: seed.id)
        var fs: RepoFileSystem? = try fx.mount()
        try fs?.unlink(parent: InodeTable.rootIno, name: "a")
        try fs?.writeText("main-only", "m")
        try fs?.mkdirPath("scratch")
        try fs?.flush()
        let manifest = fx.journalDirectory + "/manifest"
        let lines = try String(contentsOfFile: manifest, encoding: .utf8).split(separator: "\n")
        #expect(lines.dropFirst().allSatisfy { $0.contains("mkdir") }, "uploaded records survived compaction: \(lines)")
        _ = try fs?.editChange(.bookmark("side"))
        #expect(try fs?.list(InodeTable.rootIno) == ["a", "b"])
        fs = nil
        let recovered = try fx.mount()
        #expect(try recovered.list(InodeTable.rootIno) == ["a", "b"])
        #expect(recovered.status().pendingUploads == 0)
        #expect(recovered.status().bookmark == "side")
    }

    /// Regression: after someone put the bookmark on the mount's own work (as the
    /// conflict message advises), checkpoint kept failing with CONFLICT.
    @Test func checkpointSucceedsOnceTheBookmarkIsOnTheWork() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let fs = try fx.mount()
        try fs.writeText("b", "2")
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        let elsewhere = try fx.store.createChange(org: fx.org, repo: fx.repo, base: seed.id, message: "other",
                                                  files: [.upsert(path: "c", content: Array("3".utf8))])
        _ = try fx.store.moveBookmark(org: fx.org, repo: fx.repo, bookmark: "main", to: elsewhere.id)
        #expect(throws: MesaError.self) { try fs.checkpoint(message: "mine") }
        _ = try fx.store.moveBookmark(org: fx.org, repo: fx.repo, bookmark: "main", to: working, allowBackwards: true)
        let saved = try fs.checkpoint(message: "mine")
        #expect(saved.savedChange == working)
        #expect(fs.status().workingChange == nil)
        try fs.writeText("d", "4")
        #expect(try fs.checkpoint(message: nil).savedChange != working)
        #expect(try fx.tree(at: .bookmark("main")) == ["a": "1", "b": "2", "d": "4"])
    }
}
