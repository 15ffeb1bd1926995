import Foundation
import Model
import Store
import Testing

@Suite struct ValidationTests {
    static let badPaths = [
        "/etc/passwd", "/", "", "..", "../escape", "a/../../b", "a/..", ".", "./a", "a/./b",
        "a//b", "a/", "//a", "a\0b", "\0", ".git", ".git/config", "sub/.git/hooks/x", ".GIT", "sub/.Git",
        String(repeating: "x", count: 256), String(repeating: "a/", count: 2100) + "a",
        // Names git itself treats as '.git' (NTFS and HFS+ spellings): fsck --strict rejects them.
        ".git.", ".git ", ".git. .", "GIT~1", "sub/git~1", ".git:stream", ".g\u{200C}it", "a/.GIT\u{200D}", "\u{FEFF}.git",
    ]

    @Test(arguments: badPaths)
    func createChangeRefusesBadPathAndChangesNothing(_ path: String) throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["ok.txt": "ok"])
        try fx.move("main", to: base)
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id,
                                      files: [.upsert(path: "good.txt", content: bytes("g")), .upsert(path: path, content: bytes("x"))])
        }
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [.delete(path: path)])
        }
        expectStoreError(.invalidArgument) {
            try fx.store.createChange(org: fx.org, repo: "proj", base: base.id, files: [.upsert(path: path, content: bytes("t"), mode: .symlink)])
        }
        #expect(try fx.changeCount() == 1)
        #expect(try fx.bookmark(named: "main").changeID == base.id)
        #expect(try fx.files(at: .head) == ["ok.txt"])
    }

    @Test(arguments: badPaths)
    func updateChangeRefusesBadPathAndKeepsTheCommit(_ path: String) throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["ok.txt": "ok"])
        expectStoreError(.invalidArgument) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: base.id, message: "changed",
                                      files: [.upsert(path: "good.txt", content: bytes("g")), .upsert(path: path, content: bytes("x"))])
        }
        let current = try fx.store.change(org: fx.org, repo: "proj", id: base.id).change
        #expect(current == base)
        #expect(try fx.store.changeEvolution(org: fx.org, repo: "proj", id: base.id) == [base.commitOID])
    }

    @Test func refusalsNameTheProblem() throws {
        let fx = try Fixture(repo: "proj")
        func message(_ path: String) -> String {
            expectStoreError(.invalidArgument) {
                try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [.upsert(path: path, content: [])])
            }?.message ?? ""
        }
        #expect(message("/abs").contains("leading '/'"))
        #expect(message("a/../b").contains("'..'"))
        #expect(message("a//b").contains("empty segment"))
        #expect(message("a\0b").contains("NUL"))
        #expect(message("x/.git/y").contains(".git"))
    }

    @Test(arguments: [".gitignore", ".github/workflows/ci.yml", "..foo", "foo..", "...", "a/.git-keep", "git", ".gitx/y",
                      "git~2", "git~10", ".git-x", "x.git", "name with spaces.txt", "ünïcödé/文件.txt", "a\\b", "-dash", "#hash"])
    func unusualButValidPathsAreAcceptedAndPassFsck(_ path: String) throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [.upsert(path: path, content: bytes("v"))])
        #expect(try fx.text(path, at: .change(change.id)) == "v")
        #expect(try fx.files(at: .change(change.id)) == [path])
        try fx.git("-C", fx.gitDirectory(), "fsck", "--strict", "--no-dangling")
    }

    @Test func pathComponentsSplitsValidPaths() throws {
        #expect(try Validation.pathComponents("a/b/c.txt") == ["a", "b", "c.txt"])
        #expect(try Validation.pathComponents("", allowRoot: true) == [])
        expectStoreError(.invalidArgument) { try Validation.pathComponents("") }
    }

    @Test func bookmarkAndRepoNameRulesAreEnforcedEverywhere() throws {
        let fx = try Fixture(repo: "proj")
        expectStoreError(.invalidArgument) { try fx.store.createRepo(org: fx.org, name: "ok", defaultBookmark: "bad name") }
        expectStoreError(.invalidArgument) { try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "refs..x", at: .root) }
        expectStoreError(.invalidArgument) { try fx.store.updateRepo(org: fx.org, name: "proj", newName: "..") }
        #expect(try fx.store.repoCount(org: fx.org) == 1)
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["main"])
        // A custom default bookmark name is honoured.
        let trunk = try fx.store.createRepo(org: fx.org, name: "trunky", defaultBookmark: "trunk")
        #expect(trunk.defaultBookmark == "trunk")
        #expect(try fx.store.bookmark(org: fx.org, repo: "trunky", bookmark: "trunk").isDefault)
    }
}

/// Names that git accepts as refs (or fails on deep inside) but that must never become a
/// bookmark or a repo: refused up front with INVALID_ARGUMENT, creating nothing.
@Suite struct NameRuleTests {
    static let badBookmarks = [
        "a.lock/b", "feature/x.lock/y", String(repeating: "b", count: 251), "x/" + String(repeating: "c", count: 255),
        "HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "refs/heads/main", "refs/x", "-rf", "a\u{202E}txt", "zero\u{200B}width",
    ]

    @Test(arguments: badBookmarks)
    func badBookmarkNamesAreInvalidAndCreateNothing(_ name: String) throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["ok.txt": "ok"])
        do {
            _ = try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: name, at: base.id)
            Issue.record("'\(name.prefix(40))' was accepted")
        } catch let error as MesaError {
            #expect(error.code == .invalidArgument, "\(error)")
            #expect(error.message.contains("invalid bookmark name") && error.message.utf8.count < 600, "\(error.message)")
        }
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["main"])
        expectStoreError(.invalidArgument) { try fx.store.createRepo(org: fx.org, name: "other", defaultBookmark: name) }
    }

    @Test func theLongestComponentGitCanLockIsAccepted() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["ok.txt": "ok"])
        let name = "team/" + String(repeating: "d", count: 250)
        #expect(try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: name, at: base.id).name == name)
        #expect(try fx.store.createBookmark(org: fx.org, repo: "proj", bookmark: "HEADS-UP", at: base.id).name == "HEADS-UP")
    }

    @Test(arguments: ["-rf", "--help", "-"])
    func repoNamesStartingWithADashAreInvalid(_ name: String) throws {
        let fx = try Fixture()
        expectStoreError(.invalidArgument) { try fx.store.createRepo(org: fx.org, name: name) }
        #expect(try fx.store.listRepos(org: fx.org).items.isEmpty)
    }
}
