import Foundation
import MesaAPI
import MesaDaemon
import MesaProtocol
import Model
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Files far past mesa-server's 32 MiB JSON body limit travel through the streamed blob
/// extension: HTTPBackend against a real mesa-server, and a real FUSE mount over HTTP.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct LargeFileTests {
    @Test func aFileLargerThanTheBodyLimitRoundTripsThroughMesaServer() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        let source = sandbox.root + "/big.bin", copy = sandbox.root + "/copy.bin"
        let size = 64 << 20 + 777
        try await offPool {
            try LargeFile.generate(source, size: size, seed: 7)
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
            #expect(LargeFile.sameBytes(source, copy))
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
            try LargeFile.generate(seeded, size: size, seed: 1)
            try LargeFile.generate(written, size: size, seed: 2)
            try server.seedRepo("work") { backend in
                [.upsertBlob(path: "seeded.bin", oid: try backend.uploadBlob(org: "acme", repo: "work", fromFile: seeded), mode: .regular)]
            }
        }
        let daemon = try await RemoteMountTests.startMounted(sandbox, server, showing: "acme/work/seeded.bin")
        defer {
            daemon.kill()
            MountedDaemon.lazyUnmount(sandbox.treeMountPoint)
        }
        let repoPath = sandbox.treeMountPoint + "/acme/work"
        // A blob-cache miss streams the blob from the server.
        #expect(await offPool { LargeFile.sameBytes(seeded, repoPath + "/seeded.bin") })

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
            #expect(LargeFile.sameBytes(written, back))
            #expect(RemoteMountTests.serverFile(backend, "work", saved.savedChangeId, "small.txt") == Array("small\n".utf8))
        }
        #expect(await offPool { LargeFile.sameBytes(written, repoPath + "/written.bin") })
        #expect(try await daemon.stop() == 0, "\(daemon.child.stderr.suffix(2000))")
    }
}
