import Client
@testable import MesaDaemon
import Foundation
import MesaProtocol
import Model
import RPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Recorded Claude Code hook payloads through the real `mesa-client hook` against a real
/// mesad with its tree mounted: what the agent and the user see afterwards.
@Suite(.serialized, .timeLimit(.minutes(3))) struct HookProcessTests {
    static let session = "5e0c9a7e-2b1d-4c55-9f1e-0a9b8c7d6e5f"

    @Test func aPromptsEditsBecomeOneDescribedChangeOnStop() async throws {
        let mesa = try await MountedDaemon.start()
        defer { mesa.cleanup() }
        let repo = mesa.repoPath("demo")

        let start = try await mesa.hook("SessionStart", fixture: "SessionStart", session: Self.session, cwd: repo)
        #expect(start.code == 0, "\(start.stderr)")
        let output = try #require((try? JSONSerialization.jsonObject(with: Data(start.stdout.utf8))) as? [String: Any], "\(start.stdout)")
        let specific = output["hookSpecificOutput"] as? [String: Any]
        #expect(specific?["hookEventName"] as? String == "SessionStart")
        let context = specific?["additionalContext"] as? String ?? ""
        for fact in ["local/demo", repo, "Bookmark: main", "working change none yet"] {
            #expect(context.contains(fact), "context should mention \(fact): \(context)")
        }

        let prompt = try await mesa.hook("UserPromptSubmit", fixture: "UserPromptSubmit", session: Self.session, cwd: repo)
        #expect(prompt.code == 0 && prompt.stdout.isEmpty, "\(prompt.stderr)")

        // The agent writes a file; the PostToolUse hook uploads it at once (the flusher
        // would wait 60 s here).
        try FileManager.default.createDirectory(atPath: repo + "/src", withIntermediateDirectories: true)
        try "print(\"hello\")\n".write(toFile: repo + "/src/hello.py", atomically: false, encoding: .utf8)
        let write = try await mesa.hook("PostToolUse", fixture: "PostToolUse-Write", session: Self.session, cwd: repo, file: repo + "/src/hello.py")
        #expect(write.code == 0, "\(write.stderr)")
        let client = try mesa.client()
        defer { client.close() }
        let afterWrite = try #require(try await client.call(MountStatusMethod.self, .init(mountId: "local/demo")).mounts.first)
        #expect(afterWrite.pendingUploads == 0)
        // The default layout prefetch reports itself in the status.
        #expect(afterWrite.prefetch?.mode == "layout")
        #expect(["running", "done"].contains(afterWrite.prefetch?.state ?? "absent"))
        #expect(afterWrite.prefetch?.directoriesListed ?? 0 >= 0 && afterWrite.prefetch?.bytesFetched == 0)
        let working = try #require(afterWrite.workingChangeId, "the PostToolUse hook did not upload the write")

        // An Edit with a path relative to cwd, and a Bash command that wrote a file.
        try "print(\"hello, world\")\n".write(toFile: repo + "/src/hello.py", atomically: false, encoding: .utf8)
        let edit = try await mesa.hook("PostToolUse", fixture: "PostToolUse-Edit", session: Self.session, cwd: repo, relative: "src/hello.py")
        #expect(edit.code == 0, "\(edit.stderr)")
        try FileManager.default.createDirectory(atPath: repo + "/docs", withIntermediateDirectories: true)
        try "notes\n".write(toFile: repo + "/docs/notes.md", atomically: false, encoding: .utf8)
        let bash = try await mesa.hook("PostToolUse", fixture: "PostToolUse-Bash", session: Self.session, cwd: repo)
        #expect(bash.code == 0, "\(bash.stderr)")
        #expect(try await client.call(MountStatusMethod.self, .init(mountId: "local/demo")).mounts.first?.pendingUploads == 0)

        let stop = try await mesa.hook("Stop", fixture: "Stop", session: Self.session, cwd: repo)
        #expect(stop.code == 0, "\(stop.stderr)")
        #expect(stop.stdout.contains("checkpoint \(working)"), "\(stop.stdout)")

        let changes = try await client.call(ListChanges.self, .init(.repo("demo", org: "local"), .init(.init(bookmark: "main")))).changes
        #expect(changes.count == 1)
        let change = try #require(changes.first)
        #expect(change.id == working)
        #expect(change.message.hasPrefix("Add a greeting module\n"), "\(change.message)")
        #expect(change.message.contains("Files:\n- docs/notes.md\n- src/hello.py"), "\(change.message)")
        #expect(change.message.contains("Session: \(Self.session)"))
        let shown = try await client.call(ShowChange.self, .init(.repo("demo", org: "local"), .init(rev: "main")))
        #expect(shown.change.id == working)

        // The prompt is spent: a second Stop with no new work saves nothing.
        #expect(HookStateStore(paths: mesa.sandbox.paths).load(Self.session).prompts.isEmpty)
        let again = try await mesa.hook("Stop", fixture: "Stop", session: Self.session, cwd: repo)
        #expect(again.code == 0 && again.stdout.isEmpty, "\(again.stdout) \(again.stderr)")
        #expect(try await client.call(ListChanges.self, .init(.repo("demo", org: "local"), .init(.init(bookmark: "main")))).changes.count == 1)
    }

    @Test func sessionBookmarksLeaveMainAlone() async throws {
        let mesa = try await MountedDaemon.start()
        defer { mesa.cleanup() }
        let repo = mesa.repoPath("demo")
        let flag = ["--session-bookmarks"]
        #expect(try await mesa.hook("SessionStart", fixture: "SessionStart", session: Self.session, cwd: repo, arguments: flag).code == 0)
        #expect(try await mesa.hook("UserPromptSubmit", fixture: "UserPromptSubmit", session: Self.session, cwd: repo, arguments: flag).code == 0)
        try "x\n".write(toFile: repo + "/x.txt", atomically: false, encoding: .utf8)
        #expect(try await mesa.hook("PostToolUse", fixture: "PostToolUse-Write", session: Self.session, cwd: repo, file: repo + "/x.txt").code == 0)
        let stop = try await mesa.hook("Stop", fixture: "Stop", session: Self.session, cwd: repo, arguments: flag)
        #expect(stop.code == 0, "\(stop.stderr)")
        #expect(stop.stdout.contains("on session/\(Self.session)"), "\(stop.stdout)")

        let client = try mesa.client()
        defer { client.close() }
        let bookmarks = try await client.call(ListBookmarks.self, .init(.repo("demo", org: "local"))).bookmarks
        let main = try #require(bookmarks.first { $0.name == "main" })
        let sessionBookmark = try #require(bookmarks.first { $0.name == "session/\(Self.session)" })
        #expect(main.changeId == String(repeating: "z", count: 32), "main moved")
        let saved = try await client.call(ShowChange.self, .init(.repo("demo", org: "local"), .init(rev: sessionBookmark.name))).change
        #expect(saved.files == ["x.txt"])
        #expect(saved.message.hasPrefix("Add a greeting module"))
    }

    @Test func sessionStartStartsMesadAndMountsTheRepoOfCwd() async throws {
        let sandbox = try Sandbox()
        let mountPoint = sandbox.treeMountPoint
        defer {
            killRecordedDaemon(sandbox)
            MountedDaemon.lazyUnmount(mountPoint)
        }
        // The repo exists in the store, but no mesad runs and nothing is mounted.
        let created = try await Run.run("mesa-client", ["create-repo", "demo"], sandbox: sandbox)
        #expect(created.code == 0, "\(created.stderr)")
        killRecordedDaemon(sandbox)
        #expect(await eventually(timeout: .seconds(10)) { !Daemonizer.answers(sandbox.socketPath) })

        let repo = mountPoint + "/local/demo"
        let start = try await runHook(sandbox: sandbox, "SessionStart", input: try HookFixture.text("SessionStart", session: Self.session, cwd: repo))
        #expect(start.code == 0, "\(start.stderr)")
        #expect(start.stdout.contains("inside the Mesa mount of local/demo"), "\(start.stdout)")
        #expect(recordedDaemon(sandbox)?.isAlive == true)
        // The agent can write there now.
        try "hi\n".write(toFile: repo + "/a.txt", atomically: false, encoding: .utf8)
        #expect(try String(contentsOfFile: repo + "/a.txt", encoding: .utf8) == "hi\n")
    }

    @Test func preToolUseRefusesOnlyWritesIntoReadOnlyMounts() async throws {
        let mesa = try await MountedDaemon.start()
        defer { mesa.cleanup() }
        let readOnly = mesa.sandbox.root + "/ro"
        mesa.extraMounts.withLock { $0.append(readOnly) }
        let client = try mesa.client()
        defer { client.close() }
        _ = try await client.call(MountMethod.self, .init(repo: "demo", mode: "ro", path: readOnly))

        let refused = try await mesa.hook("PreToolUse", fixture: "PreToolUse-Write", session: Self.session, cwd: readOnly, file: readOnly + "/a.py")
        #expect(refused.code == 2)
        #expect(refused.stderr.contains("read-only mount of local/demo"), "\(refused.stderr)")
        #expect(refused.stderr.contains(readOnly + "/a.py"))

        let writable = mesa.repoPath("demo")
        let allowed = try await mesa.hook("PreToolUse", fixture: "PreToolUse-Write", session: Self.session, cwd: writable, file: writable + "/a.py")
        #expect(allowed.code == 0 && allowed.stderr.isEmpty, "\(allowed.stderr)")
        let elsewhere = try await mesa.hook("PreToolUse", fixture: "PreToolUse-Write", session: Self.session, cwd: "/tmp", file: "/tmp/a.py")
        #expect(elsewhere.code == 0 && elsewhere.stderr.isEmpty, "\(elsewhere.stderr)")
    }

    @Test func withoutMesadHooksFailWithoutBlocking() async throws {
        let sandbox = try Sandbox()
        defer { killRecordedDaemon(sandbox) }
        let input = try HookFixture.text("PostToolUse-Write", session: Self.session, cwd: "/tmp", file: "/tmp/a.py")
        for event in ["PreToolUse", "PostToolUse"] {
            let run = try await runHook(sandbox: sandbox, event, input: input.replacingOccurrences(of: "\"PostToolUse\"", with: "\"\(event)\""))
            #expect(run.code == 1, "\(event): \(run.code) \(run.stderr)")
            #expect(run.stderr.contains("mesad is not running"), "\(run.stderr)")
        }
        // Remembering a prompt needs no daemon.
        let prompt = try await runHook(sandbox: sandbox, "UserPromptSubmit", input: try HookFixture.text("UserPromptSubmit", session: Self.session, cwd: "/tmp"))
        #expect(prompt.code == 0, "\(prompt.stderr)")
        #expect(HookStateStore(paths: sandbox.paths).load(Self.session).prompts.count == 1)
        // Not JSON, or a misspelt option: reported, never the blocking status 2.
        let garbage = try await runHook(sandbox: sandbox, "Stop", input: "this is not json")
        #expect(garbage.code == 1 && garbage.stderr.contains("JSON"), "\(garbage.stderr)")
        let typo = try await runHook(sandbox: sandbox, "UserPromptSubmit", input: try HookFixture.text("UserPromptSubmit", session: "s2", cwd: "/tmp"),
                                     arguments: ["--sesion-bookmarks"])
        #expect(typo.code == 0 && typo.stderr.contains("ignoring unknown argument"), "\(typo.code) \(typo.stderr)")
        #expect(recordedDaemon(sandbox) == nil, "a hook that must not start mesad started it")
    }

    @Test func aStuckDaemonCannotHangTheAgent() async throws {
        let sandbox = try Sandbox()
        // Something listens on the socket but never answers.
        try FileManager.default.createDirectory(atPath: sandbox.runtimeDirectory, withIntermediateDirectories: true)
        let listener = try UnixSocketListener(path: sandbox.socketPath)
        defer { listener.close() }
        listener.start { _ in }
        let started = ContinuousClock.now
        let run = try await runHook(sandbox: sandbox, "PostToolUse",
                                    input: try HookFixture.text("PostToolUse-Write", session: Self.session, cwd: "/tmp", file: "/tmp/a.py"),
                                    arguments: ["--timeout", "2"], timeout: .seconds(20))
        #expect(run.code == 1)
        #expect(run.stderr.contains("gave up after 2 s"), "\(run.stderr)")
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
