import Client
import Foundation
import MesaDaemon
import MesaProtocol
import Model
import RPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// mesad as a process: daemonizing, files and permissions, signals, a second instance,
/// a stale socket, stdio mode, many clients, frame limits. Each test has its own HOME
/// and runtime directory and kills what it started, by pid, on every path.
@Suite(.timeLimit(.minutes(3))) struct LifecycleTests {
    @Test func daemonizeReturnsOnceTheSocketAnswers() async throws {
        let sandbox = try Sandbox()
        let start = try Child(try Executables.path("mesad"), ["-d"], environment: sandbox.environment(),
                              logs: sandbox.root)
        defer { start.kill() }
        // Whatever happens below, the detached daemon dies with the test.
        defer { killRecordedDaemon(sandbox) }
        let code = try await start.waitExitCode(timeout: .seconds(60))
        let daemon = recordedDaemon(sandbox)

        #expect(code == 0, "mesad -d failed: \(start.stderr)")
        // It answers right away: no waiting after `mesad -d` returned.
        #expect(Daemonizer.answers(sandbox.socketPath))
        let printed = start.stdout
        let running = try #require(daemon, "no pid file at \(sandbox.pidFile)")
        #expect(running.isAlive)
        #expect(printed.contains("pid \(running.pid)"), "\(printed)")
        #expect(running.pid != start.pid, "the daemon is a detached child, not the starter")

        #expect(fileMode(sandbox.runtimeDirectory) == 0o700)
        #expect(fileType(sandbox.socketPath) == S_IFSOCK)
        #expect(fileMode(sandbox.socketPath) == 0o600)
        #expect(fileMode(sandbox.pidFile) == 0o600)
        #expect(fileMode(sandbox.home + "/.local/share/mesa/secrets.plaintext.toml") == 0o600)

        // The detached daemon stops on SIGTERM and cleans up after itself.
        kill(running.pid, SIGTERM)
        #expect(await eventually(timeout: .seconds(30)) { !running.isAlive })
        #expect(!exists(sandbox.socketPath))
        #expect(!exists(sandbox.pidFile))
    }

    @Test func daemonizeReportsAStartFailure() async throws {
        let sandbox = try Sandbox()
        // A key the store does not know: the daemon must refuse it, and `mesad -d`
        // must say so and fail instead of returning 0.
        let bogus = "mesa_" + String(repeating: "ab", count: 32)
        defer { killRecordedDaemon(sandbox) }
        let run = try await Run.run("mesad", ["-d"], sandbox: sandbox, environment: ["MESA_ORGS": "acme:\(bogus)"])
        #expect(run.code != 0)
        #expect(run.stderr.contains("organization 'acme'"), "\(run.stderr)")
        #expect(run.stderr.contains("unknown API key"), "\(run.stderr)")
        #expect(!bogusAppears(bogus, in: run.stderr), "the secret must not be printed")
        #expect(!Daemonizer.answers(sandbox.socketPath))
    }

    private func bogusAppears(_ secret: String, in text: String) -> Bool { text.contains(secret) }

    @Test func sigtermStopsCleanly() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        #expect(exists(sandbox.socketPath))
        #expect((try? String(contentsOfFile: sandbox.pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                == "\(daemon.pid)")
        // A connected client does not keep the daemon alive.
        let client = try daemon.client()
        defer { client.close() }
        _ = try await client.call(Whoami.self, .init())

        #expect(try await daemon.stop() == 0, "stderr: \(daemon.child.stderr)")
        #expect(!exists(sandbox.socketPath), "socket removed")
        #expect(!exists(sandbox.pidFile), "pid file removed")
        #expect(daemon.child.stderr.contains("stopped"))
    }

    @Test func sigintStopsCleanly() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        daemon.child.signal(SIGINT)
        #expect(try await daemon.child.waitExitCode(timeout: .seconds(30)) == 0)
        #expect(!exists(sandbox.socketPath))
    }

    @Test func shutdownMethodStopsTheDaemon() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        let client = try daemon.client()
        defer { client.close() }
        #expect(try await client.call(Shutdown.self, .init()).ok)
        #expect(try await daemon.child.waitExitCode(timeout: .seconds(30)) == 0)
        #expect(!exists(sandbox.socketPath))
        #expect(!exists(sandbox.pidFile))
    }

    @Test func secondDaemonOnTheSameRuntimeDirectoryRefuses() async throws {
        let sandbox = try Sandbox()
        let first = try await DaemonProcess.start(sandbox)
        defer { first.kill() }
        let second = try await Run.run("mesad", [], sandbox: sandbox)
        #expect(second.code != 0)
        #expect(second.stderr.contains("already running"), "\(second.stderr)")
        #expect(second.stderr.contains("pid \(first.pid)"), "\(second.stderr)")
        // Also through -d: the starter reports the child's refusal.
        let detached = try await Run.run("mesad", ["-d"], sandbox: sandbox)
        #expect(detached.code != 0)
        #expect(detached.stderr.contains("already running"), "\(detached.stderr)")
        // The first one is untouched and still serves.
        #expect(first.child.poll() == nil)
        #expect(Daemonizer.answers(sandbox.socketPath))
        #expect((try? String(contentsOfFile: sandbox.pidFile, encoding: .utf8))?.contains("\(first.pid)") == true)
    }

    @Test func staleSocketOfAKilledDaemonIsCleanedUp() async throws {
        let sandbox = try Sandbox()
        let first = try await DaemonProcess.start(sandbox)
        defer { first.kill() }
        first.kill()  // SIGKILL: no chance to clean up
        #expect(fileType(sandbox.socketPath) == S_IFSOCK, "the dead daemon's socket file is left behind")
        #expect(!Daemonizer.answers(sandbox.socketPath))

        let second = try await DaemonProcess.start(sandbox)
        defer { second.kill() }
        let client = try second.client()
        defer { client.close() }
        #expect(try await client.call(Whoami.self, .init()).org.slug == "local")
        #expect((try? String(contentsOfFile: sandbox.pidFile, encoding: .utf8))?.contains("\(second.pid)") == true)
        #expect(try await second.stop() == 0)
    }

    @Test func aFileInPlaceOfTheSocketIsNeverDeleted() async throws {
        let sandbox = try Sandbox()
        _ = try sandbox.write("run/mesad.sock", "not a socket")
        let run = try await Run.run("mesad", [], sandbox: sandbox)
        #expect(run.code != 0)
        #expect(run.stderr.contains("not a socket"), "\(run.stderr)")
        #expect((try? String(contentsOfFile: sandbox.socketPath, encoding: .utf8)) == "not a socket")
    }

    @Test func restartKeepsTheBootstrapKeyAndData() async throws {
        let sandbox = try Sandbox()
        var keyID: String?
        do {
            let first = try await DaemonProcess.start(sandbox)
            defer { first.kill() }
            let client = try first.client()
            defer { client.close() }
            keyID = try await client.call(Whoami.self, .init()).keyId
            _ = try await client.call(CreateRepo.self, .init(name: "kept"))
            #expect(try await first.stop() == 0)
        }
        let second = try await DaemonProcess.start(sandbox)
        defer { second.kill() }
        let client = try second.client()
        defer { client.close() }
        #expect(try await client.call(Whoami.self, .init()).keyId == keyID)
        #expect(try await client.call(ListRepos.self, .init()).repos.map(\.name) == ["kept"])
        #expect(try await client.call(ListKeys.self, .init()).keys.count == 1)
    }

    // MARK: Stdio

    @Test func stdioAnswersAndExitsWhenStdinCloses() async throws {
        let sandbox = try Sandbox()
        let child = try Child(try Executables.path("mesad"), ["--stdio"], environment: sandbox.environment(),
                              logs: sandbox.root, pipeStdio: true)
        defer { child.kill() }
        let reader = FrameReader(fd: child.stdoutFD)
        try writeAll(child.stdinFD, frame(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"tests"}}}"#))
        let initialized = try #require(await reader.next(timeout: .seconds(60)), "no answer to initialize; stderr: \(child.stderr)")
        #expect(initialized["id"] as? Int == 1)
        let result = try #require(initialized["result"] as? [String: Any])
        #expect((result["serverInfo"] as? [String: Any])?["name"] as? String == "mesad")
        let methods = try #require((result["capabilities"] as? [String: Any])?["methods"] as? [String])
        #expect(methods.contains("createRepo"))

        // Two requests in one write, answered in any order.
        try writeAll(child.stdinFD, frame(#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#)
            + frame(#"{"jsonrpc":"2.0","id":"w","method":"whoami"}"#)
            + frame(#"{"jsonrpc":"2.0","id":3,"method":"getRepo","params":{"repo":"missing"}}"#))
        var answers: [String: [String: Any]] = [:]
        for _ in 0..<2 {
            let answer = try #require(await reader.next(timeout: .seconds(30)))
            answers["\(answer["id"] ?? "null")"] = answer
        }
        #expect(((answers["w"]?["result"] as? [String: Any])?["org"] as? [String: Any])?["slug"] as? String == "local")
        let error = try #require(answers["3"]?["error"] as? [String: Any])
        #expect(error["code"] as? Int == -32001)
        #expect((error["data"] as? [String: Any])?["errorClass"] as? String == "bad-input")

        child.closeStdin()
        #expect(try await child.waitExitCode(timeout: .seconds(30)) == 0, "stderr: \(child.stderr)")
        #expect(await reader.waitForEOF(timeout: .seconds(5)))
        // Nothing but frames on stdout: the log went to stderr.
        #expect(reader.buffer.isEmpty, "stray bytes on stdout: \(String(decoding: reader.buffer, as: UTF8.self))")
        // Stdio mode does not take the socket.
        #expect(!exists(sandbox.socketPath))
    }

    /// Issue 12: a bad `Content-Length` on stdin is answered, and the answer reaches
    /// stdout before mesad exits — every time, not just when the writer thread wins.
    @Test(arguments: [
        ("Content-Length: -5\r\n\r\n{}", -32700, "negative"),
        ("Content-Length: 99999999999999999999999\r\n\r\n{}", -32700, "too large to represent"),
        ("Content-Length: \(1 << 40)\r\n\r\n{}", -32600, "exceeds the maximum"),
        ("Content-Length: 12abc\r\n\r\n{}", -32700, "not a decimal byte count"),
    ])
    func stdioAnswersABadContentLengthBeforeExiting(header: String, code: Int, message: String) async throws {
        let sandbox = try Sandbox()
        for run in 0..<20 {
            let child = try Child(try Executables.path("mesad"), ["--stdio"], environment: sandbox.environment(),
                                  logs: sandbox.root, pipeStdio: true)
            defer { child.kill() }
            let reader = FrameReader(fd: child.stdoutFD)
            try writeAll(child.stdinFD, Array(header.utf8))
            let answer = try #require(await reader.next(timeout: .seconds(30)), "run \(run): no error frame; stderr: \(child.stderr)")
            #expect(answer["id"] is NSNull, "run \(run)")
            let error = try #require(answer["error"] as? [String: Any], "run \(run)")
            #expect(error["code"] as? Int == code, "run \(run)")
            #expect((error["message"] as? String)?.contains(message) == true, "run \(run): \(error)")
            // It closes the session by itself, stdin still open.
            _ = try await child.waitExitCode(timeout: .seconds(30))
            #expect(await reader.waitForEOF(timeout: .seconds(5)), "run \(run)")
        }
    }

    @Test func stdioBesideASocketDaemonRelaysToIt() async throws {
        // The socket daemon owns the store: `mesad --stdio` of the same HOME relays the
        // session to it instead of failing on the store lock.
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        let child = try Child(try Executables.path("mesad"), ["--stdio"], environment: sandbox.environment(),
                              logs: sandbox.root, pipeStdio: true)
        defer { child.kill() }
        let reader = FrameReader(fd: child.stdoutFD)
        try writeAll(child.stdinFD, frame(#"{"jsonrpc":"2.0","id":1,"method":"createRepo","params":{"name":"via-stdio"}}"#))
        let created = try #require(await reader.next(timeout: .seconds(60)), "no answer; stderr: \(child.stderr)")
        #expect(((created["result"] as? [String: Any])?["repo"] as? [String: Any])?["name"] as? String == "via-stdio")
        // The repo lives in the socket daemon's store.
        let client = try daemon.client()
        defer { client.close() }
        #expect(try await client.call(ListRepos.self, .init()).repos.map(\.name).contains("via-stdio"))
        child.closeStdin()
        #expect(try await child.waitExitCode(timeout: .seconds(30)) == 0, "stderr: \(child.stderr)")
    }

    @Test func stdioShutdownThenExit() async throws {
        let sandbox = try Sandbox()
        let child = try Child(try Executables.path("mesad"), ["--stdio"], environment: sandbox.environment(),
                              logs: sandbox.root, pipeStdio: true)
        defer { child.kill() }
        let reader = FrameReader(fd: child.stdoutFD)
        try writeAll(child.stdinFD, frame(#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#))
        let answer = try #require(await reader.next(timeout: .seconds(60)), "stderr: \(child.stderr)")
        #expect((answer["result"] as? [String: Any])?["ok"] as? Bool == true)
        try? writeAll(child.stdinFD, frame(#"{"jsonrpc":"2.0","method":"exit"}"#))
        // Exits without stdin being closed.
        #expect(try await child.waitExitCode(timeout: .seconds(30)) == 0, "stderr: \(child.stderr)")
    }

    // MARK: Many clients, limits, bad input

    @Test func manyConcurrentClients() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        let paths = sandbox.paths
        let clients = 16, calls = 50
        let succeeded = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    let client = try MesaClient.connect(paths: paths, autostart: false)
                    defer { client.close() }
                    var ok = 0
                    for _ in 0..<calls where try await client.call(Whoami.self, .init()).org.slug == "local" { ok += 1 }
                    return ok
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(succeeded == clients * calls)
        #expect(daemon.child.poll() == nil, "still running")
        #expect(try await daemon.stop() == 0)
    }

    @Test func oversizedFrameClosesOnlyThatConnection() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        let bystander = try RawSocket(sandbox.socketPath)
        #expect(try await bystander.request(1, "whoami")?["result"] != nil)

        // Default limit 64 MiB: a header announcing one byte more is refused at once.
        let offender = try RawSocket(sandbox.socketPath)
        try offender.send(Array("Content-Length: \((64 << 20) + 1)\r\n\r\n{".utf8))
        let refusal = try #require(await offender.reader.next(timeout: .seconds(30)), "no error before the close")
        #expect(refusal["id"] is NSNull)
        let error = try #require(refusal["error"] as? [String: Any])
        #expect((error["code"] as? Int).map { $0 < 0 } == true)
        #expect((error["message"] as? String)?.lowercased().contains("frame") == true, "\(error)")
        #expect((error["data"] as? [String: Any])?["errorClass"] as? String == "bad-input")
        #expect(await offender.reader.waitForEOF(timeout: .seconds(30)), "the offending connection is closed")

        // The other connection and new ones are unaffected.
        #expect(try await bystander.request(2, "listOrgs")?["result"] != nil)
        #expect(try await RawSocket(sandbox.socketPath).request(1, "whoami")?["result"] != nil)
        #expect(try await daemon.stop() == 0)
    }

    @Test func configuredFrameLimitIsEnforcedOnRealBodies() async throws {
        let sandbox = try Sandbox()
        let config = try sandbox.write("limits.toml", "[daemon]\nmax-frame-size = \"1KiB\"\n")
        let daemon = try await DaemonProcess.start(sandbox, arguments: ["-c", config])
        defer { daemon.kill() }
        let small = try RawSocket(sandbox.socketPath)
        #expect(try await small.request(1, "getRepo", #"{"repo":"\#(String(repeating: "x", count: 500))"}"#)?["error"] != nil)
        let big = try RawSocket(sandbox.socketPath)
        let answer = try await big.request(1, "getRepo", #"{"repo":"\#(String(repeating: "x", count: 2000))"}"#)
        #expect(answer?["id"] is NSNull, "refused as a frame, not answered as a request: \(String(describing: answer))")
        #expect(await big.reader.waitForEOF(timeout: .seconds(30)))
        #expect(try await small.request(2, "whoami")?["result"] != nil)
    }

    @Test func badInputGetsErrorsAndTheConnectionSurvives() async throws {
        let sandbox = try Sandbox()
        let daemon = try await DaemonProcess.start(sandbox)
        defer { daemon.kill() }
        let socket = try RawSocket(sandbox.socketPath)
        // Invalid JSON: −32700, connection stays open.
        try socket.send(frame("{not json"))
        let parse = try #require(await socket.reader.next())
        #expect((parse["error"] as? [String: Any])?["code"] as? Int == -32700)
        #expect(((parse["error"] as? [String: Any])?["data"] as? [String: Any])?["errorClass"] as? String == "bad-input")
        // Unknown method: −32601.
        let unknown = try #require(try await socket.request(2, "noSuchMethod"))
        #expect((unknown["error"] as? [String: Any])?["code"] as? Int == -32601)
        // Wrong types: −32602.
        let wrong = try #require(try await socket.request(3, "createRepo", #"{"name":["x"]}"#))
        #expect((wrong["error"] as? [String: Any])?["code"] as? Int == -32602)
        // A batch is answered as a batch (read as one frame holding an array).
        try socket.send(frame(#"[{"jsonrpc":"2.0","id":4,"method":"listOrgs"},{"jsonrpc":"2.0","id":5,"method":"nope"}]"#))
        let raw = try #require(await socket.reader.rawNext())
        let batch = try #require(try JSONSerialization.jsonObject(with: Data(raw)) as? [[String: Any]])
        #expect(Set(batch.compactMap { $0["id"] as? Int }) == [4, 5])
        // A garbled Content-Length closes the connection after an error.
        try socket.send(Array("Content-Length: twelve\r\n\r\n".utf8))
        let garbled = try #require(await socket.reader.next())
        #expect(garbled["error"] != nil)
        #expect(await socket.reader.waitForEOF())
        // A client that dies mid-frame does not disturb the daemon.
        let quitter = try RawSocket(sandbox.socketPath)
        try quitter.send(Array("Content-Length: 100\r\n\r\n{\"jsonrpc\"".utf8))
        _ = consume quitter
        #expect(try await RawSocket(sandbox.socketPath).request(1, "whoami")?["result"] != nil)
        #expect(daemon.child.poll() == nil)
    }
}
