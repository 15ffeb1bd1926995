import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

@Suite struct CoreWriteTests {
    @Test func createWriteAppendTruncateAndSparseWrites() throws {
        let fx = try MountFixture()
        let fs = try fx.mount()
        try fs.writeText("new.txt", "hello")
        #expect(try fs.readText("new.txt") == "hello")
        try fs.writeText("new.txt", " world", append: true)
        #expect(try fs.readText("new.txt") == "hello world")
        try fs.writeText("new.txt", "bye")
        #expect(try fs.readText("new.txt") == "bye", "O_TRUNC")
        let ino = try fs.ino("new.txt")
        #expect(try fs.setattr(ino, AttributeChanges(size: 1)).size == 1)
        #expect(try fs.readText("new.txt") == "b")
        // A write past the end leaves a hole of zeros.
        let handle = try fs.open(ino, flags: OpenFlags(write: true)).handle
        _ = try Array("z".utf8).withUnsafeBytes { raw throws(FSError) in try fs.write(ino, handle: handle, offset: 4, bytes: raw) }
        try fs.flush(ino, handle: handle)
        fs.release(ino, handle: handle)
        #expect(try fs.getattr(ino).size == 5)
        #expect(Array(try fs.readText("new.txt").utf8) == [98, 0, 0, 0, 122])
    }

    @Test func modifyingAnExistingBlobCopiesItIn() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "0123456789"])
        let fs = try fx.mount()
        let ino = try fs.ino("a.txt")
        let reader = try fs.open(ino, flags: OpenFlags())
        #expect(reader.keepCache, "unmodified blobs keep the page cache")
        let writer = try fs.open(ino, flags: OpenFlags(write: true))
        #expect(!writer.keepCache)
        _ = try Array("AB".utf8).withUnsafeBytes { raw throws(FSError) in try fs.write(ino, handle: writer.handle, offset: 3, bytes: raw) }
        // The earlier reader sees the new bytes, as on any POSIX filesystem.
        let source = try fs.read(ino, handle: reader.handle, offset: 0, size: 100)
        var buffer = [UInt8](repeating: 0, count: source.length)
        _ = buffer.withUnsafeMutableBytes { pread(source.descriptor, $0.baseAddress, source.length, off_t(source.offset)) }
        #expect(String(decoding: buffer, as: UTF8.self) == "012AB56789")
        fs.release(ino, handle: reader.handle)
        fs.release(ino, handle: writer.handle)
    }

    @Test func directoriesRenamesAndSymlinks() throws {
        let fx = try MountFixture()
        try fx.seed(["d/x": "x", "d/sub/y": "y", "t": "target"])
        let fs = try fx.mount()
        let root = InodeTable.rootIno
        try fs.mkdirPath("e")
        #expect(try fs.list(root) == ["d", "e", "t"])
        expectErrno(ENOTEMPTY) { try fs.rmdir(parent: root, name: "d") }
        try fs.rmdir(parent: root, name: "e")
        // Move a directory that was never listed below its top.
        try fs.rename(parent: root, name: "d", newParent: root, newName: "moved")
        #expect(try fs.readText("moved/sub/y") == "y")
        expectErrno(ENOENT) { try fs.ino("d") }
        // Over an existing file, and RENAME_NOREPLACE / RENAME_EXCHANGE.
        try fs.writeText("other", "o")
        expectErrno(EEXIST) { try fs.rename(parent: root, name: "other", newParent: root, newName: "t", flags: renameNoReplace) }
        expectErrno(EINVAL) { try fs.rename(parent: root, name: "other", newParent: root, newName: "t", flags: renameExchange) }
        try fs.rename(parent: root, name: "other", newParent: root, newName: "t")
        #expect(try fs.readText("t") == "o")
        // Directories: over an empty one works, over a non-empty one does not.
        try fs.mkdirPath("empty")
        try fs.rename(parent: root, name: "moved", newParent: root, newName: "empty")
        #expect(try fs.readText("empty/x") == "x")
        try fs.mkdirPath("full")
        try fs.writeText("full/f", "f")
        expectErrno(ENOTEMPTY) { try fs.rename(parent: root, name: "empty", newParent: root, newName: "full") }
        expectErrno(EINVAL) { try fs.rename(parent: root, name: "empty", newParent: try fs.ino("empty/sub"), newName: "loop") }
        let link = try fs.symlink(parent: root, name: "ln", target: "empty/x")
        #expect(try fs.readlink(link.ino) == "empty/x")
        #expect(link.kind == .symlink)
    }

    @Test func errnosMatchPosix() throws {
        let fx = try MountFixture()
        try fx.seed(["f": "1", "d/g": "2"])
        let fs = try fx.mount()
        let root = InodeTable.rootIno
        let f = try fs.ino("f")
        expectErrno(ENOENT) { try fs.lookup(parent: root, name: "missing") }
        expectErrno(ENOENT) { try fs.unlink(parent: root, name: "missing") }
        expectErrno(EEXIST) { try fs.mkdir(parent: root, name: "f", permissions: 0o755) }
        expectErrno(EEXIST) { try fs.create(parent: root, name: "f", permissions: 0o644, flags: OpenFlags(write: true, exclusive: true)) }
        expectErrno(EEXIST) { try fs.symlink(parent: root, name: "d", target: "x") }
        expectErrno(ENOTEMPTY) { try fs.rmdir(parent: root, name: "d") }
        expectErrno(EISDIR) { try fs.unlink(parent: root, name: "d") }
        expectErrno(EISDIR) { try fs.open(try fs.ino("d"), flags: OpenFlags(write: true)) }
        expectErrno(EISDIR) { try fs.rename(parent: root, name: "f", newParent: root, newName: "d") }
        expectErrno(ENOTDIR) { try fs.rmdir(parent: root, name: "f") }
        expectErrno(ENOTDIR) { try fs.lookup(parent: f, name: "x") }
        expectErrno(ENOTDIR) { try fs.rename(parent: root, name: "d", newParent: root, newName: "f") }
        expectErrno(EPERM) { try fs.link(try fs.ino("d"), parent: root, name: "hard") }
        expectErrno(EEXIST) { try fs.link(f, parent: root, name: "d") }
        expectErrno(EINVAL) { try fs.mkdir(parent: root, name: "a/b", permissions: 0o755) }
    }

    @Test func unlinkedOpenFileStaysUsableUntilClosed() throws {
        let fx = try MountFixture()
        let fs = try fx.mount()
        try fs.writeText("tmp", "data")
        let ino = try fs.ino("tmp")
        let handle = try fs.open(ino, flags: OpenFlags(write: true)).handle
        try fs.unlink(parent: InodeTable.rootIno, name: "tmp")
        expectErrno(ENOENT) { try fs.ino("tmp") }
        _ = try Array("more".utf8).withUnsafeBytes { raw throws(FSError) in try fs.write(ino, handle: handle, offset: 4, bytes: raw) }
        let source = try fs.read(ino, handle: handle, offset: 0, size: 100)
        #expect(source.length == 8)
        #expect(try fs.getattr(ino).nlink == 0)
        fs.release(ino, handle: handle)
        fs.forget(ino, count: 100)
        expectErrno(ESTALE) { try fs.getattr(ino) }
        fs.journal.waitForRefills()
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: fx.journalDirectory + "/data").compactMap { UInt64($0) })
        #expect(left == fs.journal.pooledData, "the data file goes back to the pool with the last reference; only pool files stay")
    }

    /// A replay takes data files from the pool, which refills in the background; the
    /// garbage collection after the replay must not delete what that refill was about to
    /// pool (creates then failed with ENOENT after a restart).
    @Test func createsAfterAReplayNeverGetADeletedPoolFile() throws {
        let fx = try MountFixture()
        for round in 0..<3 {
            do {
                let fs = try fx.mount()
                for index in 0..<150 { try fs.writeText("r\(round)-\(index)", "\(index)") }
            }  // dropped without a flush: the next mount replays 150 more records
            let recovered = try fx.mount()
            #expect(try recovered.list(InodeTable.rootIno).count == 150 * (round + 1))
            recovered.journal.waitForRefills()
            for id in recovered.journal.pooledData {
                #expect(access(recovered.journal.dataPath(id), F_OK) == 0, "pooled data file \(id) exists")
            }
        }
    }

    @Test func fallocateExtendsAFileOpenForWriting() throws {
        let fx = try MountFixture()
        let fs = try fx.mount()
        try fs.writeText("f", "abc")
        let ino = try fs.ino("f")
        let handle = try fs.open(ino, flags: OpenFlags(write: true)).handle
        try fs.fallocate(ino, handle: handle, mode: 0, offset: 0, length: 4096)
        #expect(try fs.getattr(ino).size == 4096)
        fs.release(ino, handle: handle)
        let reader = try fs.open(ino, flags: OpenFlags()).handle
        expectErrno(EBADF) { try fs.fallocate(ino, handle: reader, mode: 0, offset: 0, length: 10) }
        fs.release(ino, handle: reader)
    }

    @Test func chmodVersionsTheExecBitAndKeepsOtherBits() throws {
        let fx = try MountFixture()
        try fx.seed(["s.sh": "echo"])
        let fs = try fx.mount()
        let ino = try fs.ino("s.sh")
        #expect(try fs.setattr(ino, AttributeChanges(permissions: 0o750)).permissions == 0o750)
        let now = Timestamp(seconds: 1_700_000_000, nanoseconds: 5)
        #expect(try fs.setattr(ino, AttributeChanges(atime: now, mtime: now)).mtime == now)
        try fs.flush()
        #expect(try fx.tree(at: .change(#require(fs.status().workingChange)))["s.sh"] == "x:echo")
    }
}
