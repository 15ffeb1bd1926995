import Foundation
import MesaProtocol
import Model
import Store
import Testing

/// Real tools in a mount served by the real `mesad`: archives with thousands of files,
/// `rsync -a` and `cp -a`, and what they wrote reaches the store intact.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MountToolTests {
    static let available = FileManager.default.fileExists(atPath: "/dev/fuse") && getuid() == 0
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/rsync")

    @discardableResult
    static func sh(_ script: String, in directory: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw TestFailure("`\(script)` failed (\(process.terminationStatus)): \(text)") }
        return text
    }

    @Test(.enabled(if: available, "needs root, /dev/fuse and rsync"))
    func tarRsyncAndCopyOfThousandsOfFilesReachTheStore() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.startMounted(sandbox, showing: "local/tools") { _ = try await $0.call(CreateRepo.self, .init(name: "tools")) }
        defer {
            daemon.kill()
            MountedDaemon.lazyUnmount(sandbox.treeMountPoint)
        }
        let client = try daemon.client()
        let repo = sandbox.treeMountPoint + "/local/tools"

        // A source tree of 3,000 files (with an executable and a symlink) outside the mount.
        let source = sandbox.root + "/source"
        // Blocking work runs off Swift's cooperative pool (two threads here), so the rest of
        // the suite's async tests are not starved meanwhile.
        try await offPool { try Self.sh("""
            mkdir -p src && for d in $(seq 0 29); do mkdir -p src/d$d; for f in $(seq 0 99); do echo "file $d/$f" > src/d$d/f$f.txt; done; done
            printf '#!/bin/sh\\necho hi\\n' > src/run.sh && chmod +x src/run.sh && ln -s d0/f0.txt src/link
            tar -cf tree.tar src
            """, in: { try? FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true); return source }()) }
        try await offPool { try Self.sh("tar -xf \(source)/tree.tar && mv src from-tar", in: repo) }
        try await offPool { try Self.sh("rsync -a \(source)/src/ from-rsync/", in: repo) }
        try await offPool { try Self.sh("cp -a \(source)/src from-cp", in: repo) }
        for copy in ["from-tar", "from-rsync", "from-cp"] {
            let differences = try await offPool { try Self.sh("diff -r --no-dereference \(source)/src \(repo)/\(copy) && echo same", in: repo) }
            #expect(differences.contains("same"), "\(copy) differs: \(differences.prefix(500))")
        }

        let saved = try await client.call(Checkpoint.self, .init(.id("local/tools"), .init(message: "tools")))
        client.close()
        #expect(try await daemon.stop() == 0)
        let store = try Store(directory: sandbox.paths.storeDirectory)
        let change = try ChangeID(saved.savedChangeId)
        for copy in ["from-tar", "from-rsync", "from-cp"] {
            guard case .directory(_, _, let entries) = try store.content(org: "local", repo: "tools", at: .change(change), path: copy, depth: 2) else {
                Issue.record("\(copy) is not a directory in the store")
                continue
            }
            #expect(entries.filter { $0.type == .file }.count == 3001, "\(copy): files in the store")
            #expect(entries.first { $0.name == "run.sh" }?.mode == .executable)
            #expect(entries.first { $0.name == "link" }?.type == .symlink)
        }
        guard case .file(_, let bytes, _, _) = try store.content(org: "local", repo: "tools", at: .change(change), path: "from-rsync/d29/f99.txt") else {
            Issue.record("from-rsync/d29/f99.txt missing")
            return
        }
        #expect(String(decoding: bytes, as: UTF8.self) == "file 29/99\n")
    }
}
