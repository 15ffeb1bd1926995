import Foundation
import Model
import Store
import Testing

@Suite struct DiffTests {
    /// Ten numbered lines, long enough for rename detection to see similarity.
    static let story = (1...10).map { "line \($0) of a story that is long enough to be recognised" }.joined(separator: "\n") + "\n"

    /// base: keep.txt, old.txt, mod.txt, story.txt; head: old.txt deleted, mod.txt edited,
    /// new.txt added, story.txt renamed to moved/story.txt.
    func makePair(_ fx: Fixture) throws -> (base: Change, head: Change) {
        try fx.makeRepo()
        let base = try fx.change(["keep.txt": "same\n", "old.txt": "going away\n", "mod.txt": "one\ntwo\nthree\n",
                                  "story.txt": Self.story])
        let head = try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [
            .delete(path: "old.txt"),
            .upsert(path: "mod.txt", content: bytes("one\nTWO\nthree\nfour\n")),
            .upsert(path: "new.txt", content: bytes("fresh\nfile\n")),
            .delete(path: "story.txt"),
            .upsert(path: "moved/story.txt", content: bytes(Self.story)),
        ])
        return (base, head)
    }

    @Test func diffReportsAddedDeletedModifiedAndRenamed() throws {
        let fx = try Fixture()
        let (base, head) = try makePair(fx)
        let diff = try fx.store.diff(org: fx.org, repo: "proj", base: base.id, head: head.id)
        #expect(diff.base == base.id)
        #expect(diff.head == head.id)
        #expect(!diff.truncated)
        let byPath = Dictionary(uniqueKeysWithValues: diff.entries.map { ($0.path, $0) })
        #expect(Set(byPath.keys) == ["old.txt", "mod.txt", "new.txt", "moved/story.txt"], "unchanged files are not listed")
        #expect(byPath["old.txt"]?.status == .deleted)
        #expect(byPath["mod.txt"]?.status == .modified)
        #expect(byPath["new.txt"]?.status == .added)
        #expect(byPath["moved/story.txt"]?.status == .renamed)
        #expect(byPath["moved/story.txt"]?.oldPath == "story.txt")
        #expect(byPath["mod.txt"]?.oldPath == nil)
        #expect(byPath["new.txt"]?.sizeBytes == 11)
        #expect(byPath["old.txt"]?.sizeBytes == 11)
    }

    @Test func textDiffHasHunksWithLineKindsAndCounts() throws {
        let fx = try Fixture()
        let (base, head) = try makePair(fx)
        let diff = try fx.store.diff(org: fx.org, repo: "proj", base: base.id, head: head.id)
        let modified = try #require(diff.entries.first { $0.path == "mod.txt" })
        #expect(!modified.isBinary)
        let hunks = try #require(modified.hunks)
        #expect(hunks.count == 1)
        let hunk = try #require(hunks.first)
        #expect(hunk.oldStart == 1 && hunk.oldLines == 3)
        #expect(hunk.newStart == 1 && hunk.newLines == 4)
        #expect(hunk.lines.map(\.kind) == [.context, .deleted, .added, .context, .added])
        #expect(hunk.lines.map(\.text) == ["one", "two", "TWO", "three", "four"])
        #expect(modified.additions == 2)
        #expect(modified.deletions == 1)

        let added = try #require(diff.entries.first { $0.path == "new.txt" })
        #expect(added.hunks?.first?.lines.map(\.kind) == [.added, .added])
        #expect(added.additions == 2 && added.deletions == 0)
        let deleted = try #require(diff.entries.first { $0.path == "old.txt" })
        #expect(deleted.hunks?.first?.lines.map(\.kind) == [.deleted])
        #expect(deleted.hunks?.first?.lines.map(\.text) == ["going away"])
        let renamed = try #require(diff.entries.first { $0.path == "moved/story.txt" })
        #expect(renamed.additions == 0 && renamed.deletions == 0, "a pure rename changes no lines")
    }

    @Test func missingFinalNewlineIsAnAnnotationNotAChangedLine() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["f": "one\ntwo"])
        let head = try fx.change(["f": "one\nthree"], base: base.id)
        let entry = try #require(try fx.store.diff(org: fx.org, repo: "proj", base: base.id, head: head.id).entries.first)
        let lines = try #require(entry.hunks?.first?.lines)
        #expect(lines.map(\.kind) == [.context, .deleted, .annotation, .added, .annotation])
        #expect(lines.filter { $0.kind == .annotation }.map(\.text) == ["\\ No newline at end of file", "\\ No newline at end of file"])
        #expect(entry.additions == 1 && entry.deletions == 1)
    }

    @Test func diffStatsSumTheEntries() throws {
        let fx = try Fixture()
        let (base, head) = try makePair(fx)
        let diff = try fx.store.diff(org: fx.org, repo: "proj", base: base.id, head: head.id)
        #expect(diff.stats.entries == 4)
        #expect(diff.stats.additions == 4)   // TWO, four, fresh, file
        #expect(diff.stats.deletions == 2)   // two, going away
        #expect(diff.stats.changes == 6)
    }

    @Test func binaryFilesAreMarkedAndCarryNoHunks() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.store.createChange(org: fx.org, repo: "proj", base: .root,
                                             files: [.upsert(path: "image.bin", content: [0x89, 0x50, 0x00, 0x01, 0x02, 0x00, 0x0A])])
        let head = try fx.store.createChange(org: fx.org, repo: "proj", base: base.id,
                                             files: [.upsert(path: "image.bin", content: [0x89, 0x50, 0x00, 0x07, 0x00, 0x0A, 0x0B])])
        let diff = try fx.store.diff(org: fx.org, repo: "proj", base: base.id, head: head.id)
        let entry = try #require(diff.entries.first)
        #expect(diff.entries.count == 1)
        #expect(entry.status == .modified)
        #expect(entry.isBinary)
        #expect(entry.hunks == nil)
        #expect(entry.additions == 0 && entry.deletions == 0)
        let added = try fx.store.diff(org: fx.org, repo: "proj", base: .root, head: base.id)
        #expect(added.entries.first?.isBinary == true)
        #expect(added.entries.first?.status == .added)
    }

    @Test func diffFromRootListsEveryFileAsAdded() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a.txt": "a\n", "dir/b.txt": "b\nb\n"])
        let diff = try fx.store.diff(org: fx.org, repo: "proj", base: .root, head: change.id)
        #expect(diff.entries.map(\.path).sorted() == ["a.txt", "dir/b.txt"])
        #expect(diff.entries.allSatisfy { $0.status == .added })
        #expect(diff.stats.additions == 3)
        // And backwards, everything is deleted.
        let reverse = try fx.store.diff(org: fx.org, repo: "proj", base: change.id, head: .root)
        #expect(reverse.entries.allSatisfy { $0.status == .deleted })
        #expect(reverse.stats.deletions == 3)
    }

    @Test func diffOfAChangeWithItselfIsEmpty() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a.txt": "a\n"])
        let diff = try fx.store.diff(org: fx.org, repo: "proj", base: change.id, head: change.id)
        #expect(diff.entries.isEmpty)
        #expect(diff.stats.entries == 0 && diff.stats.additions == 0 && diff.stats.deletions == 0)
        #expect(try fx.store.diffPatch(org: fx.org, repo: "proj", base: change.id, head: change.id).isEmpty)
    }

    @Test func diffWithUnknownChangeIsNotFound() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a.txt": "a\n"])
        let unknown = try ChangeID(String(repeating: "p", count: 32))
        expectStoreError(.notFound) { try fx.store.diff(org: fx.org, repo: "proj", base: unknown, head: change.id) }
        expectStoreError(.notFound) { try fx.store.diffPatch(org: fx.org, repo: "proj", base: change.id, head: unknown) }
    }

    @Test func diffPatchLooksLikeGitDiffAndAppliesWithGitApply() throws {
        let fx = try Fixture()
        let (base, head) = try makePair(fx)
        let patch = try fx.store.diffPatch(org: fx.org, repo: "proj", base: base.id, head: head.id)
        #expect(patch.contains("diff --git a/mod.txt b/mod.txt\n"))
        #expect(patch.contains("--- a/mod.txt\n+++ b/mod.txt\n"))
        #expect(patch.contains("@@ -1,3 +1,4 @@"))
        #expect(patch.contains("\n-two\n+TWO\n three\n+four\n"))
        #expect(patch.contains("deleted file mode 100644"))
        #expect(patch.contains("new file mode 100644"))
        #expect(patch.contains("rename from story.txt\nrename to moved/story.txt"))

        // git itself can apply it: check out the base, apply, compare with the head's tree.
        try fx.bookmark("base", at: base)
        let clone = fx.scratch("clone")
        try fx.git("clone", "--quiet", "--branch", "base", fx.gitDirectory(), clone)
        let patchFile = fx.scratch("patch")
        try patch.write(toFile: patchFile, atomically: true, encoding: .utf8)
        try fx.git("-C", clone, "apply", "--index", patchFile)
        let applied = try fx.git("-C", clone, "write-tree")
        let expected = try fx.git("-C", fx.gitDirectory(), "rev-parse", "\(head.commitOID)^{tree}")
        #expect(applied == expected)
    }
}
