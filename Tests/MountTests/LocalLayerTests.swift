import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// What the repository cannot hold but a local filesystem has — special files, hard
/// links, owners and every mode bit — kept in the mount's local layer: it behaves as on
/// ext4, never reaches history, and survives a restart (journal replay), before and
/// after an upload compacted the journal.
@Suite struct LocalLayerTests {
    let root = InodeTable.rootIno
    let agent = Caller(uid: 1000, gid: 1000)

    @Test func specialFilesAreLocalOnlyAndSurviveRestarts() throws {
        let fx = try MountFixture()
        try fx.seed(["keep.txt": "k\n"])
        var fs: RepoFileSystem? = try fx.mount()
        let fifo = try #require(fs).mknod(parent: root, name: "pipe", mode: UInt32(S_IFIFO) | 0o640, rdev: 0, caller: agent)
        let device = try #require(fs).mknod(parent: root, name: "null", mode: UInt32(S_IFCHR) | 0o666, rdev: 0x103)
        _ = try #require(fs).mknod(parent: root, name: "sock", mode: UInt32(S_IFSOCK) | 0o755, rdev: 0)
        #expect(fifo.kind == .fifo && fifo.permissions == 0o640 && fifo.uid == 1000)
        #expect(device.kind == .charDevice && device.rdev == 0x103)
        expectErrno(EEXIST) { try fs?.mknod(parent: root, name: "pipe", mode: UInt32(S_IFIFO) | 0o644, rdev: 0) }
        // Replay without an upload (kill -9), then after an upload compacted the journal.
        fs = nil
        fs = try fx.mount()
        #expect(try #require(fs).getattr(try #require(fs).ino("null")).rdev == 0x103)
        try fs?.writeText("new.txt", "n\n")
        try fs?.flush()
        let stored = try fx.tree(at: .change(#require(fs?.status().workingChange)))
        #expect(stored == ["keep.txt": "k\n", "new.txt": "n\n"], "special files never reach the repository")
        fs = nil
        let restarted = try fx.mount()
        let pipe = try restarted.getattr(try restarted.ino("pipe"))
        #expect(pipe.kind == .fifo && pipe.permissions == 0o640 && pipe.uid == 1000 && pipe.gid == 1000)
        #expect(try restarted.getattr(try restarted.ino("sock")).kind == .socket)
        #expect(try restarted.getattr(try restarted.ino("null")).kind == .charDevice)
    }

    @Test func hardLinksShareOneInodeAndUploadAsSeparatePaths() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "from the repo\n"])
        do {
        let mount = try fx.mount()
        let original = try mount.ino("a.txt")
        try mount.mkdir(parent: root, name: "d", permissions: 0o755)
        let linked = try mount.link(original, parent: try mount.ino("d"), name: "b.txt")
        #expect(linked.ino == original && linked.nlink == 2)
        #expect(try mount.getattr(original).nlink == 2)
        try mount.writeText("d/b.txt", "changed through the link\n")
        #expect(try mount.readText("a.txt") == "changed through the link\n", "both names are one file")
        try mount.flush()
        #expect(try fx.tree(at: .change(#require(mount.status().workingChange)))
                == ["a.txt": "changed through the link\n", "d/b.txt": "changed through the link\n"])
        // Renaming a secondary link keeps the identity; removing the primary promotes it.
        try mount.rename(parent: try mount.ino("d"), name: "b.txt", newParent: root, newName: "c.txt")
        try mount.unlink(parent: root, name: "a.txt")
        #expect(try mount.getattr(try mount.ino("c.txt")).nlink == 1)
        #expect(try mount.readText("c.txt") == "changed through the link\n")
        _ = try mount.link(try mount.ino("c.txt"), parent: root, name: "e.txt")
        try mount.flush()
        }
        let restarted = try fx.mount()
        #expect(try restarted.ino("c.txt") == restarted.ino("e.txt"), "link identity survives a restart")
        #expect(try restarted.getattr(try restarted.ino("e.txt")).nlink == 2)
        #expect(try fx.tree(at: .change(#require(restarted.status().workingChange)))
                == ["c.txt": "changed through the link\n", "e.txt": "changed through the link\n"])
    }

    @Test func ownersAndModesBehaveLocallyAndOnlyTheExecBitIsVersioned() throws {
        let fx = try MountFixture()
        try fx.seed(["tool": "#!/bin/sh\n"])
        do {
        let mount = try fx.mount()
        let shared = try mount.mkdir(parent: root, name: "shared", permissions: 0o2775, caller: Caller(uid: 0, gid: 50))
        #expect(shared.gid == 50 && shared.permissions == 0o2775)
        // setgid directory: new entries take its group, subdirectories stay setgid.
        let (file, opened) = try mount.create(parent: shared.ino, name: "notes", permissions: 0o600, flags: OpenFlags(write: true),
                                              caller: agent)
        try mount.flush(file.ino, handle: opened.handle)
        mount.release(file.ino, handle: opened.handle)
        #expect(file.uid == 1000 && file.gid == 50 && file.permissions == 0o600)
        let sub = try mount.mkdir(parent: shared.ino, name: "sub", permissions: 0o755, caller: agent)
        #expect(sub.gid == 50 && sub.permissions == 0o2755)
        _ = try mount.setattr(try mount.ino("tool"), AttributeChanges(permissions: 0o4711, uid: 1000))
        _ = try mount.setattr(try mount.ino("shared"), AttributeChanges(permissions: 0o1777))
        try mount.flush()
        let stored = try fx.paths(at: .change(#require(mount.status().workingChange)))
        #expect(stored == ["tool": .executable, "shared/notes": .regular], "history holds the exec bit only")
        }
        let restarted = try fx.mount()
        let tool = try restarted.getattr(try restarted.ino("tool"))
        #expect(tool.permissions == 0o4711 && tool.uid == 1000)
        #expect(try restarted.getattr(try restarted.ino("shared")).permissions == 0o1777)
        let notes = try restarted.getattr(try restarted.ino("shared/notes"))
        #expect(notes.uid == 1000 && notes.gid == 50 && notes.permissions == 0o600)
        #expect(try restarted.getattr(try restarted.ino("shared/sub")).permissions == 0o2755)
    }

    @Test func namesTheStoreRefusesAreRefusedAtCreateAndNothingIsCreated() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "a\n"])
        let fs = try fx.mount()
        for name in ["GIT~1", ".git.", ".git ", ".Git:stream", "git~1. "] {
            expectErrno(EINVAL) { try fs.create(parent: root, name: name, permissions: 0o644, flags: OpenFlags(write: true)) }
            expectErrno(EINVAL) { try fs.mkdir(parent: root, name: name, permissions: 0o755) }
            expectErrno(EINVAL) { try fs.symlink(parent: root, name: name, target: "a.txt") }
            expectErrno(EINVAL) { try fs.rename(parent: root, name: "a.txt", newParent: root, newName: name) }
            expectErrno(EINVAL) { try fs.link(try fs.ino("a.txt"), parent: root, name: name) }
        }
        // `.git` itself is the local-only repository directory git init makes.
        let git = try fs.mkdir(parent: root, name: ".git", permissions: 0o755)
        try fs.writeText(".git/HEAD", "ref: refs/heads/main\n")
        #expect(git.kind == .directory)
        // Paths over 4096 bytes: each name fits, the path does not.
        var parent = root
        var length = 0
        let segment = String(repeating: "d", count: 250)
        while length + 251 <= 4096 {
            parent = try fs.mkdir(parent: parent, name: segment, permissions: 0o755).ino
            length += 251
        }
        expectErrno(ENAMETOOLONG) { try fs.create(parent: parent, name: String(repeating: "f", count: 100), permissions: 0o644,
                                                  flags: OpenFlags(write: true)) }
        #expect(try fs.list(root) == [".git", "a.txt", segment])
        try fs.flush()
        #expect(fs.status().lastError == nil, "nothing the store refuses was created")
    }
}
