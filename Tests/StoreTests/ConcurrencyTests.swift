import Dispatch
import Foundation
import Model
import Store
import Synchronization
import Testing

@Suite struct ConcurrencyTests {
    @Test func racingBookmarkMovesFromTheSameTipHaveExactlyOneWinner() throws {
        let fx = try Fixture(repo: "proj")
        let tip = try fx.change(["base.txt": "base"])
        try fx.move("main", to: tip)
        let store = fx.store, org = fx.org

        // Every writer (one thread each) builds its own change on the tip, waits until all
        // have, then they all move main at once.
        let writers = 8
        let results = Mutex<[Int: Result<ChangeID, MesaError>]>([:])
        let ready = DispatchGroup()
        let start = DispatchSemaphore(value: 0)
        for _ in 0..<writers { ready.enter() }
        DispatchQueue.global().async {
            ready.wait()
            for _ in 0..<writers { start.signal() }
        }
        onThreads(writers) { index in
            let result: Result<ChangeID, MesaError>
            do {
                let change: Change
                do {
                    change = try store.createChange(org: org, repo: "proj", base: tip.id,
                                                    files: [.upsert(path: "writer-\(index).txt", content: Array("\(index)".utf8))])
                } catch {
                    ready.leave()
                    throw error
                }
                ready.leave()
                start.wait()
                _ = try store.moveBookmark(org: org, repo: "proj", bookmark: "main", to: change.id, expectedFrom: tip.id)
                result = .success(change.id)
            } catch let error as MesaError {
                result = .failure(error)
            } catch {
                result = .failure(MesaError(.internal, "\(error)"))
            }
            results.withLock { $0[index] = result }
        }

        let all = results.withLock { $0 }
        #expect(all.count == writers)
        let winners = all.compactMap { try? $0.value.get() }
        let losers = all.compactMap { entry -> MesaError? in
            if case .failure(let error) = entry.value { return error }
            return nil
        }
        #expect(winners.count == 1, "exactly one move wins: \(all)")
        #expect(losers.count == writers - 1)
        #expect(losers.allSatisfy { $0.code == .conflict }, "every loser gets a conflict: \(losers)")
        let winner = try #require(winners.first)
        let main = try fx.bookmark(named: "main")
        #expect(main.changeID == winner)
        let ref = try fx.git("-C", fx.gitDirectory(), "rev-parse", "refs/heads/main")
        #expect(ref.trimmingCharacters(in: .whitespacesAndNewlines) == main.commitOID)
        #expect(try fx.changeCount() == writers + 1, "the losers' changes still exist")
    }

    @Test func parallelChangeCreationInOneRepoAllSucceed() throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["base.txt": "base"])
        let store = fx.store, org = fx.org
        let count = 50
        let created = Mutex<[Int: Change]>([:])
        let failures = Mutex<[String]>([])
        // 8 threads share the 50 changes between them.
        onThreads(8) { thread in
            for index in stride(from: thread, to: count, by: 8) {
                do {
                    let change = try store.createChange(org: org, repo: "proj", base: index.isMultiple(of: 2) ? base.id : .root,
                                                        message: "change \(index)",
                                                        files: [.upsert(path: "dir/file-\(index).txt", content: Array("content \(index)".utf8)),
                                                                .upsert(path: "shared.txt", content: Array("\(index)".utf8))])
                    created.withLock { $0[index] = change }
                } catch {
                    failures.withLock { $0.append("\(index): \(error)") }
                }
            }
        }

        #expect(failures.withLock { $0 }.isEmpty)
        let changes = created.withLock { $0 }
        #expect(changes.count == count)
        #expect(Set(changes.values.map(\.id)).count == count, "change ids are distinct")
        #expect(Set(changes.values.map(\.commitOID)).count == count)
        let listed = try fx.store.listChanges(org: fx.org, repo: "proj", limit: 100).items
        #expect(Set(listed.map(\.id)) == Set(changes.values.map(\.id)).union([base.id]))
        for (index, change) in changes {
            #expect(try fx.text("dir/file-\(index).txt", at: .change(change.id)) == "content \(index)")
            #expect(try fx.text("shared.txt", at: .change(change.id)) == "\(index)")
            #expect(change.message == "change \(index)")
        }
        try fx.git("-C", fx.gitDirectory(), "fsck", "--strict", "--no-dangling")
    }

    @Test func concurrentAmendsOfOneChangeLoseNoWrite() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["base.txt": "base"])
        try fx.move("main", to: change)
        let store = fx.store, org = fx.org
        let failures = Mutex<[String]>([])
        onThreads(8) { index in
            do {
                _ = try store.updateChange(org: org, repo: "proj", id: change.id,
                                           files: [.upsert(path: "amend-\(index).txt", content: Array("\(index)".utf8))])
            } catch {
                failures.withLock { $0.append("\(index): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(try fx.files(at: .change(change.id)) == ["amend-0.txt", "amend-1.txt", "amend-2.txt", "amend-3.txt",
                                                          "amend-4.txt", "amend-5.txt", "amend-6.txt", "amend-7.txt", "base.txt"])
        #expect(try fx.store.changeEvolution(org: fx.org, repo: "proj", id: change.id).count == 9)
        let current = try fx.store.change(org: fx.org, repo: "proj", id: change.id).change
        let ref = try fx.git("-C", fx.gitDirectory(), "rev-parse", "refs/heads/main")
        #expect(ref.trimmingCharacters(in: .whitespacesAndNewlines) == current.commitOID, "the bookmark follows the last amend")
    }

    @Test func concurrentAmendsWithTheSameExpectedCommitHaveOneWinner() throws {
        let fx = try Fixture(repo: "proj")
        let change = try fx.change(["base.txt": "base"])
        let store = fx.store, org = fx.org
        let all = contest(8) { index in
            _ = try store.updateChange(org: org, repo: "proj", id: change.id,
                                       files: [.upsert(path: "amend-\(index).txt", content: [])], expectedCommit: change.commitOID)
        }
        #expect(all.filter { $0 == nil }.count == 1, "\(all)")
        #expect(all.filter { $0 == .conflict }.count == 7, "\(all)")
        #expect(try fx.files(at: .change(change.id)).count == 2)
    }

    @Test func concurrentCreationOfOneBookmarkNameHasOneWinner() throws {
        let fx = try Fixture(repo: "proj")
        let store = fx.store, org = fx.org
        var changes: [Change] = []
        for index in 0..<8 { changes.append(try fx.change(["f": "\(index)"])) }
        let targets = changes
        let all = contest(8) { index in
            _ = try store.createBookmark(org: org, repo: "proj", bookmark: "release", at: targets[index].id)
        }
        let winners = all.indices.filter { all[$0] == nil }
        #expect(winners.count == 1, "\(all)")
        #expect(all.filter { $0 == .alreadyExists }.count == 7, "\(all)")
        let release = try fx.bookmark(named: "release")
        #expect(release.changeID == targets[try #require(winners.first)].id)
        let ref = try fx.git("-C", fx.gitDirectory(), "rev-parse", "refs/heads/release")
        #expect(ref.trimmingCharacters(in: .whitespacesAndNewlines) == release.commitOID)
    }

    @Test func concurrentCreationOfOneRepoNameHasOneWinnerAndOneGitDirectory() throws {
        let fx = try Fixture()
        let store = fx.store, org = fx.org
        let all = contest(8) { _ in _ = try store.createRepo(org: org, name: "contested") }
        #expect(all.filter { $0 == nil }.count == 1, "\(all)")
        #expect(all.filter { $0 == .alreadyExists }.count == 7, "\(all)")
        let repo = try fx.store.repo(org: fx.org, name: "contested")
        let directories = try FileManager.default.contentsOfDirectory(atPath: fx.storeDirectory + "/repos")
        #expect(directories == [repo.id + ".git"], "losers remove their git directories")
    }

    @Test func readsRunWhileWritersCommit() async throws {
        let fx = try Fixture(repo: "proj")
        let base = try fx.change(["stable.txt": "stable"])
        let store = fx.store, org = fx.org
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for step in 0..<10 {
                        _ = try store.createChange(org: org, repo: "proj", base: base.id,
                                                   files: [.upsert(path: "w\(writer)/\(step)", content: Array("x".utf8))])
                    }
                }
            }
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<20 {
                        guard case .file(_, let data, _, _) = try store.content(org: org, repo: "proj", at: .change(base.id), path: "stable.txt") else {
                            Issue.record("stable.txt is not a file"); return
                        }
                        #expect(data == Array("stable".utf8))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try fx.changeCount() == 41)
    }
}

/// Runs `body` on `count` dedicated threads at once (not a pool capped at the core
/// count, so writers really race even on a 2-core machine) and waits for all of them.
/// Runs `body` on `count` threads at once; what each thread got, by its index: nil for
/// success, else the code of the `MesaError` it threw (`.internal` for any other error).
func contest(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [MesaError.Code?] {
    let outcomes = Mutex<[MesaError.Code?]>(Array(repeating: nil, count: count))
    onThreads(count) { index in
        do {
            try body(index)
        } catch let error as MesaError {
            outcomes.withLock { $0[index] = error.code }
        } catch {
            outcomes.withLock { $0[index] = .internal }
        }
    }
    return outcomes.withLock { $0 }
}

func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchGroup()
    for index in 0..<count {
        done.enter()
        let thread = Thread {
            body(index)
            done.leave()
        }
        thread.start()
    }
    done.wait()
}
