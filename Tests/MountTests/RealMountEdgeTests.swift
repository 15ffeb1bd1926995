import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// The edges real tools hit, through the kernel: special files in use, names that are
/// not UTF-8, and a full disk under the journal.
@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .serialized, .timeLimit(.minutes(5)))
struct RealMountEdgeTests {
    @Test func fifosSocketsAndDeviceNodesWorkAndStayLocal() throws {
        let fx = try MountFixture()
        try fx.seed(["a.txt": "a\n"])
        let fs = try fx.mount()
        try fx.withMount(fs) { path in
            // A FIFO carries data between two processes; a Unix socket accepts a client;
            // a character device node (1,3 = /dev/null) swallows writes.
            try mustRun("mkfifo pipe && (echo through-the-pipe > pipe &) && test \"$(cat pipe)\" = through-the-pipe", in: path)
            try mustRun("""
                python3 -c "
                import socket, os
                server = socket.socket(socket.AF_UNIX); server.bind('sock'); server.listen(1)
                client = socket.socket(socket.AF_UNIX); client.connect('sock')
                peer, _ = server.accept(); client.sendall(b'hi'); assert peer.recv(2) == b'hi'
                assert os.path.exists('sock')
                "
                """, in: path)
            try mustRun("mknod null c 1 3 && echo discarded > null && test ! -s null && test \"$(stat -c %t,%T null)\" = 1,3", in: path)
            try mustRun("test -p pipe && test -S sock && test -c null", in: path)
        }
        try fs.flush()
        #expect(fs.status().workingChange == nil && fs.status().pendingUploads == 0, "special files are never uploaded")
    }

    @Test func namesThatAreNotUTF8AreRefusedAndNothingIsCreated() throws {
        let fx = try MountFixture()
        try fx.seed(["caf\u{e9}.txt": "utf-8 name\n"])
        let fs = try fx.mount()
        try fx.withMount(fs) { path in
            // Latin-1 "café.txt" must neither be created nor reach the UTF-8 "café.txt".
            try mustRun("""
                python3 -c "
                import errno, os
                def refused(call):
                    try: call()
                    except OSError as e: return e.errno
                    return 0
                latin1 = b'caf\\xe9.txt'
                assert refused(lambda: open(latin1, 'wb')) == errno.EILSEQ
                assert refused(lambda: os.mkdir(b'dir\\xff')) == errno.EILSEQ
                assert refused(lambda: os.symlink(b'x', b'l\\xfe')) == errno.EILSEQ
                assert refused(lambda: os.rename('caf\\u00e9.txt', b'r\\xe9')) == errno.EILSEQ
                assert refused(lambda: os.unlink(latin1)) == errno.ENOENT
                assert refused(lambda: os.stat(latin1)) == errno.ENOENT
                assert os.listdir('.') == ['caf\\u00e9.txt'], os.listdir('.')
                assert open('caf\\u00e9.txt').read() == 'utf-8 name\\n'
                "
                """, in: path)
        }
        #expect(fs.status().pendingUploads == 0, "nothing was changed")
    }

    /// The journal's disk fills up: every write that fails leaves its file exactly as
    /// before (the failing call reports ENOSPC), nothing acknowledged is lost, and once
    /// space is freed the mount works again and uploads exactly what was acknowledged,
    /// also after a restart.
    @Test func aFullDiskLosesNothingAcknowledgedAndRecovers() throws {
        guard getuid() == 0 else { return }  // mounting a tmpfs needs root
        let fx = try MountFixture()
        try fx.seed(["seed.txt": "seed\n"])
        let small = fx.scratch("small-disk")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        try mustRun("mount -t tmpfs -o size=3m tmpfs \(small)", in: fx.root.path)
        defer { _ = try? shell("umount -l \(small)", in: fx.root.path) }
        let journal = small + "/journal"
        do {
            let fs = try fx.mount(journal: journal)
            try fx.withMount(fs) { path in
                try mustRun("""
                    python3 -c "
                    import errno, os
                    chunk = b'0123456789abcdef' * 4096   # 64 KiB
                    def fill(name, flags):
                        fd = os.open(name, flags, 0o644)
                        done = 0
                        try:
                            while True:
                                done += os.write(fd, chunk)
                        except OSError as e:
                            assert e.errno == errno.ENOSPC, e
                        os.close(fd)
                        return done
                    written = fill('big.bin', os.O_WRONLY | os.O_CREAT)
                    assert written > 0 and written % len(chunk) == 0, written
                    assert os.path.getsize('big.bin') == written
                    assert open('big.bin', 'rb').read() == chunk * (written // len(chunk))
                    # An append that fails is not counted anywhere: size, bytes and upload agree.
                    appended = fill('log.bin', os.O_WRONLY | os.O_CREAT | os.O_APPEND)
                    assert os.path.getsize('log.bin') == appended == len(open('log.bin', 'rb').read())
                    # Creating files until the journal itself is full: a refused create leaves no file.
                    created = []
                    try:
                        for i in range(100000):
                            with open('f%05d' % i, 'w') as f: f.write('x' * 200)
                            created.append(i)
                    except OSError as e:
                        assert e.errno == errno.ENOSPC, e
                    names = set(os.listdir('.'))
                    for i in created: assert 'f%05d' % i in names
                    # Free space and carry on. The kernel sends the release of big.bin's last
                    # handle asynchronously, so its space comes back a moment after the unlink.
                    os.unlink('big.bin')
                    import time
                    for attempt in range(50):
                        try:
                            with open('after.txt', 'w') as f: f.write('space again\\n')
                            break
                        except OSError as e:
                            assert e.errno == errno.ENOSPC, e
                            time.sleep(0.1)
                    open('sizes', 'w').write('%d %d' % (appended, len(created)))
                    "
                    """, in: path, seconds: 180)
            }
            try fs.flush()
            #expect(fs.status().lastError == nil)
        }
        // A restart replays the journal from the small disk: the same files, same bytes.
        let restarted = try fx.mount(journal: journal)
        try restarted.flush()
        let tree = try fx.tree(at: .change(#require(restarted.status().workingChange)))
        let sizes = try #require(tree["sizes"]).split(separator: " ").compactMap { Int($0) }
        #expect(tree["after.txt"] == "space again\n")
        #expect(tree["big.bin"] == nil)
        #expect(tree["log.bin"]?.utf8.count == sizes.first)
        // Every acknowledged create holds its bytes; the one whose write hit the full disk
        // (its create had succeeded) is empty, as on ext4.
        #expect(tree.filter { $0.key.hasPrefix("f") && $0.value == String(repeating: "x", count: 200) }.count == sizes.last)
        #expect(tree.filter { $0.key.hasPrefix("f") && $0.value.isEmpty }.count <= 1)
        #expect(tree["seed.txt"] == "seed\n")
    }
}
