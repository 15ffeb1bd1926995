import Foundation
import MesaProtocol
import Model
import Store
import Testing

/// The mount's durability promise through the real `mesad` process: whatever a writer
/// closed or fsynced survives `kill -9` of the daemon; a restart clears the dead mount,
/// mounts it again and replays the journal.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct MountCrashTests {
    static let available = FileManager.default.fileExists(atPath: "/dev/fuse") && getuid() == 0

    /// Writes numbered files with fsync until one fails (the daemon died); returns how
    /// many completed.
    static func writeUntilFailure(_ directory: String, round: Int, limit: Int = 400) -> Int {
        for index in 0..<limit {
            let path = "\(directory)/r\(round)-\(index).txt"
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if descriptor < 0 { return index }
            let bytes = Array(content(round: round, index: index).utf8)
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            let synced = fsync(descriptor)
            let closed = close(descriptor)
            if written != bytes.count || synced != 0 || closed != 0 { return index }
        }
        return limit
    }

    static func content(round: Int, index: Int) -> String {
        "round \(round) file \(index)\n" + String(repeating: "x", count: index % 97) + "\n"
    }

    @Test(.enabled(if: available, "needs root and /dev/fuse"))
    func killNineUnderLoadLosesNothingThatWasFsynced() async throws {
        let sandbox = try Sandbox()
        var daemon = try await DaemonProcess.startMounted(sandbox, showing: "local/crash") { _ = try await $0.call(CreateRepo.self, .init(name: "crash")) }
        defer {
            daemon.kill()
            MountedDaemon.lazyUnmount(sandbox.treeMountPoint)
        }
        let repoPath = sandbox.treeMountPoint + "/local/crash"

        var completed: [Int: Int] = [:]
        for round in 0..<3 {
            // Let the writer get going, then kill the daemon under it.
            // The writer blocks in write/fsync: off the cooperative pool, on its own thread.
            let writer = Task { await offPool { Self.writeUntilFailure(repoPath, round: round) } }
            try await Task.sleep(for: .milliseconds(150 + 100 * round))
            kill(daemon.pid, SIGKILL)
            completed[round] = await writer.value
            let killed = daemon
            _ = await offPool { killed.child.wait(timeout: .seconds(10)) }

            // A new daemon clears the stale mount and mounts the tree again (saved state).
            daemon = try await DaemonProcess.start(sandbox)
            let remounted = await eventually(timeout: .seconds(120)) { FileManager.default.fileExists(atPath: repoPath) }
            try #require(remounted, "round \(round): the remounted repo did not answer; mesad said: \(daemon.child.stderr.suffix(3000))")
            for earlier in 0...round {
                for index in 0..<(completed[earlier] ?? 0) {
                    let path = "\(repoPath)/r\(earlier)-\(index).txt"
                    let text = try? String(contentsOfFile: path, encoding: .utf8)
                    #expect(text == Self.content(round: earlier, index: index), "\(path) lost or wrong after kill -9 in round \(round)")
                }
            }
        }
        #expect(completed.values.reduce(0, +) > 0, "the writer never completed a file; the test proved nothing")

        // And it all reaches the store: checkpoint, stop, read the store directly.
        let second = try daemon.client()
        let saved = try await second.call(Checkpoint.self, .init(.id("local/crash"), .init(message: "after crashes")))
        second.close()
        #expect(try await daemon.stop() == 0)
        let store = try Store(directory: sandbox.paths.storeDirectory)
        for (round, count) in completed {
            for index in 0..<count {
                let content = try store.content(org: "local", repo: "crash", at: .change(try ChangeID(saved.savedChangeId)),
                                                path: "r\(round)-\(index).txt")
                guard case .file(_, let bytes, _, _) = content else {
                    Issue.record("r\(round)-\(index).txt is not a file in the store")
                    continue
                }
                #expect(String(decoding: bytes, as: UTF8.self) == Self.content(round: round, index: index))
            }
        }
    }

    @Test(.enabled(if: available, "needs root and /dev/fuse"))
    func sigtermWithAnOpenFileUploadsAndUnmounts() async throws {
        let sandbox = try Sandbox()
        let mountPoint = sandbox.treeMountPoint
        let daemon = try await DaemonProcess.startMounted(sandbox, showing: "local/busy") { _ = try await $0.call(CreateRepo.self, .init(name: "busy")) }
        defer {
            daemon.kill()
            MountedDaemon.lazyUnmount(mountPoint)
        }
        let path = mountPoint + "/local/busy/held.txt"
        let descriptor = open(path, O_WRONLY | O_CREAT, 0o644)
        try #require(descriptor >= 0)
        let bytes = Array("kept open during shutdown\n".utf8)
        #expect(bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } == bytes.count)
        #expect(fsync(descriptor) == 0)

        #expect(try await daemon.stop(timeout: .seconds(60)) == 0, "stderr: \(daemon.child.stderr)")
        close(descriptor)
        // Unmounted: the mount point is a plain directory again.
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        #expect(!mounts.contains(mountPoint))
        // The working change in the store holds the fsynced bytes.
        let store = try Store(directory: sandbox.paths.storeDirectory)
        let changes = try store.listChanges(org: "local", repo: "busy")
        let newest = try #require(changes.items.first, "shutdown uploaded nothing")
        guard case .file(_, let stored, _, _) = try store.content(org: "local", repo: "busy", at: .change(newest.id), path: "held.txt") else {
            Issue.record("held.txt missing from the store")
            return
        }
        #expect(stored == bytes)
    }
}
