import Foundation
import Model
import Store
import Testing

@Suite struct ContentTests {
    /// A repo whose change `tree` holds:
    /// README (10 bytes), run.sh (executable), link -> README, src/main.swift, src/lib/util.swift
    func makeTree(_ fx: Fixture) throws -> Change {
        try fx.makeRepo()
        return try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [
            .upsert(path: "README", content: bytes("0123456789")),
            .upsert(path: "run.sh", content: bytes("#!/bin/sh\n"), mode: .executable),
            .upsert(path: "link", content: bytes("README"), mode: .symlink),
            .upsert(path: "src/main.swift", content: bytes("print(1)\n")),
            .upsert(path: "src/lib/util.swift", content: bytes("let x = 1\n")),
        ])
    }

    @Test func fileContentHasBytesModeAndGitBlobID() throws {
        let fx = try Fixture()
        let change = try makeTree(fx)
        guard case .file(let path, let data, let mode, let oid) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "src/main.swift") else {
            Issue.record("src/main.swift is not a file"); return
        }
        #expect(path == "src/main.swift")
        #expect(data.text == "print(1)\n")
        #expect(mode == .regular)
        let gitOID = try fx.git("-C", fx.gitDirectory(), "rev-parse", "\(change.commitOID):src/main.swift")
        #expect(oid == gitOID.trimmingCharacters(in: .whitespacesAndNewlines))

        guard case .file(_, _, let scriptMode, _) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "run.sh") else {
            Issue.record("run.sh is not a file"); return
        }
        #expect(scriptMode == .executable)
    }

    @Test func binaryFileContentRoundTripsExactly() throws {
        let fx = try Fixture(repo: "proj")
        let data: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } + [0, 0, 255]
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [.upsert(path: "blob.bin", content: data)])
        guard case .file(_, let read, _, _) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "blob.bin") else {
            Issue.record("blob.bin is not a file"); return
        }
        #expect(read == data)
        let empty = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: [.upsert(path: "empty", content: [])])
        guard case .file(_, let nothing, _, _) = try fx.store.content(org: fx.org, repo: "proj", at: .change(empty.id), path: "empty") else {
            Issue.record("empty is not a file"); return
        }
        #expect(nothing.isEmpty)
    }

    @Test func symlinkContentIsItsTarget() throws {
        let fx = try Fixture()
        let change = try makeTree(fx)
        guard case .symlink(let path, let target, let oid) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "link") else {
            Issue.record("link is not a symlink"); return
        }
        #expect(path == "link")
        #expect(target == "README")
        #expect(oid.count == 40)
    }

    @Test func rootDirectoryListsDirectChildrenWithTypesAndSizes() throws {
        let fx = try Fixture()
        let change = try makeTree(fx)
        guard case .directory(let path, let oid, let entries) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id)) else {
            Issue.record("root is not a directory"); return
        }
        #expect(path == "")
        let gitTree = try fx.git("-C", fx.gitDirectory(), "rev-parse", "\(change.commitOID)^{tree}")
        #expect(oid == gitTree.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(entries.map(\.name) == ["README", "link", "run.sh", "src"])
        let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        #expect(byName["README"]?.type == .file)
        #expect(byName["README"]?.size == 10)
        #expect(byName["README"]?.mode == .regular)
        #expect(byName["run.sh"]?.mode == .executable)
        #expect(byName["link"]?.type == .symlink)
        #expect(byName["link"]?.size == 6)
        #expect(byName["link"]?.mode == .symlink)
        #expect(byName["src"]?.type == .dir)
        #expect(byName["src"]?.size == nil)
        #expect(byName["src"]?.mode == nil)
        #expect(byName["src"]?.path == "src")
    }

    @Test func directoryDepthControlsHowDeepEntriesGo() throws {
        let fx = try Fixture()
        let change = try makeTree(fx)
        func paths(_ path: String, depth: Int) throws -> [String] {
            guard case .directory(_, _, let entries) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: path, depth: depth) else {
                Issue.record("\(path) is not a directory"); return []
            }
            return entries.map(\.path).sorted()
        }
        #expect(try paths("", depth: 0) == [])
        #expect(try paths("", depth: 1) == ["README", "link", "run.sh", "src"])
        #expect(try paths("", depth: 2) == ["README", "link", "run.sh", "src", "src/lib", "src/main.swift"])
        #expect(try paths("", depth: 3) == ["README", "link", "run.sh", "src", "src/lib", "src/lib/util.swift", "src/main.swift"])
        #expect(try paths("src", depth: 1) == ["src/lib", "src/main.swift"])
        #expect(try paths("src/lib", depth: 1) == ["src/lib/util.swift"])
        expectStoreError(.invalidArgument) { try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), depth: -1) }
        expectStoreError(.invalidArgument) { try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), depth: 11) }
    }

    @Test func contentResolvesHeadBookmarkAndChange() throws {
        let fx = try Fixture(repo: "proj")
        let a = try fx.change(["f": "at a"])
        let b = try fx.change(["f": "at b"], base: a.id)
        try fx.move("main", to: a)
        try fx.bookmark("feature", at: b)
        #expect(try fx.text("f", at: .head) == "at a")
        #expect(try fx.text("f", at: .bookmark("main")) == "at a")
        #expect(try fx.text("f", at: .bookmark("feature")) == "at b")
        #expect(try fx.text("f", at: .change(b.id)) == "at b")
        #expect(try fx.text("f", at: .change(a.id)) == "at a")
        #expect(try fx.store.resolveChange(org: fx.org, repo: "proj", .head).id == a.id)
        #expect(try fx.store.resolveChange(org: fx.org, repo: "proj", .bookmark("feature")).id == b.id)
        expectStoreError(.notFound) { try fx.store.content(org: fx.org, repo: "proj", at: .bookmark("nope"), path: "f") }
        expectStoreError(.notFound) {
            try fx.store.content(org: fx.org, repo: "proj", at: .change(ChangeID(String(repeating: "l", count: 32))), path: "f")
        }
    }

    @Test func rootChangeIsAnEmptyDirectory() throws {
        let fx = try Fixture(repo: "proj")
        for revision in [Revision.head, .bookmark("main"), .change(.root)] {
            guard case .directory(let path, let oid, let entries) = try fx.store.content(org: fx.org, repo: "proj", at: revision) else {
                Issue.record("root at \(revision) is not a directory"); continue
            }
            #expect(path == "")
            #expect(entries.isEmpty)
            #expect(oid == "4b825dc642cb6eb9a060e54bf8d69288fbee4904")
            expectStoreError(.notFound) { try fx.store.content(org: fx.org, repo: "proj", at: revision, path: "anything") }
        }
    }

    @Test func missingPathIsNotFound() throws {
        let fx = try Fixture()
        let change = try makeTree(fx)
        for path in ["nope", "src/nope.swift", "README/below", "src/lib/util.swift/x", "readme"] {
            let error = expectStoreError(.notFound) { try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: path) }
            #expect(error?.message.contains(path) == true)
        }
    }

    @Test(arguments: ["/README", "../x", "src/../README", "./README", "src//main.swift", "src/", ".git/config", "src/.GIT", "a\0b"])
    func badContentPathsAreRefused(_ path: String) throws {
        let fx = try Fixture()
        let change = try makeTree(fx)
        expectStoreError(.invalidArgument) { try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: path) }
    }
}
