import Foundation
import MesaAPI
import MesaIgnore
import Model
@testable import Mount
import Store
import Testing

/// `RevisionView` alone: which revision a mount shows, and the backend conversations
/// that move it, over the fixture's store. No inodes, no journal.
@Suite struct RevisionViewTests {
    private func tip(_ fx: MountFixture, _ bookmark: String = "main") throws -> ChangeID {
        try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: bookmark).changeID
    }

    /// A view of `main` as the mount last saw it, optionally with a working change.
    private func view(_ fx: MountFixture, backend: (any Backend)? = nil, working: ChangeID? = nil,
                      bookmark: String? = "main") throws -> RevisionView {
        let seen = try tip(fx)
        let header = JournalHeader(org: fx.org, repo: fx.repo, bookmark: bookmark, bookmarkExpected: bookmark == nil ? nil : seen.rawValue,
                                   base: seen.rawValue, working: working?.rawValue, baseTime: Timestamp.now())
        return try RevisionView(org: fx.org, repo: fx.repo, header: header, backend: backend ?? fx.backend)
    }

    private func configuration(_ fx: MountFixture, _ target: MountTarget, mode: MountMode = .rw) -> MountConfiguration {
        MountConfiguration(org: fx.org, repo: fx.repo, target: target, mode: mode, journalDirectory: fx.journalDirectory)
    }

    @Test func resolvingATargetNamesItsChangeAndBranchingForksOne() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let main = try RevisionView.resolve(configuration(fx, .bookmark(nil)), fx.backend)
        #expect(main.bookmark == "main" && main.bookmarkExpected == seed.id.rawValue && main.base == seed.id.rawValue)
        #expect(main.working == nil)
        let pinned = try RevisionView.resolve(configuration(fx, .change(seed.id)), fx.backend)
        #expect(pinned.bookmark == nil && pinned.base == seed.id.rawValue && pinned.working == nil)

        let spec = BranchSpec(bookmark: "main", newBookmark: "feature", describe: "try")
        expectErrno(EINVAL) { try RevisionView.resolve(configuration(fx, .branchedFrom(spec), mode: .ro), fx.backend) }
        #expect(throws: (any Error).self) { try tip(fx, "feature") }
        let branched = try RevisionView.resolve(configuration(fx, .branchedFrom(spec)), fx.backend)
        let fork = try #require(branched.working)
        #expect(branched.base == seed.id.rawValue && branched.bookmark == "feature" && branched.bookmarkExpected == fork)
        #expect(try tip(fx, "feature").rawValue == fork)
        let change = try fx.store.change(org: fx.org, repo: fx.repo, id: ChangeID(fork)).change
        #expect(change.parents == [seed.id] && change.message == "try")
    }

    @Test func checkpointMovesTheBookmarkOntoTheWorkAndStartsFresh() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let work = try fx.store.createChange(org: fx.org, repo: fx.repo, base: seed.id, message: "",
                                             files: [.upsert(path: "b", content: Array("2".utf8), mode: .regular)])
        let revision = try view(fx, working: work.id)
        let result = try revision.checkpoint(message: "saved")
        #expect(result == CheckpointResult(savedChange: work.id, created: true, bookmark: "main"))
        #expect(try tip(fx) == work.id)
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: work.id).change.message == "saved")
        let now = revision.current
        #expect(now.base == work.id && now.working == nil && now.bookmarkExpected == work.id)
        #expect(revision.header.working == nil && revision.header.base == work.id.rawValue)
        // Nothing new: the bookmark is already there, nothing is created.
        #expect(try revision.checkpoint(message: nil) == CheckpointResult(savedChange: work.id, created: false, bookmark: "main"))
    }

    @Test func aBookmarkMovedByOthersIsATransientConflictThatChangesNothing() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let work = try fx.store.createChange(org: fx.org, repo: fx.repo, base: seed.id, message: "", files: [])
        let revision = try view(fx, working: work.id)
        let theirs = try fx.seed(["theirs": "x"])
        let before = revision.header
        do {
            _ = try revision.checkpoint(message: "mine")
            Issue.record("checkpoint should fail")
        } catch {
            #expect(error.errorClass == .transient && error.code == .conflict)
            #expect(error.message.contains("moved") && error.message.contains("\(work.id)"))
        }
        #expect(revision.header == before)
        #expect(try tip(fx) == theirs.id)
        // The user puts the bookmark on the work (as the message advises): nothing is left to move.
        _ = try fx.store.moveBookmark(org: fx.org, repo: fx.repo, bookmark: "main", to: work.id, allowBackwards: true)
        #expect(try revision.checkpoint(message: nil).savedChange == work.id)
        #expect(revision.current.bookmarkExpected == work.id && revision.current.working == nil)
    }

    @Test func startingANewChangeStacksItOnTheWorkingOne() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let work = try fx.store.createChange(org: fx.org, repo: fx.repo, base: seed.id, message: "", files: [])
        let revision = try view(fx, working: work.id)
        #expect(revision.startNewChange() == work.id)
        #expect(revision.current.base == work.id && revision.current.working == nil)
        #expect(revision.current.bookmarkExpected == seed.id, "the bookmark does not move")
        #expect(revision.startNewChange() == work.id, "without a working change the base stays")
    }

    @Test func switchingEditsAChangeInPlaceOrShowsABookmark() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let work = try fx.store.createChange(org: fx.org, repo: fx.repo, base: seed.id, message: "", files: [])
        let revision = try view(fx)
        revision.noteFailure("an old upload error")
        let edited = try revision.switchTo(.change(work.id), readOnly: false)
        #expect(edited.bookmark == nil && edited.bookmarkExpected == nil)
        #expect(edited.base == seed.id && edited.working == work.id && edited.lastError == nil)
        #expect(revision.current.working == work.id)
        let shown = try revision.switchTo(.change(work.id), readOnly: true)
        #expect(shown.base == work.id && shown.working == nil)
        let back = try revision.switchTo(.bookmark("main"), readOnly: false)
        #expect(back.bookmark == "main" && back.bookmarkExpected == seed.id && back.base == seed.id && back.working == nil)

        // An unknown target is refused and changes nothing.
        let before = revision.header
        #expect(throws: MesaError.self) { try revision.switchTo(.bookmark("nope"), readOnly: false) }
        #expect(revision.header == before)
    }

    @Test func aMovedBookmarkIsReportedAndFollowedOnlyWhenAsked() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        #expect(try view(fx, bookmark: nil).checkBookmark() == .pinned)
        let revision = try view(fx)
        #expect(try revision.checkBookmark() == .unchanged)
        let next = try fx.seed(["b": "2"])
        #expect(try revision.checkBookmark() == .moved(bookmark: "main", from: seed.id, to: next.id))
        #expect(revision.current.base == seed.id, "asking changes nothing")
        #expect(revision.stillShows("main", at: seed.id) && !revision.stillShows("other", at: seed.id))
        let header = try revision.followHeader("main", to: next.id)
        #expect(header.base == next.id.rawValue && header.bookmarkExpected == next.id.rawValue && header.working == nil)
        revision.follow(to: next.id, baseTime: header.baseTime)
        #expect(revision.header == header)
        #expect(try revision.checkBookmark() == .unchanged)
        let changed = revision.changedPaths(from: seed.id, to: next.id)
        #expect(changed.paths == ["b"] && changed.complete)
        #expect(revision.changedPaths(from: nil, to: next.id).complete == false)
    }

    @Test func aBackendThatCannotBeAskedChangesNothing() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["a": "1"])
        let work = try fx.store.createChange(org: fx.org, repo: fx.repo, base: seed.id, message: "", files: [])
        let faulty = FaultInjectingBackend(wrapping: fx.backend)
        let revision = try view(fx, backend: faulty, working: work.id)
        let before = revision.header
        faulty.setOffline(true)
        #expect(throws: MesaError.self) { try revision.checkBookmark() }
        #expect(throws: MesaError.self) { try revision.checkpoint(message: "x") }
        #expect(throws: MesaError.self) { try revision.switchTo(.bookmark("main"), readOnly: false) }
        #expect(revision.header == before)
        #expect(try tip(fx) == seed.id)
    }

    @Test func localWorkHoldsAFollowBackAndSaysWhy() throws {
        let now = Timestamp.now()
        let root = Node(ino: InodeTable.rootIno, parent: InodeTable.rootIno, name: "", kind: .directory, permissions: 0o755,
                        uid: 0, gid: 0, size: 4096, atime: now, mtime: now, ctime: now, content: .none, children: [:])
        var table = InodeTable(root: root)
        let rules = IgnoreRules(mesaignore: nil)
        #expect(RevisionView.heldBackReason(working: nil, table: table, openForWriting: false, rules: rules) == nil)
        let working = try ChangeID(String(repeating: "k", count: 32))
        #expect(RevisionView.heldBackReason(working: working, table: table, openForWriting: false, rules: rules)?
            .contains("working change") == true)
        #expect(RevisionView.heldBackReason(working: nil, table: table, openForWriting: true, rules: rules)?
            .contains("open for writing") == true)
        table.touch("x")
        #expect(RevisionView.heldBackReason(working: nil, table: table, openForWriting: false, rules: rules)?
            .contains("not uploaded") == true)
        table.touched = [:]
        table.insert(Node(ino: table.allocateIno(), parent: InodeTable.rootIno, name: ".git", kind: .directory, permissions: 0o755,
                          uid: 0, gid: 0, size: 4096, atime: now, mtime: now, ctime: now, content: .none, children: [:]))
        #expect(RevisionView.heldBackReason(working: nil, table: table, openForWriting: false, rules: rules)?
            .contains(".git tree") == true)
    }
}
