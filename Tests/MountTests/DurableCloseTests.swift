import Foundation
import Model
@testable import Mount
import Testing

/// What a durable close (`durability = close`) writes, and that a replay from disk alone
/// (no in-memory state: the mount is dropped without flush, as by kill -9) restores
/// exactly that.
@Suite struct DurableCloseTests {
    /// The journal's `.file` records, in order, read from the manifest on disk.
    static func fileRecords(_ fx: MountFixture) throws -> [(path: String, data: UInt64, inline: Data?)] {
        let lines = try String(contentsOfFile: fx.journalDirectory + "/manifest", encoding: .utf8).split(separator: "\n").dropFirst()
        struct Line: Decodable { var record: JournalRecord }
        return try lines.compactMap { line in
            guard case .file(let path, let data, _, let inline) = try JSONDecoder().decode(Line.self, from: Data(line.utf8)).record else { return nil }
            return (path, data, inline)
        }
    }

    static func dataFiles(_ fx: MountFixture) throws -> Set<UInt64> {
        Set(try FileManager.default.contentsOfDirectory(atPath: fx.journalDirectory + "/data").compactMap { UInt64($0) })
    }

    @Test func emptyCreatedFileIsJournaledInlineAndSurvivesReplay() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        let (attributes, opened) = try #require(fs).create(parent: InodeTable.rootIno, name: "touched", permissions: 0o644,
                                                           flags: OpenFlags(write: true))
        try fs?.flush(attributes.ino, handle: opened.handle)
        fs?.release(attributes.ino, handle: opened.handle)
        let records = try Self.fileRecords(fx)
        #expect(!records.isEmpty && records.allSatisfy { $0.path == "touched" && $0.inline == Data() },
                "an empty file is recorded inline: its data file needs no sync")
        // Even with its data file gone (its directory entry was never synced for it), the
        // record alone restores the file.
        let data = try #require(records.last?.data)
        fs = nil
        unlink(fx.journalDirectory + "/data/\(data)")
        let recovered = try fx.mount(durability: .close)
        #expect(recovered.replayLosses.isEmpty)
        #expect(try recovered.list(InodeTable.rootIno) == ["touched"])
        #expect(try recovered.getattr(try recovered.ino("touched")).size == 0)
        try recovered.flush()
        #expect(try fx.tree(at: .change(#require(recovered.status().workingChange))) == ["touched": ""])
    }

    @Test func smallFilesReplayWithTheExactInlineBytesAndLargerOnesFromTheirSyncedDataFile() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        let small = (0..<Journal.inlineLimit).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        let large = (0...Journal.inlineLimit).map { UInt8(truncatingIfNeeded: $0 * 13 + 1) }
        for (name, bytes) in [("small.bin", small), ("large.bin", large)] {
            let (attributes, opened) = try #require(fs).create(parent: InodeTable.rootIno, name: name, permissions: 0o644,
                                                               flags: OpenFlags(write: true))
            _ = try bytes.withUnsafeBytes { raw throws(FSError) in try fs?.write(attributes.ino, handle: opened.handle, offset: 0, bytes: raw) }
            try fs?.flush(attributes.ino, handle: opened.handle)
            fs?.release(attributes.ino, handle: opened.handle)
        }
        let records = try Self.fileRecords(fx)
        let smallRecord = try #require(records.last { $0.path == "small.bin" })
        let largeRecord = try #require(records.last { $0.path == "large.bin" })
        #expect(smallRecord.inline == Data(small))
        #expect(largeRecord.inline == nil, "over the limit: the record refers to the fdatasynced data file")
        fs = nil
        // The small file's data file was never synced: a power cut may leave anything there.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: fx.journalDirectory + "/data/\(smallRecord.data)"))
        let recovered = try fx.mount(durability: .close)
        func read(_ name: String) throws -> [UInt8] {
            let ino = try recovered.ino(name)
            let handle = try recovered.open(ino, flags: OpenFlags()).handle
            defer { recovered.release(ino, handle: handle) }
            let source = try recovered.read(ino, handle: handle, offset: 0, size: 1 << 20)
            var buffer = [UInt8](repeating: 0, count: source.length)
            let count = buffer.withUnsafeMutableBytes { pread(source.descriptor, $0.baseAddress, source.length, off_t(source.offset)) }
            return Array(buffer.prefix(max(0, count)))
        }
        #expect(try read("small.bin") == small)
        #expect(try read("large.bin") == large)
        // A second crash replays the same bytes again.
        _ = consume recovered
        let again = try fx.mount(durability: .close)
        #expect(try again.getattr(try again.ino("small.bin")).size == UInt64(small.count))
    }

    @Test func aClosedFileWhoseDataFileIsMissingIsReportedNotEmptied() throws {
        let fx = try MountFixture()
        try fx.seed(["big": "old content"])
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        let large = String(repeating: "x", count: Journal.inlineLimit + 100)
        try fs?.writeText("big", large)
        try fs?.writeText("gone", large)
        try fs?.unlink(parent: InodeTable.rootIno, name: "gone")  // its data file goes: not a loss
        let big = try #require(Self.fileRecords(fx).last { $0.path == "big" })
        #expect(big.inline == nil)
        fs = nil
        unlink(fx.journalDirectory + "/data/\(big.data)")  // e.g. a damaged journal disk
        let recovered = try fx.mount(durability: .close)
        #expect(recovered.replayLosses == ["big"])
        #expect(recovered.status().lastError?.contains("'big'") == true)
        #expect(try recovered.readText("big") == "old content", "the file keeps its previous state, it is not emptied")
        #expect(try recovered.list(InodeTable.rootIno) == ["big"])
    }

    @Test func poolFilesUnusedAtACrashAreReclaimedAndNeverShowUp() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        try fs?.writeText("f", "one file")
        fs?.journal.waitForRefills()  // taking the first file left the pool low: it refills ahead
        let pooled = try #require(fs?.journal.pooledData)
        #expect(pooled.count == 2 * Journal.poolBatch - 1)
        #expect(try Self.dataFiles(fx).isSuperset(of: pooled), "the pool's files exist, their directory entries synced")
        fs = nil
        let recovered = try fx.mount(durability: .close)
        #expect(try recovered.list(InodeTable.rootIno) == ["f"])
        #expect(try recovered.readText("f") == "one file")
        recovered.journal.waitForRefills()
        let left = try Self.dataFiles(fx)
        #expect(left.isDisjoint(with: pooled), "the previous run's unused pool files are deleted")
        #expect(left.subtracting(recovered.journal.pooledData).count <= 2, "only data the records or nodes use is kept: \(left)")
        try recovered.flush()
        #expect(try fx.tree(at: .change(#require(recovered.status().workingChange))) == ["f": "one file"])
    }

    @Test func truncatingAWrittenFileToZeroIsDurableWithoutItsDataFile() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        let large = String(repeating: "y", count: Journal.inlineLimit * 2)
        try fs?.writeText("t", large)
        let ino = try #require(fs).ino("t")
        let handle = try #require(fs).open(ino, flags: OpenFlags(write: true, truncate: true)).handle
        try fs?.flush(ino, handle: handle)
        fs?.release(ino, handle: handle)
        #expect(try Self.fileRecords(fx).last?.inline == Data())
        fs = nil
        let recovered = try fx.mount(durability: .close)
        #expect(try recovered.getattr(try recovered.ino("t")).size == 0, "the truncation was promised at close")
    }

    /// A quiet compaction re-records local-only files from the tree: a small one keeps
    /// its bytes inline (its data file was never synced), a larger one refers to its
    /// data file, synced.
    @Test func compactionKeepsLocalOnlyFilesDurable() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        try fs?.mkdirPath(".git")
        let large = String(repeating: "p", count: Journal.inlineLimit * 3)
        try fs?.writeText(".git/HEAD", "ref: refs/heads/main")
        try fs?.writeText(".git/pack", large)
        try fs?.writeText("tracked", "t")
        try fs?.flush()  // uploads `tracked`, rewrites the manifest from the tree
        let records = try Self.fileRecords(fx)
        #expect(records.map(\.path).sorted() == [".git/HEAD", ".git/pack"])
        let head = try #require(records.first { $0.path == ".git/HEAD" })
        #expect(head.inline == Data("ref: refs/heads/main".utf8))
        #expect(try #require(records.first { $0.path == ".git/pack" }).inline == nil)
        fs = nil
        try Data("torn".utf8).write(to: URL(fileURLWithPath: fx.journalDirectory + "/data/\(head.data)"))
        let recovered = try fx.mount(durability: .close)
        #expect(try recovered.readText(".git/HEAD") == "ref: refs/heads/main")
        #expect(try recovered.readText(".git/pack") == large)
        #expect(try recovered.readText("tracked") == "t")
    }
}
