import Foundation
import Model
import Store
import Testing

@Suite struct MergeTests {
    /// main and feature both start at `base` (f1, f2, shared) and then diverge:
    /// feature edits f1 (or `shared` when `conflicting`), main edits f2 (and `shared`).
    struct Diverged {
        let base: Change
        let mainTip: Change
        let featureTip: Change
    }

    func diverge(_ fx: Fixture, conflicting: Bool = false) throws -> Diverged {
        try fx.makeRepo()
        let base = try fx.change(["f1.txt": "one\n", "f2.txt": "two\n", "shared.txt": "a\nb\nc\n"])
        try fx.move("main", to: base)
        try fx.bookmark("feature", at: base)
        let featureFiles = conflicting ? ["shared.txt": "a\nFEATURE\nc\n"] : ["f1.txt": "one from feature\n"]
        let featureTip = try fx.change(featureFiles, base: base.id)
        try fx.move("feature", to: featureTip)
        let mainFiles = conflicting ? ["shared.txt": "a\nMAIN\nc\n"] : ["f2.txt": "two from main\n"]
        let mainTip = try fx.change(mainFiles, base: base.id)
        try fx.move("main", to: mainTip)
        return Diverged(base: base, mainTip: mainTip, featureTip: featureTip)
    }

    @Test func mergingABookmarkAtTheSameChangeIsANoOp() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.move("main", to: a)
        try fx.bookmark("feature", at: a)
        let result = try fx.merge(target: "main", source: "feature")
        #expect(result.mergeType == .noOp)
        #expect(result.changeID == a.id)
        #expect(result.commitOID == a.commitOID)
        #expect(!result.isConflicted)
        #expect(!result.sourceDeleted)
        #expect(try fx.changeCount() == 1)
        #expect(try fx.bookmark(named: "main").changeID == a.id)
    }

    @Test func mergingAnAncestorIsANoOp() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let b = try fx.change(["b": "b"], base: a.id)
        try fx.move("main", to: b)
        try fx.bookmark("old", at: a)
        _ = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "empty", at: .root)
        #expect(try fx.merge(target: "main", source: "old").mergeType == .noOp)
        #expect(try fx.merge(target: "main", source: "empty").mergeType == .noOp)
        #expect(try fx.bookmark(named: "main").changeID == b.id)
        #expect(try fx.changeCount() == 2)
    }

    @Test func mergingDivergedBookmarksMakesATwoParentMergeCommit() throws {
        let fx = try Fixture()
        let state = try diverge(fx)
        let result = try fx.merge(target: "main", source: "feature", message: "merge it")
        #expect(result.mergeType == .mergeCommit)
        #expect(result.target == "main" && result.source == "feature")
        #expect(!result.isConflicted)
        let commit = try #require(result.commitOID)
        #expect(![state.base.id, state.mainTip.id, state.featureTip.id].contains(result.changeID), "a merge is a new change")

        let main = try fx.bookmark(named: "main")
        #expect(main.changeID == result.changeID)
        #expect(main.commitOID == commit)
        #expect(try fx.text("f1.txt", at: .head) == "one from feature\n")
        #expect(try fx.text("f2.txt", at: .head) == "two from main\n")
        #expect(try fx.bookmark(named: "feature").changeID == state.featureTip.id)

        let change = try fx.store.change(org: fx.org, repo: "proj", id: result.changeID).change
        #expect(change.parents == [state.mainTip.id, state.featureTip.id])
        #expect(change.message == "merge it")
        #expect(change.commitOID == commit)

        let text = try fx.git("-C", fx.gitDirectory(), "cat-file", "-p", commit)
        let parents = text.split(separator: "\n").filter { $0.hasPrefix("parent ") }
        #expect(parents == ["parent \(state.mainTip.commitOID)", "parent \(state.featureTip.commitOID)"])
        #expect(text.contains("change-id \(result.changeID.rawValue)\n"))
        let ref = try fx.git("-C", fx.gitDirectory(), "rev-parse", "refs/heads/main")
        #expect(ref.trimmingCharacters(in: .whitespacesAndNewlines) == commit)
        #expect(try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "main").items.map(\.id).sorted()
                == [result.changeID, state.base.id, state.mainTip.id, state.featureTip.id].sorted())
    }

    @Test func mergeConflictFailsWithThePathsAndChangesNothing() throws {
        let fx = try Fixture()
        let state = try diverge(fx, conflicting: true)
        let refBefore = try fx.git("-C", fx.gitDirectory(), "rev-parse", "refs/heads/main")
        let error = expectStoreError(.mergeConflict) {
            try fx.merge(target: "main", source: "feature", deleteSource: true)
        }
        #expect(error?.paths == ["shared.txt"])
        #expect(error?.message.contains("shared.txt") == true)
        #expect(try fx.bookmark(named: "main").changeID == state.mainTip.id)
        #expect(try fx.bookmark(named: "feature").changeID == state.featureTip.id,
                "deleteSource must not delete a source that was not merged")
        #expect(try fx.changeCount() == 3)
        #expect(try fx.git("-C", fx.gitDirectory(), "rev-parse", "refs/heads/main") == refBefore)
        #expect(try fx.text("shared.txt", at: .head) == "a\nMAIN\nc\n")
    }

    @Test func allowConflictedMergeRecordsConflictedPathsWithMarkers() throws {
        let fx = try Fixture()
        let state = try diverge(fx, conflicting: true)
        let result = try fx.merge(target: "main", source: "feature", allowConflicted: true)
        #expect(result.mergeType == .mergeCommit)
        #expect(result.isConflicted)
        #expect(result.conflicts == ["shared.txt"])
        let change = try fx.store.change(org: fx.org, repo: "proj", id: result.changeID).change
        #expect(change.isConflicted)
        #expect(change.conflicts == ["shared.txt"])
        #expect(try fx.bookmark(named: "main").changeID == result.changeID)

        let text = try #require(try fx.text("shared.txt", at: .head))
        #expect(text.contains("<<<<<<<"))
        #expect(text.contains("======="))
        #expect(text.contains(">>>>>>>"))
        #expect(text.contains("MAIN") && text.contains("FEATURE"))
        // Non-conflicting files are merged normally.
        #expect(try fx.text("f1.txt", at: .head) == "one\n")
        _ = state

        // Resolving the path by amending clears the conflict.
        let resolved = try fx.store.updateChange(org: fx.org, repo: "proj", id: result.changeID,
                                                 files: [.upsert(path: "shared.txt", content: bytes("a\nBOTH\nc\n"))])
        #expect(!resolved.isConflicted)
        #expect(try !fx.store.change(org: fx.org, repo: "proj", id: result.changeID).change.isConflicted)
    }

    @Test func fileAgainstDirectoryIsAMergeConflictThatChangesNothing() throws {
        let fx = try Fixture(repo: "proj")
        let ours = try fx.fork(base: ["keep": "k"], theirs: ["x/y": "inside\n"], ours: ["x": "file\n"]).ours
        for allowConflicted in [false, true] {
            let error = expectStoreError(.mergeConflict) {
                try fx.merge(target: "main", source: "feature", allowConflicted: allowConflicted)
            }
            #expect(error?.paths.contains("x") == true, "\(String(describing: error))")
            #expect(try fx.bookmark(named: "main").changeID == ours.id)
            #expect(try fx.changeCount() == 3)
        }
    }

    @Test func modifyAgainstDeleteIsAConflict() throws {
        let fx = try Fixture(repo: "proj")
        try fx.fork(base: ["a": "1\n"], theirs: [:], theirsDeleting: ["a"], ours: ["a": "2\n"])
        let error = expectStoreError(.mergeConflict) {
            try fx.merge(target: "main", source: "feature")
        }
        #expect(error?.paths == ["a"])
        let result = try fx.merge(target: "main", source: "feature", allowConflicted: true)
        #expect(result.conflicts == ["a"])
        try fx.git("-C", fx.gitDirectory(), "fsck", "--strict", "--no-dangling")
    }

    @Test func mergeWithDeleteSourceRemovesTheSourceBookmark() throws {
        let fx = try Fixture()
        _ = try diverge(fx)
        let result = try fx.merge(target: "main", source: "feature", deleteSource: true)
        #expect(result.mergeType == .mergeCommit)
        #expect(result.sourceDeleted)
        expectStoreError(.notFound) { try fx.bookmark(named: "feature") }
        let ref = try fx.gitStatus("-C", fx.gitDirectory(), "rev-parse", "--verify", "--quiet", "refs/heads/feature")
        #expect(ref.status != 0, "refs/heads/feature must be gone")
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["main"])
    }

    @Test func noOpMergeWithDeleteSourceAlsoRemovesTheSource() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.move("main", to: a)
        try fx.bookmark("done", at: a)
        let result = try fx.merge(target: "main", source: "done", deleteSource: true)
        #expect(result.mergeType == .noOp)
        #expect(result.sourceDeleted)
        expectStoreError(.notFound) { try fx.bookmark(named: "done") }
    }

    @Test func mergeRefusesToDeleteTheDefaultBookmarkAsSource() throws {
        let fx = try Fixture()
        _ = try diverge(fx)
        let featureBefore = try fx.bookmark(named: "feature")
        expectStoreError(.invalidArgument) {
            try fx.merge(target: "feature", source: "main", deleteSource: true)
        }
        #expect(try fx.bookmark(named: "feature") == featureBefore)
        #expect(try fx.changeCount() == 3)
    }

    @Test func mergingABookmarkIntoItselfWithDeleteSourceIsRefused() throws {
        let fx = try Fixture()
        _ = try diverge(fx)
        let before = try fx.bookmark(named: "feature")
        expectStoreError(.invalidArgument) {
            try fx.merge(target: "feature", source: "feature", deleteSource: true)
        }
        #expect(try fx.bookmark(named: "feature") == before)
        #expect(try fx.merge(target: "feature", source: "feature").mergeType == .noOp)
    }

    @Test func mergeRefusesBadAuthorsAndChangesNothing() throws {
        let fx = try Fixture()
        let state = try diverge(fx)
        expectStoreError(.invalidArgument) {
            try fx.merge(target: "main", source: "feature",
                                       authors: [Signature(name: "x>y", email: "x@y")])
        }
        #expect(try fx.bookmark(named: "main").changeID == state.mainTip.id)
        #expect(try fx.changeCount() == 3)
    }

    @Test func mergeWithMissingBookmarkIsNotFound() throws {
        let fx = try Fixture()
        _ = try diverge(fx)
        expectStoreError(.notFound) { try fx.merge(target: "main", source: "ghost") }
        expectStoreError(.notFound) { try fx.merge(target: "ghost", source: "feature") }
        #expect(try fx.changeCount() == 3)
    }

    @Test func mergingIntoABookmarkAtRootBringsInTheSource() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.bookmark("feature", at: a)
        let result = try fx.merge(target: "main", source: "feature")
        #expect(result.mergeType == .mergeCommit)
        #expect(try fx.files(at: .head) == ["a"])
        try fx.git("-C", fx.gitDirectory(), "fsck", "--strict", "--no-dangling")
    }
}
