import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

@Suite struct CoreReadTests {
    @Test func mountFetchesNothingUntilLookedUp() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "alpha", "dir/b.txt": "beta"])
        let recorder = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try fx.mount(backend: recorder)
        #expect(!recorder.calls.contains("content"))
        #expect(!recorder.calls.contains("downloadBlob"))
        _ = try fs.ino("dir")
        #expect(recorder.calls.filter { $0 == "content" }.count == 1, "only the root listing")
        #expect(!recorder.calls.contains("downloadBlob"))
        #expect(try fs.readText("dir/b.txt") == "beta")
        #expect(recorder.calls.filter { $0 == "downloadBlob" }.count == 1)
        // The second read is served from the blob cache.
        #expect(try fs.readText("dir/b.txt") == "beta")
        #expect(recorder.calls.filter { $0 == "downloadBlob" }.count == 1)
    }

    @Test func cachedAnswersNeverBlock() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "alpha"])
        let fs = try fx.mount()
        expectErrno(FSError.wouldBlockErrno) { try fs.lookup(parent: InodeTable.rootIno, name: "a.txt", mayBlock: false) }
        let ino = try fs.lookup(parent: InodeTable.rootIno, name: "a.txt").ino
        #expect(try fs.lookup(parent: InodeTable.rootIno, name: "a.txt", mayBlock: false).ino == ino)
        expectErrno(FSError.wouldBlockErrno) { try fs.open(ino, flags: OpenFlags(), mayBlock: false) }
    }

    @Test func attributesReflectModesSizesAndSymlinks() throws {
        let fx = try MountFixture()
        try fx.seed(["run.sh": "#!/bin/sh\n", "doc.md": "hello"], executable: ["run.sh"], symlinks: ["link": "doc.md"])
        let fs = try fx.mount()
        let script = try fs.getattr(try fs.ino("run.sh"))
        #expect(script.kind == .file)
        #expect(script.permissions == 0o755)
        #expect(script.size == 10)
        let doc = try fs.getattr(try fs.ino("doc.md"))
        #expect(doc.permissions == 0o644)
        #expect(doc.nlink == 1)
        let link = try fs.getattr(try fs.ino("link"))
        #expect(link.kind == .symlink)
        #expect(try fs.readlink(link.ino) == "doc.md")
        let root = try fs.getattr(InodeTable.rootIno)
        #expect(root.kind == .directory)
        #expect(root.mtime == doc.mtime, "unmodified entries share the revision's time, stable across stats")
        #expect(try fs.getattr(doc.ino).mtime == doc.mtime)
    }

    @Test func inodeNumbersAreStablePerPath() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1", "d/b": "2"])
        let fs = try fx.mount()
        let a = try fs.ino("a")
        fs.forget(a, count: 10)
        #expect(try fs.ino("a") == a)
        let b = try fs.ino("d/b")
        try fs.mkdirPath("e")
        let (parent, _) = try fs.parentAndName("d/b")
        try fs.rename(parent: parent, name: "b", newParent: try fs.ino("e"), newName: "c")
        #expect(try fs.ino("e/c") == b, "rename moves the inode")
    }

    @Test func readdirListsEntriesWithDotsAndStableOffsets() throws {
        let fx = try MountFixture()
        try fx.seed(["b": "", "a": "", "sub/x": ""])
        let fs = try fx.mount()
        let handle = try fs.opendir(InodeTable.rootIno)
        let all = try fs.readdir(handle: handle, offset: 0).map(\.name)
        #expect(all == [".", "..", "a", "b", "sub"])
        #expect(try fs.readdir(handle: handle, offset: 3).map(\.name) == ["b", "sub"])
        fs.releasedir(handle: handle)
        let sub = try fs.readdir(handle: try fs.opendir(try fs.ino("sub")), offset: 0)
        #expect(sub.map(\.kind) == [.directory, .directory, .file])
    }

    @Test func statfsReportsTheJournalDisk() throws {
        let fx = try MountFixture()
        let stats = try fx.mount().statfs()
        #expect(stats.blockSize > 0)
        #expect(stats.blocks > 0)
        #expect(stats.nameMax == 255)
    }

    @Test func blobCacheEvictsLeastRecentlyUsedAndSurvivesRestart() throws {
        let fx = try MountFixture()
        let directory = fx.scratch("cache")
        let cache = try BlobCache(directory: directory, maxBytes: 250)
        let oids = (0..<3).map { String(repeating: String($0), count: 40) }
        try cache.store(oids[0], bytes: [UInt8](repeating: 1, count: 100))
        try cache.store(oids[1], bytes: [UInt8](repeating: 2, count: 100))
        _ = cache.path(for: oids[0])  // oids[1] is now the least recently used
        try cache.store(oids[2], bytes: [UInt8](repeating: 3, count: 100))
        #expect(cache.contains(oids[0]))
        #expect(!cache.contains(oids[1]))
        #expect(cache.contains(oids[2]))
        #expect(cache.usedBytes == 200)
        let reopened = try BlobCache(directory: directory, maxBytes: 250)
        #expect(reopened.count == 2)
        #expect(try readFile(reopened.path(for: oids[2]) ?? "") == [UInt8](repeating: 3, count: 100))
    }

    @Test func readOnlyMountRefusesEveryWrite() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1", "d/x": "2"])
        let fs = try fx.mount(mode: .ro)
        let a = try fs.ino("a")
        let root = InodeTable.rootIno
        expectErrno(EROFS) { try fs.create(parent: root, name: "n", permissions: 0o644, flags: OpenFlags(write: true)) }
        expectErrno(EROFS) { try fs.open(a, flags: OpenFlags(write: true)) }
        expectErrno(EROFS) { try fs.mkdir(parent: root, name: "m", permissions: 0o755) }
        expectErrno(EROFS) { try fs.unlink(parent: root, name: "a") }
        expectErrno(EROFS) { try fs.rmdir(parent: root, name: "d") }
        expectErrno(EROFS) { try fs.rename(parent: root, name: "a", newParent: root, newName: "b") }
        expectErrno(EROFS) { try fs.symlink(parent: root, name: "l", target: "a") }
        expectErrno(EROFS) { try fs.setattr(a, AttributeChanges(permissions: 0o755)) }
        expectErrno(EROFS) { try fs.setattr(a, AttributeChanges(size: 0)) }
        expectErrno(EROFS) { try fs.link(a, parent: root, name: "h") }
        #expect(try fs.readText("a") == "1")
    }
}
