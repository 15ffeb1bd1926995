import Client
import Foundation
@testable import MesaDaemon
import MesaProtocol
import Model
import RPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The rules that turn two looks at a mount into events.
@Suite struct EventRuleTests {
    static let root = String(repeating: "z", count: 32)
    static let base = MountSnapshot(id: "local/demo", path: "/m/local/demo", org: "local", repo: "demo", baseChange: root)

    @Test func nothingChangedMeansNoEvents() {
        #expect(EventRules.mountEvents(previous: Self.base, current: Self.base, changed: ([], false)).isEmpty)
    }

    @Test func aWriteThenItsUploadGiveFilesPendingAndAmended() {
        var pending = Self.base
        pending.pendingUploads = 2
        pending.dirtyPaths = ["a.txt", "b.txt"]
        let first = EventRules.mountEvents(previous: Self.base, current: pending, changed: (["a.txt", "b.txt"], false))
        #expect(first.map(\.event) == ["filesChanged", "uploadPending"])
        #expect(first.first?.paths == ["a.txt", "b.txt"])
        #expect(first.last?.pendingUploads == 2)

        var uploaded = pending
        uploaded.pendingUploads = 0
        uploaded.dirtyPaths = []
        uploaded.workingChange = "kkkk"
        uploaded.lastFlush = Date(timeIntervalSince1970: 100)
        let second = EventRules.mountEvents(previous: pending, current: uploaded, changed: ([], false))
        #expect(second.map(\.event) == ["changeAmended"])
        #expect(second.first?.changeId == "kkkk")
    }

    @Test func failuresAreReportedOnceAndRecoveryAfter() {
        var failing = Self.base
        failing.pendingUploads = 1
        failing.lastError = "backend unreachable"
        let failed = EventRules.mountEvents(previous: Self.base, current: failing, changed: ([], false))
        #expect(failed.map(\.event) == ["uploadPending", "uploadFailed"])
        #expect(failed.last?.error == "backend unreachable")
        #expect(EventRules.mountEvents(previous: failing, current: failing, changed: ([], false)).isEmpty)
        var recovered = failing
        recovered.lastError = nil
        recovered.pendingUploads = 0
        recovered.lastFlush = Date()
        #expect(EventRules.mountEvents(previous: failing, current: recovered, changed: ([], false)).map(\.event) == ["changeAmended", "uploadRecovered"])
    }

    @Test func anOverflowingChangeLogSaysSo() {
        let events = EventRules.mountEvents(previous: Self.base, current: Self.base, changed: ([], true))
        #expect(events.map(\.event) == ["filesChanged"])
        #expect(events.first?.truncated == true)
    }

    @Test func bookmarksCreatedOrMovedButNotUnchanged() {
        let events = EventRules.bookmarkEvents(org: "local", repo: "demo", previous: ["main": "a", "old": "b"],
                                               current: ["main": "c", "old": "b", "new": "d"])
        #expect(events.map { $0.bookmark ?? "" } == ["main", "new"])
        #expect(events.first?.fromChangeId == "a")
        #expect(events.first?.changeId == "c")
        #expect(events.last?.fromChangeId == nil)
    }
}

/// Subscribers of a real mesad hear what happens in its mounts.
@Suite(.serialized, .timeLimit(.minutes(3))) struct EventTests {
    @Test func aSubscriberHearsWritesUploadsCheckpointsAndBookmarkMoves() async throws {
        let mesa = try await MountedDaemon.start(debounceMilliseconds: 200)
        defer { mesa.cleanup() }
        let log = EventLog()
        let client = try mesa.client(notifications: log.dispatcher)
        defer { client.close() }
        let subscribed = try await client.call(Subscribe.self, .init(.id("local/demo")))
        #expect(subscribed.mountId == "local/demo")
        #expect(subscribed.events == MesaEvents.all)

        try "hello\n".write(toFile: mesa.repoPath("demo") + "/notes.md", atomically: false, encoding: .utf8)
        let files = try await log.waitFor("filesChanged") { $0.event == "filesChanged" && $0.paths == ["notes.md"] }
        #expect(files.mountId == "local/demo")
        #expect(files.mountPath == mesa.repoPath("demo"))
        // The flusher uploads ~200 ms later: the working change was amended.
        let amended = try await log.waitFor("changeAmended") { $0.event == "changeAmended" }
        let working = try #require(amended.changeId)

        _ = try await client.call(Checkpoint.self, .init(.id("local/demo"), .init(message: "First notes")))
        let checkpoint = try await log.waitFor("checkpointMade") { $0.event == "checkpointMade" }
        #expect(checkpoint.changeId == working)
        #expect(checkpoint.bookmark == "main")
        #expect(checkpoint.message == "First notes")
        let moved = try await log.waitFor("bookmarkMoved") { $0.event == "bookmarkMoved" && $0.bookmark == "main" }
        #expect(moved.changeId == working)
        #expect(moved.fromChangeId == String(repeating: "z", count: 32))
        // Causal order: the write, its upload, the checkpoint, the move.
        let order = log.all.map(\.event).filter { ["filesChanged", "changeAmended", "checkpointMade", "bookmarkMoved"].contains($0) }
        #expect(order == ["filesChanged", "changeAmended", "checkpointMade", "bookmarkMoved"], "\(order)")

        // After unsubscribing, nothing more arrives.
        #expect(try await client.call(Unsubscribe.self, .init()).removed == 1)
        let before = log.all.count
        try "more\n".write(toFile: mesa.repoPath("demo") + "/more.md", atomically: false, encoding: .utf8)
        _ = try await client.call(Flush.self, .init(mountId: "local/demo"))
        try await Task.sleep(for: .milliseconds(600))
        #expect(log.all.count == before)
    }

    @Test func aFilterNarrowsToOneMountAndSomeEvents() async throws {
        let mesa = try await MountedDaemon.start(repos: ["one", "two"])
        defer { mesa.cleanup() }
        let log = EventLog()
        let client = try mesa.client(notifications: log.dispatcher)
        defer { client.close() }
        _ = try await client.call(Subscribe.self, .init(.path(mesa.repoPath("two") + "/sub/dir"), .init(events: ["filesChanged"])))
        try "1\n".write(toFile: mesa.repoPath("one") + "/a.txt", atomically: false, encoding: .utf8)
        try "2\n".write(toFile: mesa.repoPath("two") + "/b.txt", atomically: false, encoding: .utf8)
        _ = try await client.call(Flush.self, .init(mountId: "local/two"))
        _ = try await client.call(Flush.self, .init(mountId: "local/one"))
        _ = try await log.waitFor("filesChanged in two") { $0.event == "filesChanged" && $0.paths == ["b.txt"] }
        try await Task.sleep(for: .milliseconds(500))
        #expect(log.all.allSatisfy { $0.mountId == "local/two" && $0.event == "filesChanged" }, "\(log.all)")

        let refused = await #expect(throws: MesaClient.Failure.self) {
            _ = try await client.call(Subscribe.self, .init(MountSelector(), .init(events: ["fileschanged"])))
        }
        #expect(refused?.description.contains("unknown event 'fileschanged'") == true)
    }

    @Test func unmountingOrLosingAPathMountIsReported() async throws {
        let mesa = try await MountedDaemon.start()
        defer { mesa.cleanup() }
        let first = mesa.sandbox.root + "/first", second = mesa.sandbox.root + "/second"
        mesa.extraMounts.withLock { $0 += [first, second] }
        let log = EventLog()
        let client = try mesa.client(notifications: log.dispatcher)
        defer { client.close() }
        _ = try await client.call(MountMethod.self, .init(repo: "demo", path: first))
        _ = try await client.call(MountMethod.self, .init(repo: "demo", path: second))
        _ = try await client.call(Subscribe.self, .init(MountSelector(), .init(events: ["mountLost"])))

        _ = try await client.call(UnmountMethod.self, .init(mountId: first))
        let unmounted = try await log.waitFor("mountLost") { $0.mountId == first }
        #expect(unmounted.reason == "unmounted")

        // Someone unmounts the other behind mesad's back.
        MountedDaemon.lazyUnmount(second)
        let lost = try await log.waitFor("mountLost", timeout: .seconds(30)) { $0.mountId == second }
        #expect(lost.reason?.contains("FUSE session ended") == true, "\(lost.reason ?? "")")
        #expect(log.all.count == 2, "\(log.all)")
    }

    @Test func watchPrintsJSONLinesAndExitsZeroOnInterrupt() async throws {
        let mesa = try await MountedDaemon.start()
        defer { mesa.cleanup() }
        let watch = try Child(try Executables.path("mesa-client"), ["watch", "--mount", "local/demo", "--no-start"],
                              environment: mesa.sandbox.environment(), logs: mesa.sandbox.root)
        defer { watch.kill() }
        #expect(await eventually(timeout: .seconds(20)) { watch.stderr.contains("watching local/demo") }, "\(watch.stderr)")
        try "x\n".write(toFile: mesa.repoPath("demo") + "/x.txt", atomically: false, encoding: .utf8)
        #expect(await eventually(timeout: .seconds(20)) { watch.stdout.contains("\"event\":\"filesChanged\"") }, "\(watch.stdout)")
        let line = try #require(watch.stdout.split(separator: "\n").first { $0.contains("filesChanged") })
        let event = try JSONDecoder().decode(MesaEvent.self, from: Data(line.utf8))
        #expect(event.paths == ["x.txt"])
        #expect(event.mountId == "local/demo")
        watch.signal(SIGINT)
        #expect(try await watch.waitExitCode(timeout: .seconds(10)) == 0)
    }
}

/// protocol.md documents every notification mesad can send, each with an example.
@Suite struct EventDocumentTests {
    @Test func everyNotificationHasARowAndAnExample() throws {
        let text = try String(contentsOfFile: ProtocolDocumentTests.protocolDocument, encoding: .utf8)
        for method in MesaEvents.methods {
            #expect(text.contains("| `\(method)` |"), "protocol.md has no table row for \(method)")
            #expect(text.contains("\"method\":\"\(method)\""), "protocol.md has no example of \(method)")
        }
        #expect(Daemon.notifications.filter { $0.hasPrefix("mesa/") } == MesaEvents.methods)
    }
}
