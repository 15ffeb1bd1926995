import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// The background prefetch: layout makes every listing local, content fills the blob
/// cache up to its ratio, failures are skipped, and stopping it stops backend traffic.
@Suite struct PrefetchTests {
    /// A tree of `width`^1 + `width`^2 directories, each holding one small file.
    private func seedTree(_ fx: MountFixture, width: Int) throws -> (dirs: [String], files: [String: String]) {
        var files: [String: String] = ["top.txt": "top"]
        var dirs: [String] = []
        for a in 0..<width {
            dirs.append("d\(a)")
            files["d\(a)/f.txt"] = "file in d\(a)"
            for b in 0..<width {
                dirs.append("d\(a)/e\(b)")
                files["d\(a)/e\(b)/g.txt"] = String(repeating: "x", count: 96) + "\(a)-\(b)"
            }
        }
        try fx.seed(files)
        return (dirs, files)
    }

    private func mount(_ fx: MountFixture, _ backend: any Backend, mode: PrefetchMode, cache: BlobCache? = nil,
                       concurrency: Int = 4) throws -> RepoFileSystem {
        var configuration = MountConfiguration(org: fx.org, repo: fx.repo, journalDirectory: fx.scratch("journal"),
                                               backgroundFlush: false)
        configuration.prefetch = mode
        configuration.prefetchConcurrency = concurrency
        return try RepoFileSystem(configuration: configuration, backend: backend, cache: cache ?? fx.cache)
    }

    @Test(.timeLimit(.minutes(1))) func afterLayoutPrefetchListingAnyDirectoryNeedsNoBackendCall() throws {
        let fx = try MountFixture()
        let (dirs, _) = try seedTree(fx, width: 6)
        let backend = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try mount(fx, backend, mode: .layout)
        let progress = try #require(fs.waitForPrefetch(timeout: .seconds(30)))
        #expect(progress.phase == .done)
        #expect(progress.directoriesListed == dirs.count + 1)
        #expect(progress.directoriesPending == 0)
        #expect(progress.filesFetched == 0, "layout fetches no content")
        #expect(fs.status().prefetch == progress)
        // The mount's key check (whoami, at most once a second) is not a listing.
        let listings = { backend.calls.filter { $0 != "whoami" }.count }
        let before = listings()
        for dir in [""] + dirs {
            let ino = try fs.ino(dir)
            #expect(!(try fs.list(ino, mayBlock: false)).isEmpty, "'\(dir)' is listed without blocking")
        }
        #expect(listings() == before, "no backend call after the prefetch: \(backend.calls.suffix(backend.calls.count - before))")
    }

    @Test(.timeLimit(.minutes(1))) func contentPrefetchStopsAtTheCacheFillRatio() throws {
        let fx = try MountFixture()
        _ = try seedTree(fx, width: 4)  // 16 files of 100 bytes + 5 small ones
        let backend = FaultInjectingBackend(wrapping: fx.backend)
        let cache = try BlobCache(directory: fx.scratch("small-cache"), maxBytes: 1000)
        let fs = try mount(fx, backend, mode: .content, cache: cache, concurrency: 1)
        let progress = try #require(fs.waitForPrefetch(timeout: .seconds(30)))
        #expect(progress.phase == .done)
        #expect(progress.filesFetched > 0)
        #expect(cache.usedBytes <= 500, "stops at half of the cache: \(cache.usedBytes) bytes")
        #expect(progress.note?.contains("blob cache") == true, "\(progress.note ?? "no note")")
    }

    @Test(.timeLimit(.minutes(1))) func contentPrefetchServesReadsFromTheCache() throws {
        let fx = try MountFixture()
        let (_, files) = try seedTree(fx, width: 3)
        let backend = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try mount(fx, backend, mode: .content)
        let progress = try #require(fs.waitForPrefetch(timeout: .seconds(30)))
        #expect(progress.phase == .done)
        // Identical contents share a blob: count distinct ones.
        #expect(progress.filesFetched == Set(files.values).count)
        let fetches = { backend.calls.filter { $0 != "whoami" }.count }  // not the key check
        let before = fetches()
        for (path, text) in files { #expect(try fs.readText(path) == text) }
        #expect(fetches() == before, "reads after a content prefetch hit the cache only")
    }

    @Test(.timeLimit(.minutes(1))) func aFailedListingIsSkippedAndAVisitFetchesIt() throws {
        let fx = try MountFixture()
        _ = try seedTree(fx, width: 2)
        let backend = FaultInjectingBackend(wrapping: fx.backend)
        backend.failNext(1, method: "content", with: MesaError(.unavailable, "injected"))
        let fs = try mount(fx, backend, mode: .layout, concurrency: 1)
        let progress = try #require(fs.waitForPrefetch(timeout: .seconds(30)))
        #expect(progress.phase == .done)
        #expect(progress.failures == 1)
        #expect(progress.note?.contains("injected") == true)
        #expect(try fs.list(InodeTable.rootIno).sorted() == ["d0", "d1", "top.txt"])
    }

    @Test(.timeLimit(.minutes(1))) func stoppingThePrefetchStopsBackendTraffic() throws {
        let fx = try MountFixture()
        _ = try seedTree(fx, width: 12)
        let backend = FaultInjectingBackend(wrapping: fx.backend)
        let fs = try mount(fx, backend, mode: .layout, concurrency: 1)
        fs.stopPrefetch()
        let progress = try #require(fs.waitForPrefetch(timeout: .seconds(10)))
        #expect(progress.phase == .stopped || progress.phase == .done)
        if progress.phase == .stopped { #expect(progress.note == "unmounted") }
        Thread.sleep(forTimeInterval: 0.05)  // a call in flight when it stopped may finish
        let after = backend.calls.count
        Thread.sleep(forTimeInterval: 0.2)
        #expect(backend.calls.count == after, "no backend calls once stopped")
    }

    @Test func offIsTheCoreDefaultAndReportsNothing() throws {
        let fx = try MountFixture()
        let fs = try fx.mount()
        #expect(fs.status().prefetch == nil)
        #expect(fs.configuration.prefetch == .off)
    }
}
