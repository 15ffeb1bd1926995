import Foundation
import Model
import Store
import Testing

/// Tag filters on repo lists, and the name/scope/repo filters of key lists.
@Suite struct FilterTests {
    @Test func legacyTagFilterNeedsEveryPairCaseInsensitively() throws {
        let filter = try TagFilter.parse("env:prod, Team:Agents")
        #expect(filter.matches(["env": "PROD", "team": "agents", "x": "y"]))
        #expect(!filter.matches(["env": "prod"]))
        #expect(try TagFilter.parse("url:http://x").matches(["url": "http://x"]), "only the first ':' separates")
        expectStoreError(.invalidArgument) { try TagFilter.parse("env") }
        expectStoreError(.invalidArgument) { try TagFilter.parse(":prod") }
    }

    @Test func jsonTagFilterSupportsOperatorsAndCombinators() throws {
        let tags = ["env": "prod", "owner": "ada lovelace"]
        let cases: [(String, Bool)] = [
            (#"{"env":"PROD"}"#, true), (#"{"env":["dev","prod"]}"#, true), (#"{"env":{"$in":["dev"]}}"#, false),
            (#"{"owner":{"$contains":"LOVE"}}"#, true), (#"{"owner":{"$starts_with":"ada","$ends_with":"lace"}}"#, true),
            (#"{"owner":{"$ends_with":"ada"}}"#, false), (#"{"team":{"$exists":false}}"#, true), (#"{"env":{"$exists":true}}"#, true),
            (#"{"env":{"$eq":"dev"}}"#, false), (#"{"$or":[{"env":"dev"},{"owner":{"$starts_with":"a"}}]}"#, true),
            (#"{"$and":[{"env":"prod"},{"team":"x"}]}"#, false), (#"{"$not":{"env":"prod"}}"#, false),
            (#"{"env":"prod","owner":"nobody"}"#, false), (#"{}"#, true),
        ]
        for (text, expected) in cases {
            #expect(try TagFilter.parse(text).matches(tags) == expected, "\(text)")
        }
        for bad in [#"{"env":"#, #"["env"]"#, #"{"env":5}"#, #"{"env":{"$regex":"x"}}"#, #"{"$nor":[]}"#, #"{"$or":{}}"#,
                    #"{"env":{"$in":[1]}}"#, #"{"env":{"$exists":"yes"}}"#] {
            expectStoreError(.invalidArgument) { try TagFilter.parse(bad) }
        }
    }

    @Test func repoListFilterKeepsCursorsValidAcrossPages() throws {
        let fx = try Fixture()
        for index in 0..<7 { try fx.makeRepo("r\(index)", tags: index.isMultiple(of: 2) ? ["env": "prod"] : [:]) }
        let filter = try TagFilter.parse(#"{"env":"prod"}"#)
        var names: [String] = []
        var cursor: String?
        repeat {
            let page = try fx.store.listRepos(org: fx.org, cursor: cursor, limit: 1, filter: filter)
            names += page.items.map(\.name)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(names == ["r0", "r2", "r4", "r6"])
    }

    @Test func keyListFiltersByNameScopeAndRepoWithAStableCursor() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo()
        let ci1 = try fx.store.createAPIKey(org: fx.org, name: "CI one", scopes: [.read]).key
        let deploy = try fx.store.createAPIKey(org: fx.org, name: "deploy", scopes: [.read, .write], repoIDs: [repo.id]).key
        let ci2 = try fx.store.createAPIKey(org: fx.org, name: "ci two", scopes: [.read, .write, .admin]).key
        _ = try fx.store.createAPIKey(org: fx.org, scopes: [.read]).key

        #expect(try fx.store.listAPIKeys(org: fx.org, query: "ci").items.map(\.id) == [ci2.id, ci1.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, scope: .admin).items.map(\.id) == [ci2.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, scope: .write).items.map(\.id) == [ci2.id, deploy.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, repoID: repo.id).items.map(\.id) == [deploy.id])
        #expect(try fx.store.listAPIKeys(org: fx.org, query: "ci", scope: .write).items.map(\.id) == [ci2.id])

        let first = try fx.store.listAPIKeys(org: fx.org, query: "ci", limit: 1)
        #expect(first.items.map(\.id) == [ci2.id])
        _ = try fx.store.createAPIKey(org: fx.org, name: "ci three")
        let second = try fx.store.listAPIKeys(org: fx.org, query: "ci", cursor: first.nextCursor, limit: 1)
        #expect(second.items.map(\.id) == [ci1.id], "a key created between pages does not shift the walk")
        #expect(second.nextCursor == nil)
    }

    @Test func amendCanReplaceTheCommitterIdentity() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["a": "1"])
        let bot = Signature(name: "Bot", email: "bot@example.com")
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: change.id, committer: bot)
        #expect(amended.committer.name == "Bot" && amended.committer.email == "bot@example.com")
        #expect(amended.commitOID != change.commitOID)
        let again = try fx.store.updateChange(org: fx.org, repo: "proj", id: change.id, committer: bot)
        #expect(again.commitOID == amended.commitOID, "the same identity again is a no-op")
        expectStoreError(.invalidArgument) {
            try fx.store.updateChange(org: fx.org, repo: "proj", id: change.id, committer: Signature(name: "<x>", email: "x@y"))
        }
    }
}
