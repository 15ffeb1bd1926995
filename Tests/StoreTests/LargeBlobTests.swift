import Foundation
import Model
import Store
import Testing

/// Blobs of any size go into and out of the store in chunks (`writeBlob(fromFile:)`,
/// `readBlob(into:)`, `BlobWriter`), and changes reference them by id.
@Suite struct LargeBlobTests {
    @Test func aLargeFileRoundTripsThroughTheStoreByBlobID() throws {
        let fx = try Fixture(repo: "proj")
        let source = fx.scratch("big")
        let size = 64 << 20 + 12_345
        try LargeFile.generate(source, size: size, seed: 42)
        let oid = try fx.store.writeBlob(org: fx.org, repo: "proj", fromFile: source)
        // The same id git gives the file: the object is a plain git blob.
        #expect(try fx.git("--git-dir", try fx.gitDirectory(), "hash-object", source).trimmingCharacters(in: .whitespacesAndNewlines) == oid)

        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, message: "big",
                                               files: [.upsertBlob(path: "data/big.bin", oid: oid, mode: .executable),
                                                       .upsert(path: "small.txt", content: Array("s".utf8))])
        guard case .directory(_, _, let entries) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id),
                                                                         path: "data", depth: 1) else {
            Issue.record("data is not a directory")
            return
        }
        #expect(entries.map(\.path) == ["data/big.bin"])
        #expect(entries.first?.size == size && entries.first?.oid == oid && entries.first?.mode == .executable)

        let copy = fx.scratch("copy")
        let fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        let count = try fx.store.readBlob(org: fx.org, repo: "proj", oid: oid, into: fd)
        close(fd)
        #expect(count == size)
        #expect(LargeFile.sameBytes(source, copy))
        // git itself reads the committed file back identically.
        let clone = fx.scratch("clone")
        try fx.git("clone", "-q", try fx.gitDirectory(), clone)
        try fx.git("-C", clone, "checkout", "-q", change.commitOID)
        #expect(LargeFile.sameBytes(source, clone + "/data/big.bin"))
    }

    @Test func aPackedBlobIsReadWholeButCorrectly() throws {
        let fx = try Fixture(repo: "proj")
        // 128+ operations make the change one packfile: its blobs are not loose objects.
        var files: [FileOperation] = (0..<130).map { .upsert(path: "f\($0)", content: Array("file \($0)".utf8)) }
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        files.append(.upsert(path: "payload", content: payload))
        let change = try fx.store.createChange(org: fx.org, repo: "proj", base: .root, files: files)
        guard case .file(_, _, _, let oid) = try fx.store.content(org: fx.org, repo: "proj", at: .change(change.id), path: "payload") else {
            Issue.record("payload missing")
            return
        }
        let reader = try fx.store.blobReader(org: fx.org, repo: "proj", oid: oid)
        #expect(reader.size == payload.count)
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { break }
            collected += buffer.prefix(count)
        }
        #expect(collected == payload)
    }

    @Test func aDamagedLooseBlobFailsToReadInsteadOfReturningShortData() throws {
        let fx = try Fixture(repo: "proj")
        let source = fx.scratch("medium")
        try LargeFile.generate(source, size: 3 << 20, seed: 42)
        let oid = try fx.store.writeBlob(org: fx.org, repo: "proj", fromFile: source)
        let object = try fx.gitDirectory() + "/objects/" + oid.prefix(2) + "/" + oid.dropFirst(2)
        var info = stat()
        #expect(stat(object, &info) == 0, "large blobs are written as loose objects")
        chmod(object, 0o644)
        #expect(truncate(object, off_t(info.st_size / 2)) == 0)
        let copy = fx.scratch("copy")
        let fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(fd) }
        #expect(throws: MesaError.self) { try fx.store.readBlob(org: fx.org, repo: "proj", oid: oid, into: fd) }
    }

    @Test func aWriterRefusesTheWrongNumberOfBytes() throws {
        let fx = try Fixture(repo: "proj")
        let short = try fx.store.blobWriter(org: fx.org, repo: "proj", size: 10)
        try Array("12345".utf8).withUnsafeBytes { try short.write($0) }
        #expect(throws: MesaError.self) { try short.finish() }
        let long = try fx.store.blobWriter(org: fx.org, repo: "proj", size: 3)
        #expect(throws: MesaError.self) { try Array("12345".utf8).withUnsafeBytes { try long.write($0) } }
        let exact = try fx.store.blobWriter(org: fx.org, repo: "proj", size: 5)
        try Array("12345".utf8).withUnsafeBytes { try exact.write($0) }
        #expect(try exact.finish() == "bd41cba781d8349272bf3eb92568285b411c027c")  // printf 12345 | git hash-object --stdin
    }

    @Test func badBlobReferencesAreRefusedAndNothingIsWritten() throws {
        let fx = try Fixture(repo: "proj")
        try fx.makeRepo("other")
        let first = try fx.change(["a.txt": "a"])
        try fx.move("main", to: first)
        let source = fx.scratch("elsewhere")
        try Array("only in the other repo".utf8).withUnsafeBytes { bytes in
            _ = FileManager.default.createFile(atPath: source, contents: Data(bytes))
        }
        let foreign = try fx.store.writeBlob(org: fx.org, repo: "other", fromFile: source)
        let tree = try fx.git("--git-dir", try fx.gitDirectory(), "rev-parse", first.commitOID + "^{tree}")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try fx.changeCount()
        let cases: [(String, MesaError.Code)] = [
            ("not-hex", .invalidArgument),
            (String(repeating: "0", count: 40), .notFound),  // no such object
            (foreign, .notFound),  // a blob of another repository
            (tree, .notFound),  // an object, but a tree
        ]
        for (oid, code) in cases {
            for attempt in 0..<2 {
                do {
                    let files: [FileOperation] = [.upsert(path: "fine.txt", content: Array("ok".utf8)),
                                                  .upsertBlob(path: "bad.bin", oid: oid)]
                    if attempt == 0 {
                        _ = try fx.store.createChange(org: fx.org, repo: "proj", base: first.id, files: files)
                    } else {
                        _ = try fx.store.updateChange(org: fx.org, repo: "proj", id: first.id, files: files)
                    }
                    Issue.record("a reference to '\(oid)' was accepted")
                } catch let error as MesaError {
                    #expect(error.code == code, "\(oid): \(error)")
                    #expect(error.message.contains("bad.bin"), "names the path: \(error.message)")
                }
            }
        }
        #expect(try fx.changeCount() == before)
        #expect(try fx.store.change(org: fx.org, repo: "proj", id: first.id).change.commitOID == first.commitOID)
        #expect(try fx.files(at: .change(first.id)) == ["a.txt"])
    }
}
