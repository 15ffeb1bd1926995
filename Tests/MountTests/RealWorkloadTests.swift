import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(5)))
struct RealWorkloadTests {
    @Test func largeFilesParallelWritersAndACompile() throws {
        let fx = try MountFixture()
        var big = [UInt8](repeating: 0, count: 12 << 20)
        big.withUnsafeMutableBytes { raw in for index in stride(from: 0, to: raw.count, by: 4096) { raw[index] = UInt8(truncatingIfNeeded: index >> 12) } }
        let seeded = try fx.store.createChange(org: fx.org, repo: fx.repo, base: .root, message: "",
                                               files: [.upsert(path: "big.bin", content: big)])
        _ = try fx.store.moveBookmark(org: fx.org, repo: fx.repo, bookmark: "main", to: seeded.id)
        let fs = try fx.mount()
        let native = fx.scratch("native")
        try FileManager.default.createDirectory(atPath: native, withIntermediateDirectories: true)
        try fx.withMount(fs) { path in
            let read = try Data(contentsOf: URL(fileURLWithPath: path + "/big.bin"))
            #expect(read.count == big.count)
            #expect(read.elementsEqual(big))
            try mustRun("dd if=/dev/urandom of=\(native)/rand bs=1M count=20 status=none && cp \(native)/rand copy.bin && cmp \(native)/rand copy.bin", in: path)
            try mustRun("for w in 1 2 3 4; do (mkdir -p w$w && for i in $(seq 1 100); do echo $w-$i > w$w/f$i; done) & done; wait; ls w1 w2 w3 w4 | grep -c '^f' | grep -q 400", in: path)
            if FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") {
                try mustRun("printf '#include <stdio.h>\\nint main(void){puts(\"built\");return 0;}\\n' > hello.c && cc -o hello hello.c && ./hello | grep -q built", in: path)
            }
            let xattr = try shell("python3 -c \"import os,errno\ntry:\n os.setxattr('copy.bin','user.k',b'v')\nexcept OSError as e:\n print(errno.errorcode[e.errno])\"", in: path)
            #expect(xattr.output.contains("ENOTSUP") || xattr.output.contains("EOPNOTSUPP") || xattr.status != 0)
        }
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        guard case .file(_, let bytes, _, _) = try fx.store.content(org: fx.org, repo: fx.repo, at: .change(working), path: "copy.bin") else {
            Issue.record("copy.bin missing")
            return
        }
        let expected = Array(try Data(contentsOf: URL(fileURLWithPath: native + "/rand")))
        #expect(bytes.count == expected.count)
        #expect(bytes.elementsEqual(expected))
        let paths = try fx.paths(at: .change(working))
        #expect(paths.keys.filter { $0.hasPrefix("w") }.count == 400)
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") {
            #expect(paths["hello.c"] == .regular)
            #expect(paths["hello"] == .executable, "the compiled binary keeps its exec bit")
        }
    }

    @Test func unmountWithAnOpenFileIsReportedNotLeaked() throws {
        let fx = try MountFixture()
        let fs = try fx.mount()
        let path = fx.scratch("mnt")
        let session = try MountSession.start(at: path, root: fs, options: MountSession.Options(stopTimeout: .milliseconds(500)))
        let fd = open(path + "/held.txt", O_CREAT | O_WRONLY, 0o644)
        #expect(fd >= 0)
        #expect(write(fd, "held", 4) == 4)
        #expect(fsync(fd) == 0, "fsync makes it durable before the unmount")
        let start = ContinuousClock.now
        session.stop()
        #expect(ContinuousClock.now - start < .seconds(60), "stop does not hang on a busy mount")
        close(fd)
        var info = statvfs()
        #expect(statvfs(path, &info) == 0, "the mount point is usable again")
        try fs.flush()
        #expect(try fx.tree(at: .change(#require(fs.status().workingChange))) == ["held.txt": "held"])
    }
}
