import Foundation
import Infra
import Testing

@Suite struct ChildProcessTests {
    @Test func exitCodesAndStderrComeBack() throws {
        let (readEnd, writeEnd) = try ChildProcess.pipe()
        defer { close(readEnd) }
        let child: ChildProcess
        do {
            defer { close(writeEnd) }
            child = try ChildProcess("/bin/sh", ["-c", "echo \"$GREETING\" >&2; exit 3"], environment: ["GREETING": "hello from sh"],
                                     stderr: .descriptor(writeEnd))
        }
        defer { child.kill() }
        #expect(String(decoding: ChildProcess.readAll(readEnd), as: UTF8.self) == "hello from sh\n")
        let status = try #require(child.wait(timeout: .seconds(30)))
        #expect(ChildProcess.exitCode(status) == 3)
        #expect(child.poll() == status, "the status is kept once reaped")
    }

    @Test func outputGoesToFiles() throws {
        let directory = NSTemporaryDirectory() + "child-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try ChildProcess("/bin/sh", ["-c", "echo out; echo err >&2"], stdout: .file(directory + "/out"),
                                     stderr: .file(directory + "/err"))
        defer { child.kill() }
        #expect(child.wait(timeout: .seconds(30)) == 0)
        #expect(try String(contentsOfFile: directory + "/out", encoding: .utf8) == "out\n")
        #expect(try String(contentsOfFile: directory + "/err", encoding: .utf8) == "err\n")
    }

    @Test func aMissingExecutableIsAClearError() {
        #expect {
            _ = try ChildProcess("/nonexistent/mesad", [])
        } throws: { error in
            "\(error)".contains("cannot run /nonexistent/mesad")
        }
    }

    @Test func waitTimesOutAndKillStopsAndReaps() throws {
        let child = try ChildProcess("/bin/sleep", ["30"], group: .newProcessGroup)
        defer { child.kill() }
        let started = ContinuousClock.now
        #expect(child.wait(timeout: .milliseconds(100)) == nil)
        child.kill()
        let status = try #require(child.poll())
        #expect(ChildProcess.exitCode(status) == -SIGKILL)
        #expect(started.duration(to: .now) < .seconds(10))
        #expect(kill(child.pid, 0) != 0, "reaped: the pid is gone")
    }

    @Test func waitUntilReadyTellsReadyExitedAndTimedOut() throws {
        let marker = NSTemporaryDirectory() + "ready-\(UUID().uuidString.prefix(8))"
        defer { unlink(marker) }
        let server = try ChildProcess("/bin/sh", ["-c", "sleep 0.2; touch \"$0\"; sleep 30", marker])
        defer { server.kill() }
        #expect(server.waitUntilReady(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: marker) } == .ready)

        let failing = try ChildProcess("/bin/sh", ["-c", "exit 7"])
        defer { failing.kill() }
        guard case .exited(let status) = failing.waitUntilReady(timeout: .seconds(20), { false }) else {
            Issue.record("a child that exits is reported as exited")
            return
        }
        #expect(ChildProcess.exitCode(status) == 7)

        let silent = try ChildProcess("/bin/sleep", ["30"])
        defer { silent.kill() }
        #expect(silent.waitUntilReady(timeout: .milliseconds(100)) { false } == .timedOut)
        #expect(silent.poll() == nil, "left running after a timeout")
    }
}

extension ChildProcessTests {
    /// Threads libfuse starts block every signal, and threads they start inherit the
    /// mask: a shell spawned from one must still see SIGCHLD, or its `wait` never returns.
    @Test func aCallersBlockedSignalsAreNotInherited() throws {
        var blocked = sigset_t()
        var previous = sigset_t()
        sigfillset(&blocked)
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        let child: ChildProcess
        do {
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            child = try ChildProcess("/bin/sh", ["-c", "sleep 0.1 & wait; exit 5"])
        }
        defer { child.kill() }
        let status = try #require(child.wait(timeout: .seconds(20)), "the shell's wait hung")
        #expect(ChildProcess.exitCode(status) == 5)
    }
}
