import Foundation
@testable import MesaDaemon
import Model
import Testing

/// The pieces of `show`'s git patch that need no repository; E2E's `showGitPatchApplies`
/// proves `git apply` takes the whole.
@Suite struct GitPatchTests {
    let zero = String(repeating: "0", count: 40)
    let a = String(repeating: "a", count: 40)
    let b = String(repeating: "b", count: 40)

    func entry(_ path: String, _ status: DiffStatus, from oldPath: String? = nil) -> DiffEntry {
        DiffEntry(path: path, oldPath: oldPath, status: status, isBinary: false, hunks: [], additions: 0, deletions: 0, sizeBytes: 0)
    }

    @Test func headersNameModesAndFullBlobIds() throws {
        #expect(try GitPatch.header(entry("n.txt", .added), old: nil, new: .init(mode: .executable, oid: b))
                == "diff --git a/n.txt b/n.txt\nnew file mode 100755\nindex \(zero)..\(b)\n")
        #expect(try GitPatch.header(entry("d.txt", .deleted), old: .init(mode: .regular, oid: a), new: nil)
                == "diff --git a/d.txt b/d.txt\ndeleted file mode 100644\nindex \(a)..\(zero)\n")
        #expect(try GitPatch.header(entry("m.sh", .modified), old: .init(mode: .regular, oid: a), new: .init(mode: .executable, oid: a))
                == "diff --git a/m.sh b/m.sh\nold mode 100644\nnew mode 100755\n")
        #expect(try GitPatch.header(entry("e.txt", .modified), old: .init(mode: .regular, oid: a), new: .init(mode: .regular, oid: b))
                == "diff --git a/e.txt b/e.txt\nindex \(a)..\(b) 100644\n")
        #expect(try GitPatch.header(entry("new", .renamed, from: "old"), old: .init(mode: .regular, oid: a), new: .init(mode: .regular, oid: a))
                == "diff --git a/old b/new\nrename from old\nrename to new\n")
    }

    @Test func hunksKeepTheNoNewlineMarker() {
        let hunk = DiffHunk(oldStart: 1, oldLines: 1, newStart: 1, newLines: 1, lines: [
            DiffLine(kind: .deleted, text: "old"), DiffLine(kind: .added, text: "new"),
            DiffLine(kind: .annotation, text: "\\ No newline at end of file"),
        ])
        #expect(GitPatch.hunks([hunk]) == "@@ -1,1 +1,1 @@\n-old\n+new\n\\ No newline at end of file\n")
    }

    @Test func binaryLiteralsAreZlibStoredInBase85Lines() {
        // zlib header, one final stored block of 9 bytes, Adler-32 of "Wikipedia" (0x11E60398).
        #expect(GitPatch.zlibStored(Array("Wikipedia".utf8))
                == [0x78, 0x01, 0x01, 0x09, 0x00, 0xF6, 0xFF] + Array("Wikipedia".utf8) + [0x11, 0xE6, 0x03, 0x98])
        #expect(GitPatch.zlibStored([]) == [0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01])
        // Blocks hold at most 65535 bytes.
        #expect(GitPatch.zlibStored([UInt8](repeating: 7, count: 70_000)).count == 2 + 5 + 65535 + 5 + (70_000 - 65535) + 4)
        #expect(GitPatch.base85([0, 0, 0, 0]) == "00000")
        #expect(GitPatch.base85([0xFF, 0xFF, 0xFF, 0xFF]) == "|NsC0")
        let literal = GitPatch.binaryLiteral([UInt8](repeating: 1, count: 100)).split(separator: "\n")
        #expect(literal.first == "literal 100")
        // 100 + 11 bytes of zlib: two full lines of 52 ("z") and one of 7 ("G").
        #expect(literal.dropFirst().map { $0.first } == ["z", "z", "G"])
        #expect(literal.dropFirst().map(\.count) == [1 + 65, 1 + 65, 1 + 10])
    }
}
