import Foundation
import MesaAPI
import MesaDaemon
import MesaProtocol
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Files far past mesa-server's 32 MiB JSON body limit travel through the streamed blob
/// extension: HTTPBackend against a real mesa-server, and a real FUSE mount over HTTP.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct LargeFileTests {
    /// Writes `size` deterministic pseudo-random bytes to a new file, 1 MiB at a time.
    static func generate(_ path: String, size: Int, seed: UInt64) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot create \(path)") }
        defer { close(fd) }
        var state = seed
        var chunk = [UInt64](repeating: 0, count: (1 << 20) / 8)
        var written = 0
        while written < size {
            for index in chunk.indices {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                chunk[index] = state
            }
            let count = min(1 << 20, size - written)
            guard chunk.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, count) }) == count else {
                throw TestFailure("short write to \(path)")
            }
            written += count
        }
    }

    static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard let process = try? Process.run(URL(fileURLWithPath: "/usr/bin/cmp"), arguments: ["-s", a, b]) else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    @Test func aFileLargerThanTheBodyLimitRoundTripsThroughMesaServer() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        let source = sandbox.root + "/big.bin", copy = sandbox.root + "/copy.bin"
        let size = 64 << 20 + 777
        try await offPool {
            try Self.generate(source, size: size, seed: 7)
            _ = try backend.createRepo(org: "acme", name: "demo", defaultBookmark: nil)
            let oid = try backend.uploadBlob(org: "acme", repo: "demo", fromFile: source)
            let change = try backend.createChange(org: "acme", repo: "demo", base: .root, message: "big",
                                                  files: [.upsertBlob(path: "big.bin", oid: oid, mode: .regular),
                                                          .upsert(path: "small.txt", content: Array("inline\n".utf8))])
            guard case .directory(_, _, let entries) = try backend.content(org: "acme", repo: "demo", at: .change(change.id),
                                                                           path: "", depth: 1) else {
                throw TestFailure("no listing")
            }
            #expect(entries.first { $0.path == "big.bin" }?.size == size)
            #expect(entries.first { $0.path == "big.bin" }?.oid == oid)
            try backend.downloadBlob(org: "acme", repo: "demo", oid: oid, toFile: copy)
            #expect(Self.sameBytes(source, copy))
            // The same upload again is idempotent (content-addressed).
            #expect(try backend.uploadBlob(org: "acme", repo: "demo", fromFile: source) == oid)

            // Refusals: a read-only key, an unknown blob.
            let reader = try backend.createKey(org: "acme", KeyRequest(name: "reader", scopes: [.read])).secret
            let readOnly = server.backend(key: reader)
            HTTPBackendTests.expectMesaError(.forbidden) { _ = try readOnly.uploadBlob(org: "acme", repo: "demo", fromFile: source) }
            HTTPBackendTests.expectMesaError(.notFound, mentions: ["0000000000"]) {
                try backend.downloadBlob(org: "acme", repo: "demo", oid: String(repeating: "0", count: 40), toFile: copy)
            }
            HTTPBackendTests.expectMesaError(.notFound, mentions: ["missing.bin"]) {
                _ = try backend.createChange(org: "acme", repo: "demo", base: change.id, message: "",
                                             files: [.upsertBlob(path: "missing.bin", oid: String(repeating: "1", count: 40), mode: .regular)])
            }
            #expect(try backend.listChanges(org: "acme", repo: "demo", bookmark: nil, cursor: nil, limit: 10).items.count == 1)
        }
    }

    @Test(.enabled(if: RemoteMountTests.fuseAvailable, "needs root and /dev/fuse"))
    func aLargeFileWrittenIntoAMountOverHTTPReachesTheServerAndReadsBack() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        let size = 40 << 20 + 5  // past the 32 MiB JSON body limit
        let seeded = sandbox.root + "/seeded.bin", written = sandbox.root + "/written.bin"
        try await offPool {
            try Self.generate(seeded, size: size, seed: 1)
            try Self.generate(written, size: size, seed: 2)
            _ = try backend.createRepo(org: "acme", name: "work", defaultBookmark: nil)
            let oid = try backend.uploadBlob(org: "acme", repo: "work", fromFile: seeded)
            let change = try backend.createChange(org: "acme", repo: "work", base: .root, message: "seed",
                                                  files: [.upsertBlob(path: "seeded.bin", oid: oid, mode: .regular)])
            _ = try backend.moveBookmark(org: "acme", repo: "work", name: "main", to: change.id, expectedFrom: nil, allowBackwards: false)
        }
        _ = try sandbox.write(".config/mesa/config.toml", "[daemon]\nflush-debounce-ms = 100\n")
        let mountPoint = sandbox.home + "/.local/share/mesa/mnt"
        let daemon = try await DaemonProcess.start(sandbox, arguments: ["--mount"], environment: RemoteMountTests.environment(server))
        defer {
            daemon.kill()
            RemoteMountTests.unmount(mountPoint)
        }
        let repoPath = mountPoint + "/acme/work"
        try #require(await eventually(timeout: .seconds(60)) { exists(repoPath + "/seeded.bin") },
                     "the repo did not appear: \(daemon.child.stderr.suffix(2000))")
        // A blob-cache miss streams the blob from the server.
        #expect(await offPool { Self.sameBytes(seeded, repoPath + "/seeded.bin") })

        let copied = await offPool { () -> Bool in
            guard let process = try? Process.run(URL(fileURLWithPath: "/bin/cp"), arguments: [written, repoPath + "/written.bin"]) else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0 && RemoteMountTests.writeFile(repoPath + "/small.txt", "small\n")
        }
        #expect(copied)
        let client = try daemon.client()
        defer { client.close() }
        let saved = try await client.call(Checkpoint.self, .init(.id("acme/work"), .init(message: "large")))
        let status = try await client.call(MountStatusMethod.self, MountSelector(mountId: "acme/work"))
        #expect(status.mounts.first?.pendingUploads == 0 && status.mounts.first?.lastError == nil)
        let back = sandbox.root + "/back.bin"
        try await offPool {
            let id = try ChangeID(saved.savedChangeId)
            guard case .directory(_, _, let entries) = try backend.content(org: "acme", repo: "work", at: .change(id), path: "", depth: 1),
                  let entry = entries.first(where: { $0.path == "written.bin" }) else {
                throw TestFailure("written.bin is not in the checkpoint")
            }
            #expect(entry.size == size)
            try backend.downloadBlob(org: "acme", repo: "work", oid: entry.oid, toFile: back)
            #expect(Self.sameBytes(written, back))
            #expect(RemoteMountTests.serverFile(backend, "work", saved.savedChangeId, "small.txt") == Array("small\n".utf8))
        }
        #expect(await offPool { Self.sameBytes(written, repoPath + "/written.bin") })
        #expect(try await daemon.stop() == 0, "\(daemon.child.stderr.suffix(2000))")
    }
}
