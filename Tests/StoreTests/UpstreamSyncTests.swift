import Foundation
import Model
import Store
import Synchronization
import Testing

/// Upstreams and syncs against real git repositories and servers on loopback: a bare
/// repo by path and file://, `git daemon`, and nginx + fcgiwrap + `git http-backend`
/// with basic auth. Every server is stopped by pid when the test ends (deinit).
@Suite struct UpstreamSyncTests {
    /// A bare upstream repository plus a work clone to make commits in.
    final class Upstream {
        let fx: Fixture
        let base: String
        let bare: String
        let work: String
        let name = "up.git"

        init(_ fx: Fixture) throws {
            self.fx = fx
            base = fx.scratch("served")
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            bare = base + "/" + name
            work = fx.scratch("work")
            try fx.git("init", "-q", "--bare", "-b", "main", bare)
            try fx.git("clone", "-q", bare, work)
            try git("config", "user.name", "Ada Upstream")
            try git("config", "user.email", "ada@example.com")
            try git("checkout", "-q", "-b", "main")
        }

        var fileURL: String { "file://" + bare }

        @discardableResult
        func git(_ arguments: String...) throws -> String {
            let result = try fx.gitStatus(["-C", work] + arguments)
            guard result.status == 0 else { throw TestFailure("git \(arguments) failed: \(result.stderr)") }
            return result.stdout
        }

        /// Commits `files` on the current branch of the work clone and pushes it.
        @discardableResult
        func commit(_ message: String, _ files: [String: String], push: Bool = true) throws -> String {
            for (path, text) in files {
                let url = URL(fileURLWithPath: work + "/" + path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try text.write(to: url, atomically: true, encoding: .utf8)
            }
            try git("add", "-A")
            try git("commit", "-q", "-m", message)
            let branch = try git("rev-parse", "--abbrev-ref", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
            if push { try git("push", "-q", "origin", branch) }
            return try head()
        }

        func head(_ ref: String = "HEAD") throws -> String {
            try git("rev-parse", ref).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func bareRef(_ ref: String) throws -> String? {
            let result = try fx.gitStatus(["-C", bare, "rev-parse", "--verify", "-q", ref])
            return result.status == 0 ? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
    }

    /// Queues a sync and runs it (and any retries, quickly) on this thread.
    @discardableResult
    func sync(_ fx: Fixture, _ direction: SyncDirection, repo: String = "proj", globs: SyncRefGlobs = SyncRefGlobs(),
              attempts: Int = 1) throws -> Sync {
        let queued = try fx.store.createSync(org: fx.org, repo: repo, direction: direction, refGlobs: globs)
        #expect(queued.status == .queued && queued.attempt == 0)
        let policy = SyncPolicy(backoff: .init(initial: .milliseconds(1), cap: .milliseconds(5)), maxAttempts: attempts)
        var result = queued
        for _ in 0..<attempts {
            fx.store.runPendingSyncs(policy: policy)
            result = try fx.store.sync(org: fx.org, repo: repo, id: queued.id)
            if result.status.isFinished { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return result
    }

    func stat(_ sync: Sync, _ name: String) -> SyncRefStat? { sync.refs?.first { $0.name == name } }

    @Test func pullImportsHistoryBranchesAndTagsWithTheirCommitIDs() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let first = try up.commit("first", ["README.md": "hello\n"])
        let second = try up.commit("second", ["src/a.txt": "a\n"])
        try up.git("tag", "-a", "v1", "-m", "release 1", first)
        try up.git("push", "-q", "origin", "v1")
        try up.git("checkout", "-q", "-b", "feature")
        let feature = try up.commit("feature work", ["src/b.txt": "b\n"])
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (up.fileURL, nil))

        let done = try sync(fx, .pull)
        #expect(done.status == .completed, "\(done.error ?? "")")
        #expect(done.attempt == 1 && done.startedAt != nil && done.finishedAt != nil && done.error == nil)
        #expect(stat(done, "refs/heads/main") == SyncRefStat(name: "refs/heads/main", before: nil, after: second, outcome: .updated))
        #expect(stat(done, "refs/heads/feature")?.outcome == .updated)
        #expect(stat(done, "refs/tags/v1")?.outcome == .updated)

        // Every commit is a change with its git id; the bookmarks point at them.
        let main = try fx.bookmark(named: "main")
        #expect(main.commitOID == second)
        #expect(try fx.bookmark(named: "feature").commitOID == feature)
        let history = try fx.store.listChanges(org: fx.org, repo: "proj", bookmark: "feature").items
        #expect(history.map(\.commitOID) == [feature, second, first])
        #expect(history.last?.parents == [.root])
        #expect(history[0].parents == [history[1].id])
        #expect(history[0].message == "feature work\n")
        #expect(history[0].authors.first?.name == "Ada Upstream")
        #expect(try fx.text("src/a.txt") == "a\n")
        // The store stays clone-compatible: same ids, same tag.
        let clone = fx.scratch("clone")
        try fx.git("clone", "-q", "--mirror", try fx.gitDirectory(), clone)
        #expect(try fx.git("-C", clone, "rev-parse", "main", "feature", "v1^{commit}").split(separator: "\n").map(String.init)
                == [second, feature, first])

        // A second pull with nothing new changes nothing.
        let again = try sync(fx, .pull)
        #expect(again.status == .completed)
        #expect(again.refs?.allSatisfy { $0.outcome == .unchanged } == true)
        #expect(try fx.changeCount() == 3)

        // The repo reports its upstream and latest sync, never a secret.
        let repo = try fx.store.repo(org: fx.org, name: "proj")
        #expect(repo.upstream?.url == up.fileURL && repo.upstream?.authKind == nil)
        #expect(repo.upstream?.latestSync?.id == again.id)
    }

    @Test func importedChangeIDsAreDerivedFromCommitIDsLikeJJ() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        try up.commit("one", ["a": "1\n"])
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (up.bare, nil))
        _ = try fx.store.createRepo(org: fx.org, name: "copy", upstream: (up.fileURL, nil))
        #expect(try sync(fx, .pull).status == .completed)
        #expect(try sync(fx, .pull, repo: "copy").status == .completed)
        let one = try fx.bookmark(named: "main")
        let copy = try fx.store.bookmark(org: fx.org, repo: "copy", bookmark: "main")
        // Same commit, same change id in both repos (jj's derivation from the commit id).
        #expect(one.changeID == copy.changeID && one.commitOID == copy.commitOID)
        // jj: bytes 4..<20 of the commit id reversed, bits reversed, in reverse hex.
        let bytes = stride(from: 0, to: 40, by: 2).map { UInt8(one.commitOID!.dropFirst($0).prefix(2), radix: 16)! }
        let digits = Array("zyxwvutsrqponmlk")
        let expected = String(bytes[4..<20].reversed().flatMap { byte -> [Character] in
            var reversed: UInt8 = 0
            for bit in 0..<8 where byte & (1 << bit) != 0 { reversed |= 1 << (7 - bit) }
            return [digits[Int(reversed >> 4)], digits[Int(reversed & 15)]]
        })
        #expect(one.changeID.rawValue == expected)
    }

    @Test func pullFastForwardsAndRejectsRewrittenHistory() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let first = try up.commit("first", ["a": "1\n"])
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (up.fileURL, nil))
        #expect(try sync(fx, .pull).status == .completed)
        let second = try up.commit("second", ["a": "2\n"])
        let forward = try sync(fx, .pull)
        #expect(stat(forward, "refs/heads/main") == SyncRefStat(name: "refs/heads/main", before: first, after: second, outcome: .updated))

        // The upstream rewrites main: the bookmark stays, the ref is rejected with a reason.
        try up.git("reset", "-q", "--hard", first)
        let rewritten = try up.commit("rewritten", ["a": "3\n"], push: false)
        try up.git("push", "-q", "-f", "origin", "main")
        let diverged = try sync(fx, .pull)
        #expect(diverged.status == .completed)
        #expect(stat(diverged, "refs/heads/main") == SyncRefStat(name: "refs/heads/main", before: second, after: rewritten, outcome: .rejected))
        #expect(diverged.error?.contains("not a fast-forward") == true)
        #expect(try fx.bookmark(named: "main").commitOID == second)

        // ref_globs: only matching branches are taken, the rest reported as filtered.
        try up.git("checkout", "-q", "-b", "release/1")
        try up.commit("release", ["r": "1\n"])
        try up.git("checkout", "-q", "-b", "other")
        try up.commit("other", ["o": "1\n"])
        let filtered = try sync(fx, .pull, globs: SyncRefGlobs(branches: "release/*"))
        #expect(stat(filtered, "refs/heads/release/1")?.outcome == .updated)
        #expect(stat(filtered, "refs/heads/other")?.outcome == .filtered)
        #expect(stat(filtered, "refs/heads/main")?.outcome == .filtered)
        expectStoreError(.notFound) { try fx.bookmark(named: "other") }
    }

    @Test func pushSendsCheckpointsAsOrdinaryCommitsAndRefusesToRewrite() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let first = try up.commit("first", ["a": "1\n"])
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (up.fileURL, nil))
        #expect(try sync(fx, .pull).status == .completed)
        // An agent's change on main, checkpointed.
        let main = try fx.bookmark(named: "main")
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: main.changeID, message: "agent work",
                                               authors: [Signature(name: "Agent", email: "agent@example.com")],
                                               files: [.upsert(path: "b", content: bytes("from the agent\n"))])
        try fx.move("main", to: change)
        let pushed = try sync(fx, .push)
        #expect(pushed.status == .completed, "\(pushed.error ?? "")")
        #expect(stat(pushed, "refs/heads/main") == SyncRefStat(name: "refs/heads/main", before: first, after: change.commitOID, outcome: .updated))
        #expect(try up.bareRef("main") == change.commitOID)
        try up.git("pull", "-q", "--ff-only", "origin", "main")
        #expect(try up.git("log", "--format=%an|%s", "-2") == "Agent|agent work\nAda Upstream|first\n")
        #expect(try up.git("show", "HEAD:b") == "from the agent\n")

        // The upstream moves on; a local change on the old tip would rewrite it: rejected.
        let theirs = try up.commit("theirs", ["c": "1\n"])
        let ours = try fx.change(["d": "1\n"], base: change.id)
        try fx.move("main", to: ours)
        let refused = try sync(fx, .push)
        #expect(refused.status == .completed)
        #expect(stat(refused, "refs/heads/main")?.outcome == .rejected)
        #expect(refused.error?.contains("pull first") == true)
        #expect(try up.bareRef("main") == theirs)
    }

    @Test func gitDaemonServesPulls() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let head = try up.commit("first", ["a": "1\n"])
        let daemon = try GitDaemonServer(base: up.base, logs: fx.scratch("daemon-logs").creatingDirectory())
        defer { daemon.stop() }
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (daemon.url(up.name), nil))
        let done = try sync(fx, .pull)
        #expect(done.status == .completed, "\(done.error ?? "")")
        #expect(try fx.bookmark(named: "main").commitOID == head)
    }

    @Test(.enabled(if: GitHTTPServer.available)) func smartHTTPWithBasicAuthPullsAndPushes() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let head = try up.commit("first", ["a": "1\n"])
        let server = try GitHTTPServer(base: up.base, user: "ada", password: "s3cret", logs: fx.scratch("http-logs").creatingDirectory())
        defer { server.stop() }
        let url = server.url(up.name)
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (url, .usernamePassword(username: "ada", password: "s3cret")))
        let pulled = try sync(fx, .pull)
        #expect(pulled.status == .completed, "\(pulled.error ?? "")")
        #expect(try fx.bookmark(named: "main").commitOID == head)

        let change = try fx.change(["b": "2\n"], base: try fx.bookmark(named: "main").changeID, message: "over http")
        try fx.move("main", to: change)
        let pushed = try sync(fx, .push)
        #expect(pushed.status == .completed, "\(pushed.error ?? "")")
        #expect(try up.bareRef("main") == change.commitOID)

        // A token is sent as basic auth with the given user name.
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: url, auth: .replace(.token("s3cret", username: "ada"))))
        #expect(try sync(fx, .pull).status == .completed)

        // A refused credential fails at once (no retry), with a clear error, changing nothing.
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: url, auth: .replace(.usernamePassword(username: "ada", password: "wrong"))))
        let refused = try sync(fx, .pull, attempts: 3)
        #expect(refused.status == .failed && refused.attempt == 1)
        #expect(refused.error?.contains("refused the stored credential") == true, "\(refused.error ?? "")")
        #expect(refused.error?.contains("wrong") == false)
        // No credential at all.
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: url, auth: .clear))
        let anonymous = try sync(fx, .pull)
        #expect(anonymous.status == .failed)
        #expect(anonymous.error?.contains("needs a credential") == true, "\(anonymous.error ?? "")")
        #expect(try fx.bookmark(named: "main").commitOID == change.commitOID)
    }

    @Test func badUpstreamsFailClearlyAndLeaveTheRepoUsable() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        try up.commit("first", ["a": "1\n"])
        // Malformed urls are refused up front and change nothing.
        for bad in ["", "not a url", "http://", "ftp://example.com/x", "relative/path", "file://relative", "https://h/x\n",
                    "https://user:secret@example.com/x.git"] {
            expectStoreError(.invalidArgument) { try fx.store.createRepo(org: fx.org, name: "bad", upstream: (bad, nil)) }
        }
        expectStoreError(.notFound) { try fx.store.repo(org: fx.org, name: "bad") }
        try fx.makeRepo("proj")
        expectStoreError(.invalidArgument) { try fx.store.createSync(org: fx.org, repo: "proj", direction: .pull) }
        expectStoreError(.invalidArgument) {
            _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: "nope", auth: .keep))
        }
        #expect(try fx.store.repo(org: fx.org, name: "proj").upstream == nil)

        // Unreachable: nothing listens there. Transient, so retried, then failed.
        let port = try GitServers.freePort()
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: "git://127.0.0.1:\(port)/x.git", auth: .keep))
        let unreachable = try sync(fx, .pull, attempts: 2)
        #expect(unreachable.status == .failed && unreachable.attempt == 2)
        #expect(unreachable.error?.contains("127.0.0.1:\(port)") == true, "\(unreachable.error ?? "")")
        // A path that is not a repository: permanent, one attempt.
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: fx.scratch("missing"), auth: .keep))
        let missing = try sync(fx, .pull, attempts: 3)
        #expect(missing.status == .failed && missing.attempt == 1, "\(missing.error ?? "")")

        // The upstream vanishes in the middle of the pack: nothing applied.
        for index in 0..<40 { try up.commit("c\(index)", ["f\(index)": String(repeating: "\(index)", count: 20_000)], push: false) }
        try up.git("push", "-q", "origin", "main")
        let daemon = try GitDaemonServer(base: up.base, logs: fx.scratch("daemon-logs").creatingDirectory())
        defer { daemon.stop() }
        let relay = try CuttingRelay(target: daemon.port, cutAfter: 4000)
        defer { relay.stop() }
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: relay.url(up.name), auth: .keep))
        let cut = try sync(fx, .pull)
        #expect(cut.status == .failed, "\(cut.refs ?? [])")
        #expect(cut.error?.isEmpty == false)
        #expect(try fx.bookmark(named: "main").changeID == .root)
        #expect(try fx.changeCount() == 0)
        // Still usable: a write works, and a pull from the real server completes.
        try fx.change(["x": "1\n"])
        _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: daemon.url(up.name), auth: .keep))
        let whole = try sync(fx, .pull)
        #expect(whole.status == .completed, "\(whole.error ?? "")")
        #expect(try fx.bookmark(named: "main").commitOID == up.head())
    }

    @Test func upstreamSettingsFollowPatchSemanticsAndHideTheSecret() throws {
        let fx = try Fixture()
        let created = try fx.store.createRepo(org: fx.org, name: "proj",
                                              upstream: ("https://example.com/a.git", .token("tok-123", username: nil)))
        #expect(created.upstream == Model.Upstream(url: "https://example.com/a.git", authKind: .token, latestSync: nil))
        // Omitted auth keeps the credential; a new url alone keeps it too.
        var repo = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: "https://example.com/b.git", auth: .keep))
        #expect(repo.upstream?.url == "https://example.com/b.git" && repo.upstream?.authKind == .token)
        repo = try fx.store.updateRepo(org: fx.org, name: "proj",
                                       upstream: .set(url: "https://example.com/b.git", auth: .replace(.usernamePassword(username: "u", password: "p"))))
        #expect(repo.upstream?.authKind == .usernamePassword)
        repo = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: "https://example.com/b.git", auth: .clear))
        #expect(repo.upstream?.authKind == nil)
        repo = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .remove)
        #expect(repo.upstream == nil)
        // The secret appears in no serialized form of the repo.
        let withSecret = try fx.store.updateRepo(org: fx.org, name: "proj",
                                                 upstream: .set(url: "https://example.com/c.git", auth: .replace(.token("tok-secret-9", username: nil))))
        let json = String(decoding: try JSONEncoder().encode(withSecret), as: UTF8.self)
        #expect(json.contains("c.git") && json.contains("token") && !json.contains("tok-secret-9"))
        // The url forms git users write are accepted.
        for (index, url) in ["ssh://git@example.com/acme/x.git", "git@example.com:acme/x.git", "git://example.com/x.git",
                             "http://127.0.0.1:8080/x.git", "file:///srv/git/x.git", "/srv/git/x.git"].enumerated() {
            #expect(try fx.store.createRepo(org: fx.org, name: "ok\(index)", upstream: (url, nil)).upstream?.url == url)
        }
        // Bad credentials are refused.
        expectStoreError(.invalidArgument) {
            _ = try fx.store.updateRepo(org: fx.org, name: "proj", upstream: .set(url: "https://example.com/c.git", auth: .replace(.token("", username: nil))))
        }
    }

    /// Every status change of a sync is a webhook event (sync.queued, sync.in_progress,
    /// sync.completed | sync.failed) whose data is the sync in its REST shape.
    @Test func syncStatusChangesAreWebhookEvents() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let head = try up.commit("first", ["a": "1\n"])
        let syncEvents: [WebhookEventType] = [.syncQueued, .syncInProgress, .syncCompleted, .syncFailed]
        let target = try fx.store.createWebhookTarget(org: fx.org, name: nil, url: "https://hooks.example.com/h",
                                                      events: syncEvents, repoIDs: nil)
        let repo = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (up.fileURL, nil))
        let done = try sync(fx, .pull)
        #expect(done.status == .completed)
        let gone = try fx.store.createRepo(org: fx.org, name: "gone", upstream: ("file:///nonexistent/upstream.git", nil))
        let failed = try sync(fx, .pull, repo: "gone")
        #expect(failed.status == .failed)

        // Deliveries are handed out in order, one per repo at a time: take each as delivered.
        var due: [PendingWebhookDelivery] = []
        while case let next = try fx.store.dueWebhookDeliveries(now: Date().addingTimeInterval(60)).due
                .filter({ $0.targetID == target.target.id }), !next.isEmpty {
            due += next
            for delivery in next {
                try fx.store.recordWebhookAttempt(targetID: delivery.targetID, eventSeq: delivery.eventSeq, .delivered(statusCode: 200))
            }
        }
        #expect(due.filter { $0.repoID == repo.id }.map(\.type) == [.syncQueued, .syncInProgress, .syncCompleted])
        #expect(due.filter { $0.repoID == gone.id }.map(\.type) == [.syncQueued, .syncInProgress, .syncFailed])
        let completed = try #require(due.first { $0.type == .syncCompleted })
        #expect(completed.repoID == repo.id && completed.repoName == "proj")
        let data = try #require(try JSONSerialization.jsonObject(with: Data(completed.data.utf8)) as? [String: Any])
        let payload = try #require(data["sync"] as? [String: Any])
        #expect(payload["id"] as? String == done.id && payload["status"] as? String == "completed")
        #expect(payload["direction"] as? String == "pull" && payload["repo_id"] as? String == repo.id)
        #expect((payload["ref_globs"] as? [String: Any])?["branches"] as? String == "*")
        let refs = try #require((payload["stats"] as? [String: Any])?["refs"] as? [[String: Any]])
        let main = try #require(refs.first { $0["name"] as? String == "refs/heads/main" })
        #expect(main["after"] as? String == head && main["before"] is NSNull && main["outcome"] as? String == "updated")
        let failure = try #require(due.first { $0.type == .syncFailed })
        let failedSync = try #require((try JSONSerialization.jsonObject(with: Data(failure.data.utf8)) as? [String: Any])?["sync"] as? [String: Any])
        #expect(failedSync["status"] as? String == "failed" && (failedSync["error"] as? String)?.isEmpty == false)
    }

    @Test func queuedSyncsSurviveARestartAndTheWorkerReportsEveryTransition() throws {
        let fx = try Fixture()
        let up = try Upstream(fx)
        let head = try up.commit("first", ["a": "1\n"])
        _ = try fx.store.createRepo(org: fx.org, name: "proj", upstream: (up.fileURL, nil))
        let queued = try fx.store.createSync(org: fx.org, repo: "proj", direction: .pull)
        try fx.reopen()  // as a restarted server
        let seen = Mutex<[SyncStatus]>([])
        fx.store.onSyncStatusChange { sync in if sync.id == queued.id { seen.withLock { $0.append(sync.status) } } }
        try fx.store.startSyncWorker()
        defer { fx.store.stopSyncWorker() }
        #expect(eventuallyBlocking { (try? fx.store.sync(org: fx.org, repo: "proj", id: queued.id).status.isFinished) == true })
        #expect(try fx.store.sync(org: fx.org, repo: "proj", id: queued.id).status == .completed)
        #expect(seen.withLock { $0 } == [.inProgress, .completed])
        #expect(try fx.bookmark(named: "main").commitOID == head)
        // Newest first, paged.
        let second = try fx.store.createSync(org: fx.org, repo: "proj", direction: .push)
        let page = try fx.store.listSyncs(org: fx.org, repo: "proj", limit: 1)
        #expect(page.items.map(\.id) == [second.id] && page.nextCursor != nil)
        let rest = try fx.store.listSyncs(org: fx.org, repo: "proj", cursor: page.nextCursor, limit: 1)
        #expect(rest.items.map(\.id) == [queued.id])
        expectStoreError(.notFound) { try fx.store.sync(org: fx.org, repo: "proj", id: "sync_nope") }
        expectStoreError(.invalidArgument) {
            try fx.store.createSync(org: fx.org, repo: "proj", direction: .pull, refGlobs: SyncRefGlobs(branches: ""))
        }
    }
}

extension String {
    /// Creates the directory at this path and returns the path.
    func creatingDirectory() throws -> String {
        try FileManager.default.createDirectory(atPath: self, withIntermediateDirectories: true)
        return self
    }
}
