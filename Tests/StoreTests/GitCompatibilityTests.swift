import Foundation
import Model
import Store
import Testing

@Suite struct GitCompatibilityTests {
    /// `git fsck --strict` must exit 0 and print no error.
    func expectFsckClean(_ fx: Fixture, _ gitDirectory: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try fx.gitStatus("-C", gitDirectory, "fsck", "--strict", "--full")
        let output = result.stdout + result.stderr
        #expect(result.status == 0, "git fsck failed:\n\(output)", sourceLocation: sourceLocation)
        #expect(!output.lowercased().contains("error"), "git fsck reported:\n\(output)", sourceLocation: sourceLocation)
        #expect(!output.lowercased().contains("warning"), "git fsck reported:\n\(output)", sourceLocation: sourceLocation)
    }

    @Test func realisticHistoryClonesAndPassesFsck() throws {
        let fx = try Fixture(repo: "proj")
        let store = fx.store, org = fx.org
        // Initial import on main.
        let initial = try store.createChange(org: org, repo: "proj", base: .root, message: "Initial import", files: [
            .upsert(path: "README.md", content: bytes("# Project\n")),
            .upsert(path: "src/app.py", content: bytes("print('hello')\n")),
            .upsert(path: "scripts/build.sh", content: bytes("#!/bin/sh\nmake\n"), mode: .executable),
            .upsert(path: "docs/readme-link", content: bytes("../README.md"), mode: .symlink),
        ])
        _ = try store.moveBookmark(org: org, repo: "proj", bookmark: "main", to: initial.id)
        // A working change amended twice, then checkpointed onto main.
        let work = try fx.change(["src/app.py": "print('hello, world')\n"], base: initial.id, message: "wip")
        _ = try store.updateChange(org: org, repo: "proj", id: work.id, files: [.upsert(path: "src/util.py", content: bytes("X = 1\n"))])
        _ = try store.updateChange(org: org, repo: "proj", id: work.id, message: "Greet the world")
        _ = try store.moveBookmark(org: org, repo: "proj", bookmark: "main", to: work.id, expectedFrom: initial.id)
        // A feature branch from the initial import, merged back.
        _ = try store.createBookmark(org: org, repo: "proj", bookmark: "feature/docs", at: initial.id)
        let docs = try store.createChange(org: org, repo: "proj", base: initial.id, message: "Docs", files: [
            .upsert(path: "docs/guide.md", content: bytes("Read me.\n")), .delete(path: "docs/readme-link"),
        ])
        _ = try store.moveBookmark(org: org, repo: "proj", bookmark: "feature/docs", to: docs.id)
        let merge = try store.mergeBookmark(org: org, repo: "proj", target: "main", source: "feature/docs")
        #expect(merge.mergeType == .mergeCommit)
        _ = try store.createBookmark(org: org, repo: "proj", bookmark: "release", at: work.id)

        let gitDirectory = try fx.gitDirectory()
        try expectFsckClean(fx, gitDirectory)

        let clone = fx.scratch("clone")
        try fx.git("clone", "--quiet", gitDirectory, clone)
        // The clone checks out the default bookmark with the store's files, modes and links.
        let expected = try fx.files(at: .head)
        #expect(expected == ["README.md", "docs/guide.md", "scripts/build.sh", "src/app.py", "src/util.py"])
        for path in expected {
            let onDisk = try Data(contentsOf: URL(fileURLWithPath: clone + "/" + path))
            #expect(String(decoding: onDisk, as: UTF8.self) == (try fx.text(path, at: .head)), "\(path) differs in the clone")
        }
        #expect(!FileManager.default.fileExists(atPath: clone + "/docs/readme-link"))
        let attributes = try FileManager.default.attributesOfItem(atPath: clone + "/scripts/build.sh")
        #expect(((attributes[.posixPermissions] as? Int) ?? 0) & 0o100 != 0, "build.sh is executable in the clone")
        let branch = try fx.git("-C", clone, "rev-parse", "--abbrev-ref", "HEAD")
        #expect(branch == "main\n")
        let remotes = try fx.git("-C", clone, "branch", "-r")
        #expect(remotes.contains("origin/feature/docs") && remotes.contains("origin/release"))
        let head = try fx.git("-C", clone, "rev-parse", "HEAD")
        #expect(head.trimmingCharacters(in: .whitespacesAndNewlines) == merge.commitOID)
        // History and change ids survive the clone.
        let log = try fx.git("-C", clone, "log", "--format=%H %s", "HEAD")
        #expect(log.contains("Greet the world") && log.contains("Docs") && log.contains("Initial import"))
        #expect(!log.contains("wip"), "the amended message replaces the old one in the bookmark's history")
        let commit = try fx.git("-C", clone, "cat-file", "-p", "HEAD")
        #expect(commit.contains("change-id \(merge.changeID.rawValue)\n"))

        // The release branch has the symlink.
        let releaseClone = fx.scratch("release")
        try fx.git("clone", "--quiet", "--branch", "release", gitDirectory, releaseClone)
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: releaseClone + "/docs/readme-link")
        #expect(link == "../README.md")
        try expectFsckClean(fx, clone)
    }

    @Test func conflictedMergeStillPassesFsck() throws {
        let fx = try Fixture(repo: "proj")
        try fx.fork(base: ["f.txt": "a\nb\nc\n"], theirs: ["f.txt": "a\nTHEIRS\nc\n"], ours: ["f.txt": "a\nOURS\nc\n"])
        let merge = try fx.merge(target: "main", source: "feature", allowConflicted: true)
        #expect(merge.isConflicted)
        try expectFsckClean(fx, fx.gitDirectory())
        let clone = fx.scratch("clone")
        try fx.git("clone", "--quiet", fx.gitDirectory(), clone)
        let text = try String(contentsOfFile: clone + "/f.txt", encoding: .utf8)
        #expect(text.contains("<<<<<<<") && text.contains(">>>>>>>"))
    }

    @Test func largeChangeGoesThroughAPackAndReadsBackCorrectly() throws {
        let fx = try Fixture(repo: "proj")
        // A small change first, so pooled git handles exist from before the pack is written.
        let small = try fx.change(["before.txt": "before"])
        #expect(try fx.text("before.txt", at: .change(small.id)) == "before")
        let count = 300
        func body(_ index: Int, _ round: Int) -> [UInt8] { bytes("file \(index) round \(round)\n" + String(repeating: "\(index % 10)", count: index)) }
        let files = (0..<count).map { FileOperation.upsert(path: "d\($0 % 7)/f\($0).txt", content: body($0, 1)) }
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: files)
        try fx.move("main", to: change)

        let gitDirectory = try fx.gitDirectory()
        let packs = try FileManager.default.contentsOfDirectory(atPath: gitDirectory + "/objects/pack").filter { $0.hasSuffix(".pack") }
        #expect(packs.count == 1, "a change with \(count) files is written as one pack")
        // Without a delta search: it held ~100 MiB of mesad's memory for one batch.
        let pack = gitDirectory + "/objects/pack/" + (packs.first ?? "")
        let verified = try fx.git("verify-pack", "-v", String(pack.dropLast(5)) + ".idx")
        #expect(verified.contains("non delta: \(count + 9) objects"), "\(verified.suffix(300))")
        #expect(!verified.contains("chain length"), "\(verified.suffix(300))")
        let loose = try fx.git("-C", gitDirectory, "count-objects")
        #expect(Int(loose.split(separator: " ").first ?? "") ?? 999 < 10, "the large change's objects are not loose: \(loose)")
        #expect(try fx.files(at: .head).count == count)
        for index in [0, 1, 127, 128, 150, 299] {
            guard case .file(_, let data, _, _) = try fx.store.content(org: fx.org, repo: "proj", at: .head, path: "d\(index % 7)/f\(index).txt") else {
                Issue.record("f\(index) is missing"); continue
            }
            #expect(data == body(index, 1))
            let shown = try fx.git("-C", gitDirectory, "show", "\(change.commitOID):d\(index % 7)/f\(index).txt")
            #expect(shown == body(index, 1).text)
        }
        try expectFsckClean(fx, gitDirectory)

        // A second large change on top reads its base out of the first pack.
        let rewrite = (0..<count).map { FileOperation.upsert(path: "d\($0 % 7)/f\($0).txt", content: body($0, 2)) }
        let second = try fx.store.createChange(org: fx.org, repo: "proj", base: change.id, files: rewrite + [.delete(path: "d0")])
        #expect(try fx.files(at: .change(second.id)).count == count - (count + 6) / 7)
        #expect(try fx.text("d1/f1.txt", at: .change(second.id)) == body(1, 2).text)
        // A small amend on a packed change, and a large amend.
        _ = try fx.store.updateChange(org: fx.org, repo: "proj", id: change.id, files: [.upsert(path: "small.txt", content: bytes("s"))])
        _ = try fx.store.updateChange(org: fx.org, repo: "proj", id: change.id, files: rewrite)
        #expect(try fx.text("d2/f2.txt", at: .head) == body(2, 2).text)
        #expect(try fx.text("small.txt", at: .head) == "s")
        try expectFsckClean(fx, gitDirectory)
        let clone = fx.scratch("clone")
        try fx.git("clone", "--quiet", gitDirectory, clone)
        #expect(try String(contentsOfFile: clone + "/d5/f299.txt", encoding: .utf8) == body(299, 2).text)
    }

    @Test func emptyRepoClonesAndPassesFsck() throws {
        let fx = try Fixture(repo: "proj")
        try expectFsckClean(fx, fx.gitDirectory())
        let clone = fx.scratch("clone")
        let result = try fx.gitStatus("clone", "--quiet", fx.gitDirectory(), clone)
        #expect(result.status == 0, "\(result.stderr)")
    }
}
