import Foundation
import Model
import Store
import Testing

@Suite struct ChangeTests {
    // MARK: Create

    @Test func createChangeOnRootStoresFilesWithTheirModes() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, message: "first", files: [
            .upsert(path: "README.md", content: bytes("# hello\n")),
            .upsert(path: "bin/run.sh", content: bytes("#!/bin/sh\necho hi\n"), mode: .executable),
            .upsert(path: "docs/link", content: bytes("../README.md"), mode: .symlink),
        ])
        #expect(change.parents == [.root])
        #expect(change.message == "first")
        #expect(change.conflicts.isEmpty)

        guard case .file(_, let readme, .regular, _) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "README.md") else {
            Issue.record("README.md is not a regular file"); return
        }
        #expect(readme.text == "# hello\n")
        guard case .file(_, let script, .executable, _) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "bin/run.sh") else {
            Issue.record("bin/run.sh is not executable"); return
        }
        #expect(script.text == "#!/bin/sh\necho hi\n")
        guard case .symlink(_, let target, _) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "docs/link") else {
            Issue.record("docs/link is not a symlink"); return
        }
        #expect(target == "../README.md")

        // The same modes are what git records.
        let tree = try fx.git("-C", fx.gitDirectory(), "ls-tree", "-r", change.commitOID)
        #expect(tree.contains("100644 blob") && tree.contains("\tREADME.md"))
        #expect(tree.contains("100755 blob") && tree.contains("\tbin/run.sh"))
        #expect(tree.contains("120000 blob") && tree.contains("\tdocs/link"))
    }

    @Test func changeIDsAre32ReverseHexCharactersAndUnique() throws {
        let fx = try Fixture(repo: "proj")
        var ids = Set<ChangeID>()
        for index in 0..<20 {
            let change = try fx.change(["f.txt": "\(index)"])
            #expect(change.id.rawValue.count == 32)
            #expect(change.id.rawValue.allSatisfy { ("k"..."z").contains($0) }, "\(change.id) has characters outside k..z")
            #expect(!change.id.isRoot)
            #expect(try ChangeID(change.id.rawValue) == change.id)
            ids.insert(change.id)
        }
        #expect(ids.count == 20)
        #expect(ChangeID.root.rawValue == String(repeating: "z", count: 32))
    }

    @Test func commitCarriesChangeIDHeaderAuthorAndParent() throws {
        let fx = try Fixture(repo: "proj")
        let parent = try fx.change(["a.txt": "a"])
        let child = try fx.store.createChange(
            org: fx.org, repo: "proj", base: parent.id, message: "second\n\nwith a body",
            authors: [Signature(name: "Ada Lovelace", email: "ada@example.com")],
            files: [.upsert(path: "b.txt", content: bytes("b"))])

        let rootCommit = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", parent.commitOID)
        #expect(rootCommit.split(separator: "\n").contains("change-id \(parent.id.rawValue)"))
        #expect(!rootCommit.contains("\nparent "), "a change on the root has no parent commit")

        let text = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", child.commitOID)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.contains("change-id \(child.id.rawValue)"))
        #expect(lines.contains("parent \(parent.commitOID)"))
        #expect(lines.contains { $0.hasPrefix("author Ada Lovelace <ada@example.com> ") })
        #expect(text.hasSuffix("\n\nsecond\n\nwith a body") || text.hasSuffix("\n\nsecond\n\nwith a body\n"))
        let type = try fx.git("-C", fx.gitDirectory(), "cat-file", "-t", child.commitOID)
        #expect(type == "commit\n")
    }

    @Test func changeWithEmptyMessageIsAValidCommit() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a.txt": "a"], message: "")
        let text = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", change.commitOID)
        #expect(text.contains("change-id \(change.id.rawValue)\n"))
        try fx.git("-C", fx.gitDirectory(), "fsck", "--strict", "--no-dangling")
    }

    @Test func createChangeAppliesDeletesOfFilesAndDirectories() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["keep.txt": "k", "gone.txt": "g", "dir/a.txt": "a", "dir/sub/b.txt": "b", "other/c.txt": "c"])
        let child = try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [
            .delete(path: "gone.txt"),
            .delete(path: "dir"),
            .delete(path: "other/c.txt"),
        ])
        #expect(try fx.files(at: .change(child.id)) == ["keep.txt"])
        expectStoreError(.notFound) { try fx.store.content(org: fx.org, repo: "proj", at: .change(child.id), path: "other") }
        // The base is untouched.
        #expect(try fx.files(at: .change(base.id)) == ["dir/a.txt", "dir/sub/b.txt", "gone.txt", "keep.txt", "other/c.txt"])
    }

    @Test func deletingEverythingLeavesAnEmptyTree() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["a.txt": "a"])
        let empty = try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [.delete(path: "a.txt")])
        guard case .directory(_, let oid, let entries) = try fx.store.content(org: fx.org, repo: "proj", at: .change(empty.id)) else {
            Issue.record("root is not a directory"); return
        }
        #expect(entries.isEmpty)
        #expect(oid == "4b825dc642cb6eb9a060e54bf8d69288fbee4904")
    }

    @Test func laterOperationsInOneChangeOverrideEarlierOnes() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [
            .upsert(path: "a.txt", content: bytes("one")),
            .upsert(path: "a.txt", content: bytes("two")),
            .upsert(path: "b.txt", content: bytes("b")),
            .delete(path: "b.txt"),
        ])
        #expect(try fx.files(at: .change(change.id)) == ["a.txt"])
        #expect(try fx.text("a.txt", at: .change(change.id)) == "two")
    }

    @Test func createChangeOnMissingBaseOrRepoIsNotFound() throws {
        let fx = try Fixture(repo: "proj")
        let unknown = try ChangeID(String(repeating: "k", count: 32))
        expectStoreError(.notFound) { try fx.change(["a": "a"], base: unknown) }
        expectStoreError(.notFound) { try fx.change(["a": "a"], repo: "nope") }
        #expect(try fx.changeCount() == 0)
    }

    @Test func changesOfOneRepoAreInvisibleInAnother() throws {
        let fx = try Fixture()
        try fx.makeRepo("one")
        try fx.makeRepo("two")
        let change = try fx.change(["a": "a"], repo: "one")
        expectStoreError(.notFound) { try fx.store.change(org: fx.org, repo: "two", id: change.id) }
        expectStoreError(.notFound) { try fx.change(["b": "b"], base: change.id, repo: "two") }
    }

    // MARK: Invalid ids and operations

    @Test(arguments: ["", "abc", String(repeating: "a", count: 32), String(repeating: "Z", count: 32),
                      String(repeating: "z", count: 31), String(repeating: "z", count: 33),
                      String(repeating: "z", count: 31) + "j", String(repeating: "z", count: 30) + "é"])
    func invalidChangeIDsAreRefused(_ text: String) {
        expectStoreError(.invalidArgument) { try ChangeID(text) }
    }

    @Test func deletingAMissingPathFailsAndCreatesNothing() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["a.txt": "a"])
        let error = expectStoreError(.notFound) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [
                .upsert(path: "new.txt", content: bytes("n")), .delete(path: "missing.txt"),
            ])
        }
        #expect(error?.message.contains("missing.txt") == true)
        expectStoreError(.notFound) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [.delete(path: "a.txt/below")])
        }
        expectStoreError(.notFound) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: base.id, files: [.delete(path: "nothing/here")])
        }
        #expect(try fx.changeCount() == 1)
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: base.id).change == base)
    }

    @Test func deletingAFileThenWritingBelowItTurnsItIntoADirectory() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["a": "file"])
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [
            .delete(path: "a"), .upsert(path: "a/b", content: bytes("inside")),
        ])
        #expect(try fx.files(at: .change(change.id)) == ["a/b"])
        #expect(try fx.text("a/b", at: .change(change.id)) == "inside")
        guard case .directory = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "a") else {
            Issue.record("a is not a directory"); return
        }
    }

    @Test func writingBelowAFileFailsAndChangesNothing() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["a": "file", "d/x": "x"])
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [.upsert(path: "a/b", content: bytes("b"))])
        }
        // The reverse clash: a file where a directory is.
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [.upsert(path: "d", content: bytes("d"))])
        }
        expectStoreError(.invalidArgument) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: base.id, files: [.upsert(path: "a/b", content: bytes("b"))])
        }
        #expect(try fx.changeCount() == 1)
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: base.id).change.commitOID == base.commitOID)
        #expect(try fx.store.changeEvolution(org: fx.org, repo: "proj", id: base.id) == [base.commitOID])
        #expect(try fx.text("a", at: .change(base.id)) == "file")
    }

    @Test func symlinkWithEmptyTargetIsRefused() throws {
        let fx = try Fixture(repo: "proj")
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [.upsert(path: "l", content: [], mode: .symlink)])
        }
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [.upsert(path: "l", content: [0x61, 0, 0x62], mode: .symlink)])
        }
        #expect(try fx.changeCount() == 0)
    }

    @Test func authorsThatWouldBreakTheCommitHeaderAreRefused() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["a": "a"])
        let bad = [Signature(name: "Eve <eve@evil>", email: "e@x"), Signature(name: "Line\nBreak", email: "l@x"),
                   Signature(name: "Mail", email: "m\n@x"), Signature(name: "Angle", email: "<a@x>"),
                   Signature(name: "No mail", email: "")]
        for signature in bad {
            expectStoreError(.invalidArgument) {
                try fx.store.createChange(org: fx.org, repo: "proj", base: .root, authors: [signature], files: [.upsert(path: "x", content: [])])
            }
            expectStoreError(.invalidArgument) {
                try fx.store.createChange(org: fx.org, repo: "proj", base: .root, committer: signature, files: [.upsert(path: "x", content: [])])
            }
            expectStoreError(.invalidArgument) {
                try fx.store.updateChange(org: fx.org, repo: "proj", id: base.id, authors: [signature])
            }
        }
        #expect(try fx.changeCount() == 1)
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: base.id).change == base)
    }

    @Test func blankAuthorNameIsRecordedAsUnknown() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root,
                                               authors: [Signature(name: "  ", email: "someone@example.com")],
                                               files: [.upsert(path: "x", content: [])])
        let text = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", change.commitOID)
        #expect(text.contains("\nauthor unknown <someone@example.com> "))
        try fx.git("-C", fx.gitDirectory(), "fsck", "--strict", "--no-dangling")
    }

    @Test func fileModesParseOnlyTheThreeGitModes() throws {
        #expect(try FileMode(parsing: "100644") == .regular)
        #expect(try FileMode(parsing: "100755") == .executable)
        #expect(try FileMode(parsing: "120000") == .symlink)
        for text in ["100600", "040000", "160000", "644", ""] {
            expectStoreError(.invalidArgument) { try FileMode(parsing: text) }
        }
    }

    // MARK: Update (amend)

    @Test func amendKeepsTheChangeIDAndRecordsTheOldCommit() throws {
        let fx = try Fixture(repo: "proj")
        let original = try fx.change(["a.txt": "v1"], message: "draft")
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id, message: "final",
                                                files: [.upsert(path: "a.txt", content: bytes("v2")), .upsert(path: "b.txt", content: bytes("b"))])
        #expect(amended.id == original.id)
        #expect(amended.commitOID != original.commitOID)
        #expect(amended.message == "final")
        #expect(amended.parents == original.parents)
        #expect(amended.createdAt == original.createdAt)

        let detail = try fx.store.change(org: fx.org, repo: "proj", id: original.id)
        #expect(detail.change.commitOID == amended.commitOID)
        #expect(detail.change.message == "final")
        #expect(try fx.text("a.txt", at: .change(original.id)) == "v2")
        #expect(try fx.files(at: .change(original.id)) == ["a.txt", "b.txt"])

        #expect(try fx.store.changeEvolution(org: fx.org, repo: "proj", id: original.id) == [original.commitOID, amended.commitOID])
        // The predecessor commit is still in the git repository, and still carries the same change id.
        try fx.git("-C", fx.gitDirectory(), "cat-file", "-e", original.commitOID)
        let newCommit = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", amended.commitOID)
        #expect(newCommit.contains("change-id \(original.id.rawValue)\n"))
        #expect(try fx.changeCount() == 1, "an amend does not add a change")
    }

    @Test func amendOnlyTheMessageKeepsTheTree() throws {
        let fx = try Fixture(repo: "proj")
        let original = try fx.change(["a.txt": "v1"], message: "draft")
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id, message: "reworded")
        #expect(amended.commitOID != original.commitOID)
        let oldTree = try fx.git("-C", fx.gitDirectory(), "rev-parse", original.commitOID + "^{tree}")
        let newTree = try fx.git("-C", fx.gitDirectory(), "rev-parse", amended.commitOID + "^{tree}")
        #expect(oldTree == newTree)
        // Nothing to change: no new commit.
        let same = try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id, message: "reworded")
        #expect(same.commitOID == amended.commitOID)
        #expect(try fx.store.changeEvolution(org: fx.org, repo: "proj", id: original.id).count == 2)
    }

    @Test func amendRecordsANewCommitterDateAndKeepsTheAuthorDate() throws {
        let fx = try Fixture(repo: "proj")
        let past = Date(timeIntervalSince1970: 1_600_000_000)
        let original = try fx.store.createChange(org: fx.org, repo: "proj", base: .root,
                                                 authors: [Signature(name: "Ada", email: "ada@example.com", date: past)],
                                                 committer: Signature(name: "Bot", email: "bot@example.com", date: past),
                                                 files: [.upsert(path: "a", content: bytes("1"))])
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id, files: [.upsert(path: "a", content: bytes("2"))])
        let committed = try #require(amended.committer.date)
        #expect(committed.timeIntervalSinceNow > -600, "the amend is committed now, not at \(committed)")
        #expect(amended.committer.name == "Bot")
        let text = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", amended.commitOID)
        #expect(text.contains("\nauthor Ada <ada@example.com> 1600000000 +0000\n"), "\(text)")
        #expect(!text.contains("\ncommitter Bot <bot@example.com> 1600000000 "), "\(text)")
        #expect(text.contains("\ncommitter Bot <bot@example.com> "))
    }

    @Test func amendKeepsTheParentCommit() throws {
        let fx = try Fixture(repo: "proj")
        let parent = try fx.change(["a.txt": "a"])
        let child = try fx.change(["b.txt": "b"], base: parent.id)
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: child.id, files: [.upsert(path: "c.txt", content: bytes("c"))])
        let text = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", amended.commitOID)
        #expect(text.contains("parent \(parent.commitOID)\n"))
        #expect(try fx.files(at: .change(child.id)) == ["a.txt", "b.txt", "c.txt"])
    }

    @Test func amendWithStaleExpectedCommitIsAConflictAndChangesNothing() throws {
        let fx = try Fixture(repo: "proj")
        let original = try fx.change(["a.txt": "v1"])
        let first = try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id,
                                              files: [.upsert(path: "a.txt", content: bytes("v2"))], expectedCommit: original.commitOID)
        expectStoreError(.conflict) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id,
                                      files: [.upsert(path: "a.txt", content: bytes("v3"))], expectedCommit: original.commitOID)
        }
        #expect(try fx.text("a.txt", at: .change(original.id)) == "v2")
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: original.id).change.commitOID == first.commitOID)
        expectStoreError(.invalidArgument) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: original.id, message: "x", expectedCommit: "not-an-oid")
        }
    }

    @Test func rootChangeCannotBeAmended() throws {
        let fx = try Fixture(repo: "proj")
        expectStoreError(.invalidArgument) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: .root, files: [.upsert(path: "a", content: bytes("a"))])
        }
        #expect(try fx.files(at: .change(.root)).isEmpty)
    }

    @Test func amendingAMissingChangeIsNotFound() throws {
        let fx = try Fixture(repo: "proj")
        let unknown = try ChangeID(String(repeating: "y", count: 32))
        expectStoreError(.notFound) { try fx.store.updateChange(org: fx.org, repo: "proj", id: unknown, message: "m") }
        expectStoreError(.notFound) { try fx.store.changeEvolution(org: fx.org, repo: "proj", id: unknown) }
        expectStoreError(.notFound) { try fx.store.change(org: fx.org, repo: "proj", id: unknown) }
    }

    // MARK: Get and list

    @Test func changeDetailListsTheFilesItTouches() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["x.txt": "x", "y.txt": "y", "same.txt": "s"])
        let child = try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [
            .upsert(path: "x.txt", content: bytes("x2")), .delete(path: "y.txt"),
            .upsert(path: "z/w.txt", content: bytes("w")), .upsert(path: "same.txt", content: bytes("s")),
        ])
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: child.id).files == ["x.txt", "y.txt", "z/w.txt"])
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: base.id).files == ["same.txt", "x.txt", "y.txt"])
        let root = try fx.store.change(org: fx.org, repo: "proj", id: .root)
        #expect(root.files.isEmpty)
        #expect(root.change.id == .root)
    }

    @Test func listChangesIsNewestFirstAcrossPages() throws {
        let fx = try Fixture(repo: "proj")
        var created: [ChangeID] = []
        var base = ChangeID.root
        for index in 0..<5 {
            let change = try fx.change(["f.txt": "\(index)"], base: base)
            created.append(change.id)
            base = change.id
        }
        var seen: [ChangeID] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try fx.store.listChanges(org: fx.org, repo: "proj", cursor: cursor, limit: 2)
            seen += page.items.map(\.id)
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == created.reversed())
        expectStoreError(.invalidArgument) { try fx.store.listChanges(org: fx.org, repo: "proj", limit: 0) }
        expectStoreError(.invalidArgument) { try fx.store.listChanges(org: fx.org, repo: "proj", limit: 101) }
        expectStoreError(.invalidArgument) { try fx.store.listChanges(org: fx.org, repo: "proj", cursor: "@@@") }
    }

    @Test func listChangesFromABookmarkShowsOnlyItsHistory() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let b = try fx.change(["b": "b"], base: a.id)
        let side = try fx.change(["s": "s"])
        try fx.move("main", to: b)
        try fx.bookmark("side", at: side)
        _ = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "empty", at: .root)

        #expect(try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "main").items.map(\.id) == [b.id, a.id])
        #expect(try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "side").items.map(\.id) == [side.id])
        #expect(try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "empty").items.isEmpty)
        #expect(try fx.store.listChanges(org: fx.org, repo: "proj").items.map(\.id) == [side.id, b.id, a.id])
        expectStoreError(.notFound) { try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "nope") }

        let first = try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "main", limit: 1)
        #expect(first.items.map(\.id) == [b.id])
        let second = try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "main", cursor: first.nextCursor, limit: 1)
        #expect(second.items.map(\.id) == [a.id])
        #expect(second.nextCursor == nil)
    }

    @Test func listChangesFromABookmarkCountsAnAmendedChangeOnce() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "1"])
        // b is built on a's first snapshot; a is then amended.
        let b = try fx.change(["b": "b"], base: a.id)
        let amendedA = try fx.store.updateChange(org: fx.org, repo: "proj", id: a.id, files: [.upsert(path: "a", content: bytes("2"))])
        let c = try fx.change(["c": "c"], base: a.id)
        let merged = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "b", at: b.id)
        #expect(merged.commitOID == b.commitOID)
        try fx.move("main", to: c)
        #expect(try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "b").items.map(\.id) == [b.id, a.id])
        let fromMain = try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "main").items
        #expect(fromMain.map(\.id) == [c.id, a.id])
        #expect(fromMain.last?.commitOID == amendedA.commitOID, "a change is listed with its current commit")
    }
}
