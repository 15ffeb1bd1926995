import Client
import Foundation
import MesaProtocol
import RPC
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers for the agent-facing tests: a real mesad with its tree mounted, hooks fed
// recorded payloads through the real `mesa-client hook`, notifications collected.

/// Recorded hook inputs (Tests/Fixtures/claude-hooks) with their placeholders filled.
enum HookFixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/claude-hooks").path

    static func text(_ name: String, session: String, cwd: String, file: String = "", relative: String = "") throws -> String {
        let raw = try String(contentsOfFile: directory + "/\(name).json", encoding: .utf8)
        return raw.replacingOccurrences(of: "{{SESSION}}", with: session).replacingOccurrences(of: "{{CWD}}", with: cwd)
            .replacingOccurrences(of: "{{FILE}}", with: file).replacingOccurrences(of: "{{RELATIVE}}", with: relative)
    }
}

/// mesad (a child process) with the daemon tree mounted in a temporary home. Call
/// `cleanup()` in a `defer`: it stops mesad by pid and lazily unmounts what is left.
final class MountedDaemon: @unchecked Sendable {
    let sandbox: Sandbox
    let daemon: DaemonProcess
    /// Extra mount points to clear at cleanup (path mounts made by a test).
    let extraMounts = Mutex<[String]>([])

    var mountPoint: String { sandbox.treeMountPoint }
    func repoPath(_ repo: String) -> String { mountPoint + "/local/" + repo }

    private init(sandbox: Sandbox, daemon: DaemonProcess) {
        self.sandbox = sandbox
        self.daemon = daemon
    }

    /// Starts mesad with `--mount` and creates `repos`. The upload debounce is long by
    /// default, so a test sees what a hook's flush did, not what the flusher did anyway.
    static func start(repos: [String] = ["demo"], debounceMilliseconds: Int = 60000) async throws -> MountedDaemon {
        let sandbox = try Sandbox()
        _ = try sandbox.write(".config/mesa/config.toml", "[daemon]\nflush-debounce-ms = \(debounceMilliseconds)\n")
        let daemon = try await DaemonProcess.start(sandbox, arguments: ["--mount"])
        let mounted = MountedDaemon(sandbox: sandbox, daemon: daemon)
        for repo in repos {
            let created = try await Run.run("mesa-client", ["create-repo", repo], sandbox: sandbox, timeout: .seconds(30))
            guard created.code == 0 else {
                mounted.cleanup()
                throw TestFailure("create-repo \(repo) failed: \(created.stderr)")
            }
        }
        return mounted
    }

    func cleanup() {
        daemon.child.signal(SIGTERM)
        if daemon.child.wait(timeout: .seconds(30)) == nil { daemon.kill() }
        killRecordedDaemon(sandbox)
        for path in extraMounts.withLock({ $0 }) + [mountPoint] { Self.lazyUnmount(path) }
    }

    static func lazyUnmount(_ path: String) {
        guard let child = try? Child("/bin/sh", ["-c", "fusermount3 -u -z \"$0\" 2>/dev/null || true", path],
                                     environment: ["PATH": "/usr/bin:/bin"], logs: NSTemporaryDirectory()) else { return }
        _ = child.wait(timeout: .seconds(10))
        child.kill()
    }

    func client(notifications: Dispatcher = Dispatcher()) throws -> MesaClient {
        do { return try MesaClient.connect(paths: sandbox.paths, autostart: false, notifications: notifications) } catch {
            throw TestFailure("cannot connect: \(error)")
        }
    }

    /// Runs `mesa-client hook <event>` with a fixture on stdin, like Claude Code does.
    func hook(_ event: String, fixture: String, session: String, cwd: String, file: String = "", relative: String = "",
              arguments: [String] = [], timeout: Duration = .seconds(30)) async throws -> Run {
        try await runHook(sandbox: sandbox, event, input: try HookFixture.text(fixture, session: session, cwd: cwd, file: file, relative: relative),
                          arguments: arguments, timeout: timeout)
    }
}

/// `mesa-client hook <event> [arguments]` with `input` on stdin, killed after `timeout`.
func runHook(sandbox: Sandbox, _ event: String, input: String, arguments: [String] = [],
             timeout: Duration = .seconds(30)) async throws -> Run {
    let client = try Executables.path("mesa-client")
    let inputFile = sandbox.root + "/hook-input-\(UUID().uuidString.prefix(8)).json"
    try input.write(toFile: inputFile, atomically: true, encoding: .utf8)
    return try await offPool {
        let child = try Child("/bin/sh", ["-c", "exec \"$0\" hook \"$@\" < \"$HOOK_INPUT\"", client, event] + arguments,
                              environment: sandbox.environment(["HOOK_INPUT": inputFile]), logs: sandbox.root)
        defer { child.kill() }
        let code = try child.waitExitCodeBlocking(timeout: timeout)
        return Run(code: code, stdout: child.stdout, stderr: child.stderr)
    }
}

/// Collects `mesa/*` notifications a client receives.
final class EventLog: Sendable {
    let events = Mutex<[MesaEvent]>([])
    let dispatcher = Dispatcher()

    init() {
        for method in MesaEvents.methods {
            dispatcher.registerNotification(method: method) { [weak self] params, _ in
                guard let event = try? (params ?? .null).decode(MesaEvent.self) else { return }
                self?.events.withLock { $0.append(event) }
            }
        }
    }

    var all: [MesaEvent] { events.withLock { $0 } }

    /// Waits until an event satisfying `match` arrived; returns it.
    func waitFor(_ description: String, timeout: Duration = .seconds(20), _ match: @escaping @Sendable (MesaEvent) -> Bool) async throws -> MesaEvent {
        let found = await eventually(timeout: timeout) { self.all.contains(where: match) }
        guard found, let event = all.first(where: match) else {
            throw TestFailure("no \(description) event within \(timeout); got \(all.map(\.event))")
        }
        return event
    }
}
