import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// Files above `streamThreshold` upload on their own through `Backend.uploadBlob` and the
/// change references them by id; one the backend refuses never holds back the others.
@Suite struct LargeFileFlushTests {
    @Test func largeFilesUploadAsBlobsAndSmallOnesInline() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let recorder = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try fx.mount(backend: recorder)
        let big = String(repeating: "0123456789abcdef", count: (2 << 20) / 16)
        try fs.mkdirPath("dir")
        try fs.writeText("dir/big.bin", big)
        try fs.writeText("small.txt", "s")
        try fs.flush()
        #expect(recorder.calls.filter { $0 == "uploadBlob" }.count == 1)
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working)) == ["a": "1", "dir/big.bin": big, "small.txt": "s"])
        #expect(fs.status().pendingUploads == 0 && fs.status().lastError == nil)
    }

    @Test func aRefusedFileDoesNotHoldBackTheOthersAndStaysPendingAcrossARestart() throws {
        let fx = try MountFixture()
        try fx.seed(["a": "1"])
        let faulty = FaultInjectingBackend(wrapping: fx.backend)
        var fs: RepoFileSystem? = try fx.mount(backend: faulty)
        let first = String(repeating: "x", count: 2 << 20), second = String(repeating: "y", count: 3 << 20)
        try fs?.writeText("big1.bin", first)
        try fs?.writeText("big2.bin", second)
        try fs?.writeText("small.txt", "s")
        // Paths upload in order: big1.bin is the one refused.
        faulty.failNext(1, method: "uploadBlob", with: MesaError(.invalidArgument, "blob refused by the server (injected)"))
        #expect(throws: MesaError.self) { try fs?.flush() }
        let status = try #require(fs?.status())
        #expect(status.pendingUploads == 1)
        let message = status.lastError ?? ""
        #expect(message.contains("big1.bin") && message.contains("refused by the server"), "\(message)")
        #expect(!message.contains("big2.bin"))
        let working = try #require(status.workingChange)
        #expect(try fx.tree(at: .change(working)) == ["a": "1", "big2.bin": second, "small.txt": "s"])

        // A crash now loses nothing: the refused file is still in the journal.
        fs = nil
        let recovered = try fx.mount(backend: faulty)
        #expect(try recovered.getattr(try recovered.ino("big1.bin")).size == UInt64(first.utf8.count))
        try recovered.flush()
        #expect(recovered.status().pendingUploads == 0 && recovered.status().lastError == nil)
        #expect(recovered.status().workingChange == working)
        #expect(try fx.tree(at: .change(working)) == ["a": "1", "big1.bin": first, "big2.bin": second, "small.txt": "s"])
    }

    @Test func aMissingBlobReadsFromTheBackendIntoTheCacheFile() throws {
        let fx = try MountFixture()
        let payload = String(repeating: "large file content ", count: 200_000)
        try fx.seed(["big.txt": payload])
        let recorder = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try fx.mount(backend: recorder)
        #expect(try fs.readText("big.txt").count == min(payload.utf8.count, 1 << 20))
        #expect(recorder.calls.filter { $0 == "downloadBlob" }.count == 1)
        #expect(!recorder.calls.contains("blob"), "nothing reads a whole blob into memory")
        #expect(fx.cache.usedBytes == UInt64(payload.utf8.count))
    }
}
