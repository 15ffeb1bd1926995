import Foundation
import Model
import Store
import Testing

@Suite struct BookmarkTests {
    /// The commit `refs/heads/<name>` points at in git, or nil when the ref does not exist.
    func gitRef(_ fx: Fixture, _ name: String) throws -> String? {
        let result = try fx.gitStatus("-C", fx.gitDirectory(), "rev-parse", "--verify", "--quiet", "refs/heads/\(name)")
        return result.status == 0 ? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    @Test func listBookmarksSortsAndFiltersByGlob() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a": "a"])
        for name in ["release", "feature/b", "feature/a", "fix"] {
            _ = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: name, at: change.id)
        }
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name)
                == ["feature/a", "feature/b", "fix", "main", "release"])
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj", glob: "feature/*").items.map(\.name) == ["feature/a", "feature/b"])
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj", glob: "f*").items.map(\.name) == ["feature/a", "feature/b", "fix"])
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj", glob: "nothing*").items.isEmpty)

        let first = try fx.store.listBookmarks(org: fx.org, repo: "proj", limit: 2)
        #expect(first.items.map(\.name) == ["feature/a", "feature/b"])
        let second = try fx.store.listBookmarks(org: fx.org, repo: "proj", cursor: first.nextCursor, limit: 2)
        #expect(second.items.map(\.name) == ["fix", "main"])
        let third = try fx.store.listBookmarks(org: fx.org, repo: "proj", cursor: second.nextCursor, limit: 2)
        #expect(third.items.map(\.name) == ["release"])
        #expect(third.nextCursor == nil)
        expectStoreError(.invalidArgument) { try fx.store.listBookmarks(org: fx.org, repo: "proj", limit: 101) }
    }

    @Test func getBookmarkReportsItsChangeCommitAndDefaultness() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a": "a"])
        try fx.bookmark("dev", at: change)
        let dev = try fx.bookmark(named: "dev")
        #expect(dev.changeID == change.id)
        #expect(dev.commitOID == change.commitOID)
        #expect(!dev.isDefault)
        expectStoreError(.notFound) { try fx.bookmark(named: "missing") }
    }

    @Test func createBookmarkAtRootHasNoGitRef() throws {
        let fx = try Fixture(repo: "proj")
        let bookmark = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "empty", at: .root)
        #expect(bookmark.changeID == .root)
        #expect(bookmark.commitOID == nil)
        #expect(try gitRef(fx, "empty") == nil)
    }

    @Test func createBookmarkAtChangeWritesGitRef() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a": "a"])
        let bookmark = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "feature/x", at: change.id)
        #expect(bookmark.changeID == change.id)
        #expect(bookmark.commitOID == change.commitOID)
        #expect(try gitRef(fx, "feature/x") == change.commitOID)
    }

    @Test func createBookmarkRefusesDuplicatesBadNamesAndUnknownChanges() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a": "a"])
        try fx.bookmark("dev", at: change)
        expectStoreError(.alreadyExists) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "dev", at: .root) }
        expectStoreError(.alreadyExists) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "main", at: change.id) }
        for name in ["", "a b", "-x", "a..b", "x.lock", "x/", "/x", ".hidden", "a/.b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "@", "a@{1}", "tab\there"] {
            expectStoreError(.invalidArgument) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: name, at: change.id) }
        }
        let unknown = try ChangeID(String(repeating: "m", count: 32))
        expectStoreError(.notFound) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "ghost", at: unknown) }
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["dev", "main"])
        #expect(try fx.bookmark(named: "main").changeID == .root)
        #expect(try fx.bookmark(named: "dev").changeID == change.id)
    }

    @Test func bookmarkThatWouldBeAFolderOfAnotherIsRefused() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.bookmark("feature", at: a)
        try fx.bookmark("hot/fix", at: a)
        _ = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "parked", at: .root)
        let error = expectStoreError(.alreadyExists) {
            try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "feature/x", at: a.id)
        }
        #expect(error?.message.contains("'feature'") == true)
        expectStoreError(.alreadyExists) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "hot", at: a.id) }
        expectStoreError(.alreadyExists) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "main/x", at: .root) }
        // Even a bookmark at the root (which has no ref yet) reserves its name's folder.
        expectStoreError(.alreadyExists) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "parked/x", at: a.id) }
        // Names that merely share a prefix are fine.
        try fx.bookmark("feature-x", at: a)
        try fx.bookmark("hot/fix2", at: a)
        try fx.bookmark("featurex/y", at: a)
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name)
                == ["feature", "feature-x", "featurex/y", "hot/fix", "hot/fix2", "main", "parked"])
        try fx.move("parked", to: a)
        #expect(try gitRef(fx, "parked") == a.commitOID)
    }

    // MARK: Move

    @Test func moveBookmarkForwardUpdatesBookmarkAndGitRef() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let b = try fx.change(["b": "b"], base: a.id)
        let first = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: a.id)
        #expect(first.from == .root)
        #expect(first.bookmark.changeID == a.id)
        #expect(try gitRef(fx, "main") == a.commitOID)
        let second = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: b.id, expectedFrom: a.id)
        #expect(second.from == a.id)
        #expect(second.bookmark.commitOID == b.commitOID)
        #expect(try fx.store.repo(org: fx.org, name: "proj").headChangeID == b.id)
        #expect(try gitRef(fx, "main") == b.commitOID)
        #expect(try fx.files(at: .head) == ["a", "b"])
        // Moving to where it already is is a no-op, not an error.
        #expect(try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: b.id).bookmark.changeID == b.id)
    }

    @Test func moveBookmarkRefusesBackwardsWithoutAllowBackwards() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let b = try fx.change(["b": "b"], base: a.id)
        try fx.move("main", to: b)
        expectStoreError(.invalidArgument) { try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: a.id) }
        expectStoreError(.invalidArgument) { try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: .root) }
        #expect(try fx.bookmark(named: "main").changeID == b.id)
        #expect(try gitRef(fx, "main") == b.commitOID)

        let back = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: a.id, allowBackwards: true)
        #expect(back.from == b.id)
        #expect(back.bookmark.changeID == a.id)
        #expect(try gitRef(fx, "main") == a.commitOID)
    }

    @Test func moveBookmarkSidewaysNeedsAllowBackwards() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let other = try fx.change(["o": "o"])
        try fx.move("main", to: a)
        expectStoreError(.invalidArgument) { try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: other.id) }
        #expect(try fx.bookmark(named: "main").changeID == a.id)
        _ = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: other.id, allowBackwards: true)
        #expect(try fx.bookmark(named: "main").changeID == other.id)
    }

    @Test func moveBookmarkOntoChildOfAmendedChangeIsForward() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "1"])
        let child = try fx.change(["c": "c"], base: a.id)   // built on a's first snapshot
        try fx.move("main", to: a)
        _ = try fx.store.updateChange(org: fx.org, repo: "proj", id: a.id, files: [.upsert(path: "a", content: bytes("2"))])
        let move = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: child.id)
        #expect(move.bookmark.changeID == child.id)
    }

    @Test func moveBookmarkWithStaleExpectedFromIsAConflict() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let b = try fx.change(["b": "b"], base: a.id)
        try fx.move("main", to: a)
        let error = expectStoreError(.conflict) {
            try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: b.id, expectedFrom: .root)
        }
        #expect(error?.message.contains("main") == true)
        #expect(try fx.bookmark(named: "main").changeID == a.id)
        #expect(try gitRef(fx, "main") == a.commitOID)
    }

    @Test func moveMissingBookmarkOrToMissingChangeIsNotFound() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        let unknown = try ChangeID(String(repeating: "n", count: 32))
        expectStoreError(.notFound) { try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "ghost", to: a.id) }
        expectStoreError(.notFound) { try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: unknown) }
        #expect(try fx.bookmark(named: "main").changeID == .root)
    }

    @Test func movingABookmarkBackToRootRemovesItsGitRef() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.move("main", to: a)
        #expect(try gitRef(fx, "main") == a.commitOID)
        _ = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: .root, allowBackwards: true)
        #expect(try gitRef(fx, "main") == nil)
        #expect(try fx.files(at: .head).isEmpty)
    }

    // MARK: Delete

    @Test func deleteBookmarkRemovesBookmarkAndGitRef() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.bookmark("dev", at: a)
        #expect(try gitRef(fx, "dev") == a.commitOID)
        try fx.store.deleteBookmark(org: fx.org, repo: "proj", bookmark: "dev")
        expectStoreError(.notFound) { try fx.bookmark(named: "dev") }
        #expect(try gitRef(fx, "dev") == nil)
        expectStoreError(.notFound) { try fx.store.deleteBookmark(org: fx.org, repo: "proj", bookmark: "dev") }
        // The change itself stays.
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: a.id).change == a)
        // The name can be reused.
        _ = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "dev", at: .root)
    }

    @Test func deleteDefaultBookmarkIsRefused() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.move("main", to: a)
        expectStoreError(.invalidArgument) { try fx.store.deleteBookmark(org: fx.org, repo: "proj", bookmark: "main") }
        #expect(try fx.bookmark(named: "main").changeID == a.id)
        #expect(try gitRef(fx, "main") == a.commitOID)
        // Once another bookmark is the default, the old one can go.
        try fx.bookmark("trunk", at: a)
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", defaultBookmark: "trunk")
        try fx.store.deleteBookmark(org: fx.org, repo: "proj", bookmark: "main")
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["trunk"])
    }

    // MARK: Following amends

    @Test func bookmarkFollowsItsChangeWhenTheChangeIsAmended() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "1"])
        try fx.move("main", to: a)
        try fx.bookmark("also", at: a)
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: a.id, files: [.upsert(path: "a", content: bytes("2"))])
        let main = try fx.bookmark(named: "main")
        #expect(main.changeID == a.id)
        #expect(main.commitOID == amended.commitOID)
        #expect(try fx.text("a", at: .head) == "2")
        #expect(try gitRef(fx, "main") == amended.commitOID)
        #expect(try gitRef(fx, "also") == amended.commitOID)
    }
}
