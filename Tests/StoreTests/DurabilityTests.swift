import Foundation
import Model
import Store
import Testing

@Suite struct DurabilityTests {
    @Test func everythingWrittenIsThereAfterReopening() throws {
        let fx = try Fixture()
        _ = try fx.store.createOrg(slug: "beta", name: "Beta")
        let repo = try fx.makeRepo("proj", tags: ["env": "prod"])
        let a = try fx.change(["a.txt": "v1"], message: "first")
        let amended = try fx.store.updateChange(org: fx.org, repo: "proj", id: a.id, message: "first, amended",
                                                files: [.upsert(path: "a.txt", content: bytes("v2"))])
        let b = try fx.change(["b.txt": "b"], base: a.id, message: "second")
        try fx.move("main", to: b)
        try fx.bookmark("first", at: a)
        let key = try fx.store.createAPIKey(org: fx.org, name: "kept", scopes: [.read], repoIDs: [repo.id], tags: ["team": "x"])
        let gone = try fx.store.createAPIKey(org: fx.org, name: "gone")
        try fx.store.revokeAPIKey(org: fx.org, id: gone.key.id)
        let doomed = try fx.makeRepo("doomed")
        try fx.store.deleteRepo(org: fx.org, name: "doomed")

        try fx.reopen()

        #expect(try fx.store.listOrgs().map(\.slug) == ["acme", "beta"])
        #expect(try fx.store.org("beta").name == "Beta")
        let reopened = try fx.store.repo(org: fx.org, name: "proj")
        #expect(reopened.id == repo.id)
        #expect(reopened.tags == ["env": "prod"])
        #expect(reopened.headChangeID == b.id)
        expectStoreError(.notFound) { try fx.store.repo(id: doomed.id) }
        #expect(try fx.store.listRepos(org: fx.org).items.map(\.name) == ["proj"])

        let detail = try fx.store.change(org: fx.org, repo: "proj", id: a.id)
        #expect(detail.change.commitOID == amended.commitOID)
        #expect(detail.change.message == "first, amended")
        #expect(try fx.store.changeEvolution(org: fx.org, repo: "proj", id: a.id) == [a.commitOID, amended.commitOID])
        #expect(try fx.store.listChanges(org: fx.org, repo: "proj").items.map(\.id) == [b.id, a.id])
        #expect(try fx.text("a.txt", at: .head) == "v2")
        #expect(try fx.text("b.txt", at: .head) == "b")
        #expect(try fx.bookmark(named: "first").commitOID == amended.commitOID)
        #expect(try fx.store.listBookmarks(org: fx.org, repo: "proj").items.map(\.name) == ["first", "main"])

        let principal = try fx.store.authenticate(secret: key.secret)
        #expect(principal.keyID == key.key.id)
        #expect(principal.scopes == [.read])
        #expect(principal.repoIDs == [repo.id])
        #expect(try fx.store.apiKey(org: fx.org, id: key.key.id).tags == ["team": "x"])
        expectStoreError(.keyRevoked) { try fx.store.authenticate(secret: gone.secret) }

        // And the reopened store keeps working.
        let c = try fx.change(["c.txt": "c"], base: b.id)
        _ = try fx.store.moveBookmark(org: fx.org, repo: "proj", bookmark: "main", to: c.id, expectedFrom: b.id)
        try fx.reopen()
        #expect(try fx.files(at: .head) == ["a.txt", "b.txt", "c.txt"])
    }

    @Test func aSecondStoreOnTheSameDirectoryIsRefusedWhileTheFirstIsOpen() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        expectStoreError(.conflict) { try Store(directory: fx.storeDirectory) }
        // The refused open disturbed nothing: the first instance keeps working.
        try fx.move("main", to: a)
        // Once the first instance is gone, the directory opens again.
        try fx.reopen()
        #expect(try fx.text("a", at: .head) == "a")
    }

    @Test func aFailedOpenLeavesTheDirectoryUnlocked() throws {
        let fx = try Fixture()
        let directory = fx.scratch("broken")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: directory + "/meta.sqlite"))
        expectStoreError(.internal) { try Store(directory: directory) }
        // Once the damage is repaired, the same process can open the directory.
        try FileManager.default.removeItem(atPath: directory + "/meta.sqlite")
        let store = try Store(directory: directory)
        #expect(try store.listOrgs().isEmpty)
    }

    @Test func reopeningRemovesGitDirectoriesOfReposThatNoLongerExist() throws {
        let fx = try Fixture()
        let repo = try fx.makeRepo()
        let orphan = fx.storeDirectory + "/repos/repo_0123456789abcdef01234567.git"
        try fx.git("init", "--quiet", "--bare", orphan)
        try fx.reopen()
        #expect(!FileManager.default.fileExists(atPath: orphan))
        #expect(FileManager.default.fileExists(atPath: try fx.gitDirectory() + "/HEAD"))
        #expect(try fx.store.repo(id: repo.id).name == "proj")
    }

    @Test func reopeningRestoresBookmarkRefsMissingFromGit() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["a": "a"])
        try fx.move("main", to: a)
        let gitDirectory = try fx.gitDirectory()
        // As if a crash had happened between the metadata commit and the ref update,
        // plus a stray branch the metadata does not know.
        try fx.git("-C", gitDirectory, "update-ref", "-d", "refs/heads/main")
        try fx.git("-C", gitDirectory, "update-ref", "refs/heads/stray", a.commitOID)
        try fx.reopen()
        let main = try fx.git("-C", gitDirectory, "rev-parse", "refs/heads/main")
        #expect(main.trimmingCharacters(in: .whitespacesAndNewlines) == a.commitOID)
        #expect(try fx.gitStatus("-C", gitDirectory, "rev-parse", "--verify", "--quiet", "refs/heads/stray").status != 0)
    }
}

/// A full disk is an error a user can act on (NO_SPACE, transient), not a bug (INTERNAL),
/// and it leaves the store as it was.
@Suite(.enabled(if: getuid() == 0, "needs root to mount a small tmpfs"), .timeLimit(.minutes(2)))
struct FullDiskTests {
    @Test func aFullDiskIsNoSpaceAndChangesNothing() throws {
        let directory = try makeTemporaryDirectory("full-disk")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mountPoint = directory + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try #require(run("/bin/mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mountPoint]) == 0)
        defer { _ = run("/bin/umount", ["-l", mountPoint]) }
        let store = try Store(directory: mountPoint + "/store")
        _ = try store.createOrg(slug: "acme")
        _ = try store.createRepo(org: "acme", name: "proj")
        let first = try store.createChange(org: "acme", repo: "proj", base: .root, message: "small",
                                           files: [.upsert(path: "a.txt", content: Array("a\n".utf8))])
        // Random bytes do not compress: a 6 MiB file cannot fit in 3 MiB.
        var generator = SystemRandomNumberGenerator()
        let big = (0..<(6 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        do {
            _ = try store.createChange(org: "acme", repo: "proj", base: first.id, message: "big",
                                       files: [.upsert(path: "big.bin", content: big)])
            Issue.record("a 6 MiB change fitted a 3 MiB disk")
        } catch let error as MesaError {
            #expect(error.code == .noSpace, "\(error.code): \(error.message)")
            #expect(error.errorClass == .transient)
        }
        #expect(try store.listChanges(org: "acme", repo: "proj").items.map(\.id) == [first.id])
    }

    func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
