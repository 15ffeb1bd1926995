import Foundation
import Model
import Store
import Testing

@Suite struct OrgRepoTests {
    // MARK: Orgs

    @Test func createdOrgCanBeReadBackAndListed() throws {
        let fx = try Fixture()
        let org = try fx.store.createOrg(slug: "beta", name: "Beta Inc")
        #expect(org.slug == "beta")
        #expect(org.name == "Beta Inc")
        #expect(try fx.store.org("beta") == org)
        #expect(try fx.store.listOrgs().map(\.slug) == ["acme", "beta"])
    }

    @Test func createOrgRefusesDuplicateSlug() throws {
        let fx = try Fixture()
        expectStoreError(.alreadyExists) { try fx.store.createOrg(slug: "acme") }
        #expect(try fx.store.listOrgs().count == 1)
    }

    @Test func createOrgRefusesInvalidSlugs() throws {
        let fx = try Fixture()
        for slug in ["", "a b", "a/b", "a.b", String(repeating: "x", count: 65), "whoami"] {
            expectStoreError(.invalidArgument) { try fx.store.createOrg(slug: slug) }
        }
        #expect(try fx.store.listOrgs().count == 1)
    }

    @Test func missingOrgIsNotFound() throws {
        let fx = try Fixture()
        expectStoreError(.notFound) { try fx.store.org("nobody") }
        expectStoreError(.notFound) { try fx.store.listRepos(org: "nobody") }
        expectStoreError(.notFound) { try fx.store.createRepo(org: "nobody", name: "proj") }
    }

    // MARK: Create and get

    @Test func newRepoHasDefaultBookmarkMainAtRoot() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo()
        #expect(repo.defaultBookmark == "main")
        #expect(repo.headChangeID == .root)
        #expect(repo.org == "acme")
        let main = try fx.bookmark(named: "main")
        #expect(main.changeID == .root)
        #expect(main.commitOID == nil)
        #expect(main.isDefault)
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["main"])
        #expect(try fx.changeCount() == 0)
    }

    @Test func repoCanBeReadByNameAndByID() throws {
        let fx = try Fixture()
        let created = try fx.makeRepo("proj", tags: ["team": "infra"])
        #expect(try fx.store.repo(org: fx.org, name: "proj") == created)
        #expect(try fx.store.repo(id: created.id) == created)
        #expect(created.tags == ["team": "infra"])
        expectStoreError(.notFound) { try fx.store.repo(org: fx.org, name: "other") }
        expectStoreError(.notFound) { try fx.store.repo(id: "repo_000000000000000000000000") }
    }

    @Test func repoIDsAreDistinctAndStable() throws {
        let fx = try Fixture()
        let one = try fx.makeRepo("one")
        let two = try fx.makeRepo("two")
        #expect(one.id != two.id)
        _ = try fx.store.updateRepo(org: fx.org, name: "one", newName: "uno")
        #expect(try fx.store.repo(org: fx.org, name: "uno").id == one.id)
    }

    @Test(arguments: [".", "..", "x.git", "X.GIT", "repo", "Repos", "api-key", "api-keys", "a b", "a/b", "",
                      "caf\u{E9}", String(repeating: "a", count: 101)])
    func createRepoRefusesInvalidName(_ name: String) throws {
        let fx = try Fixture()
        expectStoreError(.invalidArgument) { try fx.store.createRepo(org: fx.org, name: name) }
        #expect(try fx.store.repoCount(org: fx.org) == 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fx.storeDirectory + "/repos")
        #expect(leftovers.isEmpty, "a refused repo must leave no git directory: \(leftovers)")
    }

    @Test func createRepoAcceptsNamesAtTheEdgesOfTheRule() throws {
        let fx = try Fixture()
        for name in [String(repeating: "a", count: 100), "a", "A.b_c-9", "...", "git", "x.gitx", "my-repo"] {
            let repo = try fx.store.createRepo(org: fx.org, name: name)
            #expect(repo.name == name)
        }
        #expect(try fx.store.repoCount(org: fx.org) == 7)
    }

    @Test func createRepoRefusesDuplicateName() throws {
        let fx = try Fixture()
        let first = try fx.makeRepo("proj")
        expectStoreError(.alreadyExists) { try fx.store.createRepo(org: fx.org, name: "proj") }
        expectStoreError(.alreadyExists) { try fx.store.createRepo(org: fx.org, name: "PROJ") }
        #expect(try fx.store.repoCount(org: fx.org) == 1)
        #expect(try fx.store.repo(org: fx.org, name: "proj") == first)
        let directories = try FileManager.default.contentsOfDirectory(atPath: fx.storeDirectory + "/repos")
        #expect(directories == [first.id + ".git"], "the refused duplicate must not leave a git directory")
    }

    @Test func sameRepoNameIsAllowedInAnotherOrg() throws {
        let fx = try Fixture()
        _ = try fx.store.createOrg(slug: "beta")
        let mine = try fx.makeRepo("proj")
        let theirs = try fx.store.createRepo(org: "beta", name: "proj")
        #expect(mine.id != theirs.id)
        #expect(try fx.store.repo(org: "beta", name: "proj").org == "beta")
    }

    @Test func createRepoRefusesInvalidTags() throws {
        let fx = try Fixture()
        expectStoreError(.invalidArgument) { try fx.store.createRepo(org: fx.org, name: "proj", tags: ["$owner": "x"]) }
        expectStoreError(.invalidArgument) {
            try fx.store.createRepo(org: fx.org, name: "proj", tags: ["k": String(repeating: "v", count: 257)])
        }
        #expect(try fx.store.repoCount(org: fx.org) == 0)
    }

    // MARK: List

    @Test func listReposWalksEveryPageWithCursor() throws {
        let fx = try Fixture()
        let names = (1...7).map { "repo-\($0)" }
        for name in names { try fx.makeRepo(name) }
        var seen: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try fx.store.listRepos(org: fx.org, cursor: cursor, limit: 3)
            pages += 1
            #expect(page.items.count == (pages < 3 ? 3 : 1))
            seen += page.items.map(\.name)
            cursor = page.nextCursor
            #expect(page.hasMore == (cursor != nil))
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == names, "oldest first, every repo exactly once")
    }

    @Test func listReposWithLimitOneAndHundred() throws {
        let fx = try Fixture()
        for index in 1...3 { try fx.makeRepo("r\(index)") }
        let one = try fx.store.listRepos(org: fx.org, limit: 1)
        #expect(one.items.map(\.name) == ["r1"])
        #expect(one.nextCursor != nil)
        let all = try fx.store.listRepos(org: fx.org, limit: 100)
        #expect(all.items.map(\.name) == ["r1", "r2", "r3"])
        #expect(all.nextCursor == nil)
        let exact = try fx.store.listRepos(org: fx.org, limit: 3)
        #expect(exact.items.count == 3)
        #expect(exact.nextCursor == nil, "a page that ends exactly at the last repo has no next page")
    }

    @Test(arguments: [0, -1, 101, 1000])
    func listReposRefusesLimitOutsideOneToHundred(_ limit: Int) throws {
        let fx = try Fixture(repo: "proj")
        expectStoreError(.invalidArgument) { try fx.store.listRepos(org: fx.org, limit: limit) }
    }

    @Test(arguments: ["garbage!!", "bm90LWEtY3Vyc29y", "cDotNQ", "%%%", "cDphYmM"])
    func listReposRefusesGarbledCursor(_ cursor: String) throws {
        let fx = try Fixture(repo: "proj")
        expectStoreError(.invalidArgument) { try fx.store.listRepos(org: fx.org, cursor: cursor) }
    }

    @Test func listReposFiltersByTagsAndRepoScope() throws {
        let fx = try Fixture()
        let a = try fx.makeRepo("a", tags: ["env": "prod"])
        try fx.makeRepo("b", tags: ["env": "dev"])
        let c = try fx.makeRepo("c", tags: ["env": "prod", "team": "x"])
        #expect(try fx.store.listRepos(org: fx.org, tags: ["env": "prod"]).items.map(\.name) == ["a", "c"])
        #expect(try fx.store.listRepos(org: fx.org, tags: ["env": "prod", "team": "x"]).items.map(\.name) == ["c"])
        #expect(try fx.store.listRepos(org: fx.org, only: [a.id]).items.map(\.name) == ["a"])
        // Filtered pages still walk to the end.
        let first = try fx.store.listRepos(org: fx.org, limit: 1, tags: ["env": "prod"])
        #expect(first.items.map(\.id) == [a.id])
        let second = try fx.store.listRepos(org: fx.org, cursor: first.nextCursor, limit: 1, tags: ["env": "prod"])
        #expect(second.items.map(\.id) == [c.id])
        #expect(second.nextCursor == nil)
    }

    @Test func listReposOnlyShowsTheOrgsOwnRepos() throws {
        let fx = try Fixture()
        _ = try fx.store.createOrg(slug: "beta")
        try fx.makeRepo("mine")
        _ = try fx.store.createRepo(org: "beta", name: "theirs")
        #expect(try fx.store.listRepos(org: fx.org).items.map(\.name) == ["mine"])
        #expect(try fx.store.repoCount(org: "beta") == 1)
    }

    // MARK: Update

    @Test func renameRepoKeepsIDAndHistory() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo("old")
        let change = try fx.change(["a.txt": "hello"], repo: "old")
        let gitDirectory = try fx.gitDirectory("old")
        let renamed = try fx.store.updateRepo(org: fx.org, name: "old", newName: "new")
        #expect(renamed.name == "new")
        #expect(renamed.id == repo.id)
        expectStoreError(.notFound) { try fx.store.repo(org: fx.org, name: "old") }
        #expect(try fx.store.change(org: fx.org, repo: "new", id: change.id).change == change)
        #expect(try fx.gitDirectory("new") == gitDirectory)
    }

    @Test func renameRepoRefusesTakenAndInvalidNames() throws {
        let fx = try Fixture()
        try fx.makeRepo("one")
        try fx.makeRepo("two")
        expectStoreError(.alreadyExists) { try fx.store.updateRepo(org: fx.org, name: "one", newName: "two") }
        expectStoreError(.invalidArgument) { try fx.store.updateRepo(org: fx.org, name: "one", newName: "api-keys") }
        expectStoreError(.invalidArgument) { try fx.store.updateRepo(org: fx.org, name: "one", newName: "x.git") }
        expectStoreError(.notFound) { try fx.store.updateRepo(org: fx.org, name: "three", newName: "four") }
        #expect(try fx.store.listRepos(org: fx.org).items.map(\.name) == ["one", "two"])
        // Changing only the case of its own name is a rename, not a clash.
        #expect(try fx.store.updateRepo(org: fx.org, name: "one", newName: "One").name == "One")
    }

    @Test func defaultBookmarkCanOnlyBeSetToAnExistingBookmark() throws {
        let fx = try Fixture(repo: "proj")
        expectStoreError(.notFound) { try fx.store.updateRepo(org: fx.org, name: "proj", defaultBookmark: "dev") }
        #expect(try fx.store.repo(org: fx.org, name: "proj").defaultBookmark == "main")

        let change = try fx.change(["dev.txt": "dev"])
        try fx.bookmark("dev", at: change)
        let updated = try fx.store.updateRepo(org: fx.org, name: "proj", defaultBookmark: "dev")
        #expect(updated.defaultBookmark == "dev")
        #expect(updated.headChangeID == change.id)
        #expect(try fx.text("dev.txt", at: .head) == "dev")
        #expect(try fx.bookmark(named: "dev").isDefault)
        #expect(try !fx.bookmark(named: "main").isDefault)
        // git's HEAD follows, so a clone checks out the new default.
        let head = try fx.git("-C", fx.gitDirectory(), "symbolic-ref", "HEAD")
        #expect(head.trimmingCharacters(in: .whitespacesAndNewlines) == "refs/heads/dev")
    }

    @Test func repoTagsArePatchedAndNilRemovesATag() throws {
        let fx = try Fixture()
        try fx.makeRepo("proj", tags: ["a": "1", "b": "2"])
        let updated = try fx.store.updateRepo(org: fx.org, name: "proj", tags: ["b": nil, "c": "3", "a": "one"])
        #expect(updated.tags == ["a": "one", "c": "3"])
        #expect(try fx.store.repo(org: fx.org, name: "proj").tags == ["a": "one", "c": "3"])
        let untouched = try fx.store.updateRepo(org: fx.org, name: "proj", newName: "renamed")
        #expect(untouched.tags == ["a": "one", "c": "3"], "an update without tags keeps them")
        expectStoreError(.invalidArgument) { try fx.store.updateRepo(org: fx.org, name: "renamed", tags: ["$x": "1"]) }
        #expect(try fx.store.repo(org: fx.org, name: "renamed").tags == ["a": "one", "c": "3"])
    }

    @Test func repoTagKeysAreCaseInsensitiveAndStoredLowerCased() throws {
        let fx = try Fixture()
        try fx.makeRepo("proj", tags: ["Team": "infra"])
        #expect(try fx.store.repo(org: fx.org, name: "proj").tags == ["team": "infra"])
        #expect(try fx.store.updateRepo(org: fx.org, name: "proj", tags: ["TEAM": nil]).tags.isEmpty)
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", tags: ["Env": "prod"])
        #expect(try fx.store.listRepos(org: fx.org, tags: ["ENV": "prod"]).items.map(\.name) == ["proj"])
    }

    @Test func bulkTagUpdateSetsAndRemovesOneTagOnManyRepos() throws {
        let fx = try Fixture()
        _ = try fx.store.createOrg(slug: "beta")
        let one = try fx.makeRepo("one", tags: ["keep": "yes"])
        let two = try fx.makeRepo("two")
        let three = try fx.makeRepo("three")
        let foreign = try fx.store.createRepo(org: "beta", name: "foreign")

        let set = try fx.store.updateRepoTags(org: fx.org, repoIDs: [one.id, two.id, "repo_missing", foreign.id],
                                              key: "env", value: "prod")
        #expect(set == 2, "only existing repos of this org are updated")
        #expect(try fx.store.repo(id: one.id).tags == ["keep": "yes", "env": "prod"])
        #expect(try fx.store.repo(id: two.id).tags == ["env": "prod"])
        #expect(try fx.store.repo(id: three.id).tags == [:])
        #expect(try fx.store.repo(id: foreign.id).tags == [:], "another org's repo must not be touched")

        #expect(try fx.store.updateRepoTags(org: fx.org, repoIDs: [one.id, two.id], key: "env", value: "prod") == 0)
        #expect(try fx.store.updateRepoTags(org: fx.org, repoIDs: [one.id, two.id, three.id], key: "env", value: nil) == 2)
        #expect(try fx.store.repo(id: one.id).tags == ["keep": "yes"])
        #expect(try fx.store.repo(id: two.id).tags == [:])
        expectStoreError(.invalidArgument) { try fx.store.updateRepoTags(org: fx.org, repoIDs: [one.id], key: "$bad", value: "x") }
    }

    // MARK: Delete

    @Test func deleteRepoIsPermanentAndRemovesItsGitDirectory() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo()
        try fx.change(["a.txt": "a"])
        let gitDirectory = try fx.gitDirectory()
        #expect(FileManager.default.fileExists(atPath: gitDirectory + "/HEAD"))

        try fx.store.deleteRepo(org: fx.org, name: "proj")
        #expect(!FileManager.default.fileExists(atPath: gitDirectory))
        expectStoreError(.notFound) { try fx.store.repo(org: fx.org, name: "proj") }
        expectStoreError(.notFound) { try fx.store.repo(id: repo.id) }
        expectStoreError(.notFound) { try fx.store.listChanges(org: fx.org, repo: "proj") }
        expectStoreError(.notFound) { try fx.store.deleteRepo(org: fx.org, name: "proj") }
        #expect(try fx.store.listRepos(org: fx.org).items.isEmpty)

        // The name is free again, and the new repo starts empty.
        let again = try fx.makeRepo()
        #expect(again.id != repo.id)
        #expect(again.headChangeID == .root)
        #expect(try fx.changeCount() == 0)
        #expect(try fx.files().isEmpty)
    }
}
