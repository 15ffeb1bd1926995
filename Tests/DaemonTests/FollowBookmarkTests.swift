import Client
import Foundation
import MesaProtocol
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two mounts of one repo in a real mesad: a checkpoint in one shows up in the other,
/// through plain file reads, within seconds — unless the other has work of its own.
@Suite(.serialized, .timeLimit(.minutes(3))) struct FollowBookmarkTests {
    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test func aCleanMountShowsAnotherMountsCheckpointWithinSeconds() async throws {
        let mesa = try await MountedDaemon.start(debounceMilliseconds: 200)
        defer { mesa.cleanup() }
        let a = mesa.sandbox.root + "/agent-a"
        mesa.extraMounts.withLock { $0.append(a) }
        let b = mesa.repoPath("demo")  // agent B works in the tree
        let log = EventLog()
        let client = try mesa.client(notifications: log.dispatcher)
        defer { client.close() }
        _ = try await client.call(MountMethod.self, .init(repo: "demo", path: a))

        // A's first checkpoint: B (opened before it) follows main.
        let listedB = try await offPool { try FileManager.default.contentsOfDirectory(atPath: b) }
        #expect(listedB.isEmpty)
        try await offPool {
            try "v1\n".write(toFile: a + "/shared.txt", atomically: false, encoding: .utf8)
            try "old\n".write(toFile: a + "/gone.txt", atomically: false, encoding: .utf8)
        }
        _ = try await client.call(Checkpoint.self, .init(.path(a), .init(message: "first")))
        #expect(await eventually(timeout: .seconds(15)) { Self.read(b + "/shared.txt") == "v1\n" },
                "B never showed A's first checkpoint: \(Self.read(b + "/shared.txt") ?? "(absent)")")
        // B's kernel has shared.txt's pages cached now (blobs are opened keep_cache).
        #expect(await offPool { Self.read(b + "/gone.txt") } == "old\n")

        _ = try await client.call(Subscribe.self, .init(.id("local/demo"), .init(events: ["bookmarkMoved", "filesChanged"])))
        try await offPool {
            try "version two, longer\n".write(toFile: a + "/shared.txt", atomically: false, encoding: .utf8)
            try "n\n".write(toFile: a + "/new.txt", atomically: false, encoding: .utf8)
            try FileManager.default.removeItem(atPath: a + "/gone.txt")
        }
        let saved = try await client.call(Checkpoint.self, .init(.path(a), .init(message: "second")))
        #expect(await eventually(timeout: .seconds(15)) {
            Self.read(b + "/shared.txt") == "version two, longer\n" && Self.read(b + "/new.txt") == "n\n"
                && !FileManager.default.fileExists(atPath: b + "/gone.txt")
        }, "B shows \(Self.read(b + "/shared.txt") ?? "(absent)")")
        #expect(try await offPool { try FileManager.default.contentsOfDirectory(atPath: b).sorted() } == ["new.txt", "shared.txt"])
        let moved = try await log.waitFor("bookmarkMoved", timeout: .seconds(15)) {
            $0.event == "bookmarkMoved" && $0.bookmark == "main" && $0.changeId == saved.savedChangeId
        }
        #expect(moved.org == "local" && moved.repo == "demo")
        let files = try await log.waitFor("filesChanged of B", timeout: .seconds(15)) {
            $0.event == "filesChanged" && $0.mountId == "local/demo" && ($0.paths ?? []).contains("shared.txt")
        }
        #expect(Set(files.paths ?? []).isSuperset(of: ["shared.txt", "new.txt", "gone.txt"]), "\(files.paths ?? [])")

        // B with work of its own stays put: its checkpoint reports the race, nothing lost.
        try await offPool { try "mine\n".write(toFile: b + "/mine.txt", atomically: false, encoding: .utf8) }
        _ = try await client.call(Flush.self, .init(mountId: "local/demo"))
        try await offPool { try "v3\n".write(toFile: a + "/shared.txt", atomically: false, encoding: .utf8) }
        _ = try await client.call(Checkpoint.self, .init(.path(a), .init(message: "third")))
        let refused = await #expect(throws: MesaClient.Failure.self) {
            _ = try await client.call(Checkpoint.self, .init(.id("local/demo"), .init(message: "B's work")))
        }
        #expect(refused?.description.contains("moved by someone else") == true, "\(refused?.description ?? "")")
        #expect(await offPool { Self.read(b + "/mine.txt") } == "mine\n")
        #expect(await offPool { Self.read(b + "/shared.txt") } == "version two, longer\n")
    }
}
