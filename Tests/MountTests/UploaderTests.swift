import Foundation
import MesaAPI
import MesaIgnore
import Model
@testable import Mount
import Store
import Testing

/// An uploader over a hand-built inode table and a journal, as the core hands them
/// over: no `RepoFileSystem`, no FUSE. The mount shows `main` of the fixture's store.
private struct UploadHarness {
    let fx: MountFixture
    let backend: FaultInjectingBackend
    let journal: Journal
    let revision: RevisionView
    let state: Locked<CoreState>
    let uploader: Uploader
    let base: ChangeID

    init(_ fx: MountFixture, maxBatchBytes: Int = 16 << 20, streamThreshold: Int = 1 << 20) throws {
        self.fx = fx
        backend = FaultInjectingBackend(wrapping: fx.backend)
        base = try fx.store.bookmark(org: fx.org, repo: fx.repo, bookmark: "main").changeID
        journal = try Journal(directory: fx.journalDirectory)
        let header = JournalHeader(org: fx.org, repo: fx.repo, bookmark: "main", bookmarkExpected: base.rawValue,
                                   base: base.rawValue, working: nil, baseTime: Timestamp.now())
        try journal.rewrite(header: header, keep: { _, _ in true })
        revision = try RevisionView(org: fx.org, repo: fx.repo, header: header, backend: backend)
        let now = Timestamp.now()
        let root = Node(ino: InodeTable.rootIno, parent: InodeTable.rootIno, name: "", kind: .directory, permissions: 0o755,
                        uid: 0, gid: 0, size: 4096, atime: now, mtime: now, ctime: now, content: .none, children: [:])
        state = Locked(CoreState(table: InodeTable(root: root), readChange: base, baseTime: now))
        let configuration = MountConfiguration(org: fx.org, repo: fx.repo, journalDirectory: fx.journalDirectory,
                                               maxBatchBytes: maxBatchBytes, streamThreshold: streamThreshold,
                                               backgroundFlush: false)
        uploader = Uploader(configuration: configuration, backend: backend, cache: fx.cache, journal: journal, state: state,
                            revision: revision, logger: .init(label: "test.uploader"))
    }

    /// A file written on the mount: a data file, its node, its journal record, touched.
    func write(_ path: String, _ bytes: [UInt8], permissions: UInt32 = 0o644) throws {
        let data = try journal.createData(with: Data(bytes))
        insert(path, kind: .file, permissions: permissions, size: UInt64(bytes.count), content: .data(data))
        _ = try journal.append(.file(path: path, data: data, permissions: permissions))
    }

    func write(_ path: String, _ text: String) throws { try write(path, Array(text.utf8)) }

    func mkdir(_ path: String) throws {
        insert(path, kind: .directory, permissions: 0o755, size: 4096, content: .none, children: [:])
        _ = try journal.append(.mkdir(path: path, permissions: 0o755))
    }

    /// A path removed on the mount: no node, touched, journaled.
    func remove(_ path: String) throws {
        state.withLock { $0.table.touch(path) }
        _ = try journal.append(.remove(path: path))
    }

    private func insert(_ path: String, kind: NodeKind, permissions: UInt32, size: UInt64, content: FileContent,
                        children: [String: UInt64]? = nil) {
        state.withLock { state in
            let now = Timestamp.now()
            let parent = RepoFileSystem.lookupPath(state.table, parentPath(path)) ?? InodeTable.rootIno
            state.table.insert(Node(ino: state.table.allocateIno(), parent: parent, name: lastComponent(path), kind: kind,
                                    permissions: permissions, uid: 0, gid: 0, size: size, atime: now, mtime: now, ctime: now,
                                    content: content, children: children))
            state.table.touch(path)
        }
    }

    var touched: Set<String> { state.withLock { Set($0.table.touched.keys) } }
    var rules: IgnoreRules { IgnoreRules(mesaignore: nil) }
    func round(compactAlways: Bool = true) throws(MesaError) -> Bool {
        try uploader.round(rules: rules, compactAlways: compactAlways)
    }
    var recordedPaths: [String] { ((try? journal.load())?.records ?? []).flatMap(\.paths) }
}

@Suite struct UploaderTests {
    @Test func aRoundMakesTheWorkingChangeMatchTheTableAndForgetsWhatItUploaded() throws {
        let fx = try MountFixture()
        try fx.seed(["keep": "k", "gone": "g", "old/a": "a"])
        let up = try UploadHarness(fx)
        try up.write("keep", "k2")
        try up.write("new.txt", "n")
        try up.write("tool.sh", Array("#!/bin/sh".utf8), permissions: 0o755)
        try up.remove("gone")
        try up.remove("old")
        #expect(try up.round())
        let working = try #require(up.revision.current.working)
        #expect(try fx.store.change(org: fx.org, repo: fx.repo, id: working).change.parents == [up.base])
        #expect(try fx.tree(at: .change(working)) == ["keep": "k2", "new.txt": "n", "tool.sh": "x:#!/bin/sh"])
        #expect(up.touched.isEmpty)
        // A crash now must amend this change: the header on disk names it, and the
        // uploaded records are compacted away.
        let loaded = try #require(try up.journal.load())
        #expect(loaded.header.working == working.rawValue)
        #expect(loaded.records.isEmpty)
        #expect(up.backend.calls.filter { $0 == "createChange" }.count == 1)

        // Nothing touched: no backend call at all.
        let calls = up.backend.calls.count
        #expect(try !up.round())
        #expect(up.backend.calls.count == calls)

        // Later rounds amend the same change.
        try up.write("keep", "k3")
        #expect(try up.round())
        #expect(up.revision.current.working == working)
        #expect(try fx.tree(at: .change(working))["keep"] == "k3")
        #expect(up.backend.calls.filter { $0 == "createChange" }.count == 1)
    }

    @Test func localOnlyPathsStayJournaledAndMakeNoChange() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let up = try UploadHarness(fx)
        try up.mkdir(".git")
        try up.write(".git/HEAD", "ref: refs/heads/main")
        try up.write("cache.pyc", "bytecode")
        #expect(try !up.round())
        #expect(up.revision.current.working == nil)
        #expect(!up.backend.calls.contains("createChange") && !up.backend.calls.contains("updateChange"))
        #expect(up.touched.isEmpty, "local-only paths are not pending uploads")
        #expect(Set(up.recordedPaths).isSuperset(of: [".git", ".git/HEAD", "cache.pyc"]))
        #expect(!up.uploader.hasPending(rules: up.rules))
    }

    @Test func aFailingBackendChangesNothing() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let up = try UploadHarness(fx)
        try up.write("b", "2")
        up.backend.failNext(1, method: "createChange", with: MesaError(.unavailable, "server down (injected)"))
        #expect(throws: MesaError.self) { try up.round() }
        #expect(up.revision.current.working == nil)
        #expect(up.touched == ["b"])
        #expect(up.uploader.hasPending(rules: up.rules))
        #expect(try up.journal.load()?.header.working == nil)
        #expect(up.recordedPaths == ["b"], "the record stays until an upload holds it")
        #expect(try up.round())
        let working = try #require(up.revision.current.working)
        #expect(try fx.tree(at: .change(working)) == ["a": "1", "b": "2"])
    }

    @Test func largeFilesStreamAndARefusedOneStaysPendingWithItsRecords() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let up = try UploadHarness(fx, streamThreshold: 1024)
        let first = String(repeating: "x", count: 4096), second = String(repeating: "y", count: 8192)
        try up.write("big1.bin", first)
        try up.write("big2.bin", second)
        try up.write("small.txt", "s")
        // Paths upload in order: big1.bin is the one refused.
        up.backend.failNext(1, method: "uploadBlob", with: MesaError(.invalidArgument, "blob refused (injected)"))
        do {
            _ = try up.round()
            Issue.record("the round should report the refused file")
        } catch {
            #expect(error.message.contains("big1.bin") && error.message.contains("refused"), "\(error.message)")
            #expect(!error.message.contains("big2.bin"))
        }
        let working = try #require(up.revision.current.working)
        #expect(try fx.tree(at: .change(working)) == ["a": "1", "big2.bin": second, "small.txt": "s"])
        #expect(up.touched == ["big1.bin"])
        #expect(Set(up.recordedPaths) == ["big1.bin", "big2.bin", "small.txt"], "no compaction while a path failed")
        #expect(try up.round())
        #expect(try fx.tree(at: .change(working)) == ["a": "1", "big1.bin": first, "big2.bin": second, "small.txt": "s"])
        #expect(up.backend.calls.filter { $0 == "uploadBlob" }.count == 3)
        #expect(up.touched.isEmpty && up.recordedPaths.isEmpty)
    }

    @Test func batchesStayUnderTheByteCapAndDeletionsGoFirst() throws {
        let fx = try MountFixture()
        try fx.seed(["d/x": "1", "d/y": "2"])
        let up = try UploadHarness(fx, maxBatchBytes: 10)
        try up.remove("d")
        try up.write("one", "123456")
        try up.write("two", "abcdef")
        try up.write("three", "uvwxyz")
        #expect(try up.round())
        // Deletion of `d`, then three batches of one 6-byte file each.
        #expect(up.backend.calls.filter { ["createChange", "updateChange"].contains($0) }
                == ["createChange", "updateChange", "updateChange", "updateChange"])
        let working = try #require(up.revision.current.working)
        #expect(try fx.tree(at: .change(working)) == ["one": "123456", "two": "abcdef", "three": "uvwxyz"])
    }

    @Test func aBackgroundRoundCompactsOnlyOnceTheManifestGrew() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let up = try UploadHarness(fx)
        try up.write("b", "2")
        #expect(try up.round(compactAlways: false))
        #expect(up.touched.isEmpty)
        #expect(up.recordedPaths == ["b"], "a small manifest is not rewritten by a background round")
        #expect(try fx.tree(at: .change(try #require(up.revision.current.working)))["b"] == "2")
    }
}
