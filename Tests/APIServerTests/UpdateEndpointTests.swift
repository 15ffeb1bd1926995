import APIServer
import Foundation
import Hummingbird
import HummingbirdTesting
import MesaAPI
import Model
import Store
import Testing

@Suite struct UpdateEndpointTests {
    // MARK: Merge

    @Test func mergeCreatesAMergeCommitThenNoOpAndCanDeleteTheSource() async throws {
        let f = try Fixture()
        let base = try f.seed("ws", files: ["a.txt": "base\n"])
        _ = try f.store.createBookmark(org: "acme", repo: "ws", bookmark: "feature", at: base.id)
        let ours = try f.store.createChange(org: "acme", repo: "ws", base: base.id, files: [.upsert(path: "main.txt", content: Array("m\n".utf8))])
        _ = try f.store.moveBookmark(org: "acme", repo: "ws", bookmark: "main", to: ours.id)
        let theirs = try f.store.createChange(org: "acme", repo: "ws", base: base.id, files: [.upsert(path: "b.txt", content: Array("b\n".utf8))])
        _ = try f.store.moveBookmark(org: "acme", repo: "ws", bookmark: "feature", to: theirs.id)
        try await f.run { client in
            let body = try encode(RESTMergeRequest(target: "main", source: "feature"))
            var reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin, json: body)
            #expect(reply.status == 200, "\(reply.text)")
            let merged = try reply.json(RESTMergeResult.self)
            #expect(merged.mergeType == "merge_commit" && !merged.isConflicted && merged.commitOID.count == 40)
            #expect(merged.target == "main" && merged.source == "feature" && !merged.sourceDeleted)
            let model = try merged.mergeResult()
            #expect(model.mergeType == .mergeCommit && model.commitOID == merged.commitOID)
            let main = try await send(client, .get, "/v1/acme/ws/bookmarks/main", key: f.admin).json(RESTBookmark.self)
            #expect(main.changeID == merged.changeID)
            reply = try await send(client, .get, "/v1/acme/ws/content?path=b.txt", key: f.admin, accept: "application/octet-stream")
            #expect(reply.text == "b\n")
            let change = try await send(client, .get, "/v1/acme/ws/changes/\(merged.changeID)", key: f.admin).json(RESTChange.self)
            #expect(Set(change.parents) == [ours.id.description, theirs.id.description])

            reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin, json: body)
            let again = try reply.json(RESTMergeResult.self)
            #expect(again.mergeType == "no_op" && again.changeID == merged.changeID)

            reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin,
                                   json: try encode(RESTMergeRequest(target: "main", source: "feature", deleteSource: true)))
            #expect(reply.status == 200)
            #expect(try reply.json(RESTMergeResult.self).sourceDeleted)
            #expect(try await send(client, .get, "/v1/acme/ws/bookmarks/feature", key: f.admin).status == 404)
        }
    }

    @Test func conflictingMergeIs409WithPathsAndPersistsNothingUnlessAllowed() async throws {
        let f = try Fixture()
        let base = try f.seed("ws", files: ["a.txt": "base\n"])
        let left = try f.store.createChange(org: "acme", repo: "ws", base: base.id, files: [.upsert(path: "a.txt", content: Array("left\n".utf8))])
        let right = try f.store.createChange(org: "acme", repo: "ws", base: base.id, files: [.upsert(path: "a.txt", content: Array("right\n".utf8))])
        _ = try f.store.moveBookmark(org: "acme", repo: "ws", bookmark: "main", to: left.id)
        _ = try f.store.createBookmark(org: "acme", repo: "ws", bookmark: "right", at: right.id)
        try await f.run { client in
            let before = try f.changeCount("ws")
            var reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin,
                                       json: #"{"target":"main","source":"right","delete_source":true}"#)
            #expect(reply.status == 409 && reply.code == "MERGE_CONFLICT", "\(reply.text)")
            #expect(reply.envelope?.details?.conflictPaths == ["a.txt"])
            #expect(try f.changeCount("ws") == before)
            #expect(try f.store.bookmark(org: "acme", repo: "ws", bookmark: "main").changeID == left.id)
            #expect(try f.store.bookmark(org: "acme", repo: "ws", bookmark: "right").changeID == right.id, "source kept")

            // Resolutions are not supported: a clear 501, nothing persisted.
            reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin,
                                   json: #"{"target":"main","source":"right","resolutions":[{"path":"a.txt","take":"source"}]}"#)
            #expect(reply.status == 501 && reply.code == "NOT_IMPLEMENTED")
            #expect(try f.changeCount("ws") == before)

            reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin,
                                   json: #"{"target":"main","source":"right","allow_conflicted":true,"message":""}"#)
            #expect(reply.status == 200, "\(reply.text)")
            let result = try reply.json(RESTMergeResult.self)
            #expect(result.isConflicted && result.conflicts == ["a.txt"])
            let change = try await send(client, .get, "/v1/acme/ws/changes/\(result.changeID)", key: f.admin).json(RESTChange.self)
            #expect(change.isConflicted && change.conflicts == ["a.txt"] && change.message == "")
            reply = try await send(client, .get, "/v1/acme/ws/content?path=a.txt", key: f.admin, accept: "application/octet-stream")
            #expect(reply.text.contains("<<<<<<<") && reply.text.contains(">>>>>>>"))
        }
    }

    @Test func mergeRefusesBadRequests() async throws {
        let f = try Fixture()
        try f.seed("ws", files: ["a": "1"])
        let reader = try f.key([.read])
        try await f.run { client in
            let before = try f.changeCount("ws")
            for (json, status) in [(#"{"target":"main"}"#, 400), (#"{"target":"main","source":5}"#, 400), (#"{"target":"#, 400),
                                   (#"{"target":"main","source":"nope"}"#, 404), (#"{"target":"nope","source":"main"}"#, 404),
                                   (#"{"target":"main","source":"main","delete_source":true}"#, 400)] {
                let reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin, json: json)
                #expect(reply.status == status, "\(json): \(reply.text)")
            }
            let reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: reader, json: #"{"target":"main","source":"main"}"#)
            #expect(reply.status == 403)
            #expect(try f.changeCount("ws") == before)
            #expect(try f.store.listBookmarks(org: "acme", repo: "ws").items.map(\.name) == ["main"])
        }
    }

    // MARK: Change PATCH

    @Test func patchAmendsTheChangeAndHonoursBaseCommit() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["a.txt": "1\n"], message: "first")
        try await f.run { client in
            let uri = "/v1/acme/ws/changes/\(change.id)"
            var reply = try await send(client, .patch, uri, key: f.admin, json: try encode(RESTUpdateChange(message: "reworded")))
            #expect(reply.status == 200, "\(reply.text)")
            let reworded = try reply.json(RESTChange.self)
            #expect(reworded.id == change.id.description && reworded.message == "reworded" && reworded.currentCommitOID != change.commitOID)

            // A stale base commit loses: 409, and nothing changes.
            reply = try await send(client, .patch, uri, key: f.admin,
                                   json: try encode(RESTUpdateChange(message: "stale", files: [.upsert("a.txt", Array("x".utf8))],
                                                                     baseCommitOID: change.commitOID)))
            #expect(reply.status == 409 && reply.code == "CONFLICT", "\(reply.text)")
            var now = try await send(client, .get, uri, key: f.admin).json(RESTChange.self)
            #expect(now.message == "reworded" && now.currentCommitOID == reworded.currentCommitOID)

            reply = try await send(client, .patch, uri, key: f.admin,
                                   json: try encode(RESTUpdateChange(author: Signature(name: "Ada", email: "ada@example.com"),
                                                                     committer: Signature(name: "Bot", email: "bot@example.com"),
                                                                     files: [.upsert("a.txt", Array("2\n".utf8)), .upsert("b.txt", Array("b".utf8))],
                                                                     baseCommitOID: reworded.currentCommitOID)))
            #expect(reply.status == 200, "\(reply.text)")
            let amended = try reply.json(RESTChange.self)
            #expect(amended.author?.name == "Ada" && amended.committer.name == "Bot" && amended.message == "reworded")
            reply = try await send(client, .get, "/v1/acme/ws/content?path=a.txt", key: f.admin, accept: "application/octet-stream")
            #expect(reply.text == "2\n", "the bookmark follows the amended change")

            now = try await send(client, .get, uri, key: f.admin).json(RESTChange.self)
            for (target, json, status) in [
                (uri, #"{"base_commit_oid":"xyz"}"#, 400), (uri, #"{"base_commit_oid":"\#(String(repeating: "A", count: 40))"}"#, 400),
                (uri, #"{"message":5}"#, 400), (uri, #"{"message":"#, 400), (uri, "", 400),
                (uri, #"{"files":[{"path":"../x","content":"eA=="}]}"#, 400),
                (uri, #"{"files":[{"path":"x","mode":"777","content":"eA=="}]}"#, 400),
                (uri, #"{"resolutions":[{"path":"a.txt","take":"source"}]}"#, 501),
                ("/v1/acme/ws/changes/\(root)", #"{"message":"x"}"#, 400),
                ("/v1/acme/ws/changes/notanid", #"{"message":"x"}"#, 400),
                ("/v1/acme/ws/changes/\(String(repeating: "l", count: 32))", #"{"message":"x"}"#, 404)] {
                let reply = try await send(client, .patch, target, key: f.admin, json: json)
                #expect(reply.status == status, "\(json): \(reply.text)")
            }
            let after = try await send(client, .get, uri, key: f.admin).json(RESTChange.self)
            #expect(after == now, "failed patches change nothing")
        }
    }

    /// Eight clients amend one change from the same base commit per round: exactly one
    /// wins each round, the rest get 409, and the change's history has one commit per round.
    @Test func concurrentPatchesFromOneBaseCommitHaveOneWinnerPerRound() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["counter": "0"])
        try await f.run { client in
            var base = change.commitOID
            var lastWinner = ""
            for round in 1...4 {
                let results = try await withThrowingTaskGroup(of: (Int, Int, String).self) { group in
                    for writer in 0..<8 {
                        let body = try encode(RESTUpdateChange(files: [.upsert("counter", Array("\(round)-\(writer)".utf8))],
                                                               baseCommitOID: base))
                        group.addTask {
                            let reply = try await send(client, .patch, "/v1/acme/ws/changes/\(change.id)", key: f.admin, json: body)
                            let oid = (try? reply.json(RESTChange.self))?.currentCommitOID ?? ""
                            return (writer, reply.status, oid)
                        }
                    }
                    var all: [(Int, Int, String)] = []
                    for try await result in group { all.append(result) }
                    return all
                }
                let winners = results.filter { $0.1 == 200 }
                #expect(winners.count == 1, "round \(round): \(results.map(\.1))")
                #expect(results.filter { $0.1 == 409 }.count == 7, "round \(round): \(results.map(\.1))")
                guard let winner = winners.first else { return }
                base = winner.2
                lastWinner = "\(round)-\(winner.0)"
            }
            let history = try f.store.changeEvolution(org: "acme", repo: "ws", id: change.id)
            #expect(history.count == 5 && history.last == base)
            let reply = try await send(client, .get, "/v1/acme/ws/content?path=counter", key: f.admin, accept: "application/octet-stream")
            #expect(reply.text == lastWinner)
        }
    }

    // MARK: Tags

    @Test func repoTagPatchSetsAndRemovesIdempotently() async throws {
        let f = try Fixture()
        let one = try f.store.createRepo(org: "acme", name: "one")
        let two = try f.store.createRepo(org: "acme", name: "two")
        let three = try f.store.createRepo(org: "acme", name: "three", tags: ["env": "dev"])
        let scoped = try f.key([.read, .write], repos: [one.id])
        let reader = try f.key([.read])
        try await f.run { client in
            let set = try encode(RESTRepoTagsUpdate(repoIDs: [one.id, two.id, "repo_missing"], action: .set, key: "Env", value: "prod"))
            var reply = try await send(client, .patch, "/v1/acme/repos/tags", key: f.admin, json: set)
            #expect(reply.status == 200, "\(reply.text)")
            #expect(try reply.json(RESTUpdated.self).updated == 2)
            reply = try await send(client, .patch, "/v1/acme/repos/tags", key: f.admin, json: set)
            #expect(try reply.json(RESTUpdated.self).updated == 0, "repeating changes nothing")
            #expect(try f.store.repo(id: one.id).tags == ["env": "prod"] && f.store.repo(id: three.id).tags == ["env": "dev"])

            // A repo-scoped key only touches its own repos.
            reply = try await send(client, .patch, "/v1/acme/repos/tags", key: scoped,
                                   json: try encode(RESTRepoTagsUpdate(repoIDs: [one.id, two.id], action: .set, key: "team", value: "a")))
            #expect(try reply.json(RESTUpdated.self).updated == 1)
            #expect(try f.store.repo(id: two.id).tags == ["env": "prod"])

            let tagsBefore = try [one, two, three].map { try f.store.repo(id: $0.id).tags }
            for (key, json, status) in [
                (f.admin, #"{"repo_ids":["\#(one.id)"],"action":"set","key":"env"}"#, 400),
                (f.admin, #"{"repo_ids":["\#(one.id)"],"action":"toggle","key":"env","value":"x"}"#, 400),
                (f.admin, #"{"repo_ids":["\#(one.id)"],"action":"set","key":"$env","value":"x"}"#, 400),
                (f.admin, #"{"repo_ids":["\#(one.id)"],"action":"set","key":"env","value":"\#(String(repeating: "v", count: 257))"}"#, 400),
                (f.admin, #"{"repo_ids":"\#(one.id)","action":"set","key":"env","value":"x"}"#, 400),
                (f.admin, #"{"action":"remove","key":"env"}"#, 400),
                (reader, #"{"repo_ids":["\#(one.id)"],"action":"remove","key":"env"}"#, 403)] {
                reply = try await send(client, .patch, "/v1/acme/repos/tags", key: key, json: json)
                #expect(reply.status == status, "\(json): \(reply.text)")
            }
            #expect(try [one, two, three].map { try f.store.repo(id: $0.id).tags } == tagsBefore)

            reply = try await send(client, .patch, "/v1/acme/repos/tags", key: f.admin,
                                   json: try encode(RESTRepoTagsUpdate(repoIDs: [one.id, two.id, three.id], action: .remove, key: "env")))
            #expect(try reply.json(RESTUpdated.self).updated == 3)
            #expect(try f.store.repo(id: one.id).tags == ["team": "a"])
        }
    }

    @Test func keyTagPatchNeedsAdminAndFollowsTagRules() async throws {
        let f = try Fixture()
        let target = try f.store.createAPIKey(org: "acme", name: "ci", tags: ["team": "infra", "env": "dev"]).key
        let writer = try f.key([.read, .write])
        try await f.run { client in
            let uri = "/v1/acme/api-keys/\(target.id)"
            var reply = try await send(client, .patch, uri, key: f.admin, json: #"{"tags":{"Env":"prod","team":null,"owner":"ada"}}"#)
            #expect(reply.status == 200, "\(reply.text)")
            #expect(try reply.json(RESTKeyTagsResult.self).tags == ["env": "prod", "owner": "ada"])

            for (key, json, status) in [
                (f.admin, #"{"tags":{"$x":"1"}}"#, 400), (f.admin, #"{"tags":{"\#(String(repeating: "k", count: 65))":"1"}}"#, 400),
                (f.admin, #"{"tags":{"k":"\#(String(repeating: "v", count: 257))"}}"#, 400), (f.admin, #"{"tags":{"k":1}}"#, 400),
                (f.admin, #"{}"#, 400), (f.admin, #"{"tags":"#, 400), (writer, #"{"tags":{"k":"v"}}"#, 403)] {
                reply = try await send(client, .patch, uri, key: key, json: json)
                #expect(reply.status == status, "\(json): \(reply.text)")
            }
            reply = try await send(client, .patch, "/v1/acme/api-keys/key_missing", key: f.admin, json: #"{"tags":{"k":"v"}}"#)
            #expect(reply.status == 404)
            #expect(try f.store.apiKey(org: "acme", id: target.id).tags == ["env": "prod", "owner": "ada"], "failed patches change nothing")
        }
    }

    // MARK: Limits and unsupported endpoints

    @Test func oversizedBodiesAre413AndCreateNothing() async throws {
        let f = try Fixture()
        try f.seed("ws", files: ["a": "1"])
        try await f.run(maxBodyBytes: 4096) { client in
            let before = try f.changeCount("ws")
            let big = try encode(RESTCreateChange(baseChangeID: root, files: [.upsert("big", [UInt8](repeating: 7, count: 8192))]))
            let reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin, json: big)
            #expect(reply.status == 413 && reply.code == "PAYLOAD_TOO_LARGE")
            #expect(try f.changeCount("ws") == before)
            let small = try encode(RESTCreateChange(baseChangeID: root, files: [.upsert("small", [1, 2, 3])]))
            #expect(try await send(client, .post, "/v1/acme/ws/changes", key: f.admin, json: small).status == 201)
        }
    }
}

@Suite struct RaceAndValidationTests {
    /// Eight merges into one target at once: each either lands or loses the race with a
    /// retryable 409 CONFLICT; retried losers land, and every source ends up merged.
    @Test func concurrentMergesIntoOneTargetLoseOnlyWithRetryableConflicts() async throws {
        let f = try Fixture()
        let base = try f.seed("ws", files: ["base.txt": "b\n"])
        for index in 0..<8 {
            let change = try f.store.createChange(org: "acme", repo: "ws", base: base.id,
                                                  files: [.upsert(path: "f\(index).txt", content: Array("\(index)\n".utf8))])
            _ = try f.store.createBookmark(org: "acme", repo: "ws", bookmark: "f\(index)", at: change.id)
        }
        try await f.run { client in
            let statuses = try await withThrowingTaskGroup(of: (Int, Int, String).self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin,
                                                   json: #"{"target":"main","source":"f\#(index)"}"#)
                        return (index, reply.status, reply.code)
                    }
                }
                var all: [(Int, Int, String)] = []
                for try await result in group { all.append(result) }
                return all
            }
            #expect(statuses.contains { $0.1 == 200 })
            #expect(statuses.allSatisfy { $0.1 == 200 || ($0.1 == 409 && $0.2 == "CONFLICT") }, "\(statuses)")
            for (index, status, _) in statuses where status != 200 {
                let reply = try await send(client, .post, "/v1/acme/ws/bookmarks/merge", key: f.admin,
                                           json: #"{"target":"main","source":"f\#(index)"}"#)
                #expect(reply.status == 200, "\(reply.text)")
            }
            let root = try await send(client, .get, "/v1/acme/ws/content", key: f.admin).json(RESTContent.self)
            #expect(root.entries?.map(\.name) == ["base.txt"] + (0..<8).map { "f\($0).txt" })
        }
    }

    @Test func createChangeTakesAuthorAndCommitterFromTheBody() async throws {
        let f = try Fixture()
        _ = try f.store.createRepo(org: "acme", name: "ws")
        try await f.run { client in
            var reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin,
                                       json: try encode(RESTCreateChange(baseChangeID: root, author: Signature(name: "Ada", email: "ada@example.com"))))
            #expect(reply.status == 201)
            let change = try reply.json(RESTChange.self)
            #expect(change.author?.name == "Ada" && change.committer.name == "Ada")
            reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin, json: #"{"base_change_id":"\#(root)"}"#)
            #expect(try reply.json(RESTChange.self).author?.name == "admin", "without an author, the key is the author")
            reply = try await send(client, .post, "/v1/acme/ws/changes", key: f.admin,
                                   json: #"{"base_change_id":"\#(root)","author":{"name":"<x>","email":"x@y"}}"#)
            #expect(reply.status == 400)
        }
    }

    @Test func invalidNamesAre400AndCreateNothing() async throws {
        let f = try Fixture()
        let change = try f.seed("ws", files: ["a": "1"])
        try await f.run { client in
            for name in ["..", "a/b", "x.git", "repos", "api-keys", String(repeating: "n", count: 101), ""] {
                let reply = try await send(client, .post, "/v1/acme/repos", key: f.admin, json: try encode(RESTCreateRepo(name: name)))
                #expect(reply.status == 400 && reply.code == "INVALID_ARGUMENT", "\(name.prefix(20)): \(reply.text)")
            }
            for name in ["", "a..b", "-x", "a b", "x.lock", "/a"] {
                let reply = try await send(client, .post, "/v1/acme/ws/bookmarks", key: f.admin,
                                           json: try encode(RESTCreateBookmark(name: name, changeID: change.id.description)))
                #expect(reply.status == 400, "\(name): \(reply.text)")
            }
            #expect(try f.store.listRepos(org: "acme").items.map(\.name) == ["ws"])
            #expect(try f.store.listBookmarks(org: "acme", repo: "ws").items.map(\.name) == ["main"])
        }
    }
}
