import Foundation
import Infra
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process started by a test, in its own process group. stdout and stderr go to
/// files in `logs` (no pipe can fill up and block the child) unless `pipeStdio` asks
/// for stdin/stdout pipes (for `--stdio`). Deinit SIGKILLs and reaps it if it still
/// runs; tests also call `kill()` in a `defer`.
public final class Child: Sendable {
    public let process: ChildProcess
    public let command: String
    public let stdoutPath: String
    public let stderrPath: String
    /// With `pipeStdio`: our ends of the child's stdin and stdout.
    private let pipes: Mutex<(stdin: Int32, stdout: Int32)>

    /// `workingDirectory`: the child starts there (through /bin/sh: glibc's
    /// posix_spawn_file_actions_addchdir_np is not visible to Swift).
    public init(_ executable: String, _ arguments: [String], environment: [String: String], logs: String,
                workingDirectory: String? = nil, pipeStdio: Bool = false) throws {
        let argv = [executable] + arguments
        command = argv.joined(separator: " ")
        let tag = UUID().uuidString.prefix(8)
        let base = (executable as NSString).lastPathComponent
        stdoutPath = "\(logs)/\(base)-\(tag).out"
        stderrPath = "\(logs)/\(base)-\(tag).err"
        let launched = workingDirectory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + argv } ?? argv
        var ours: (stdin: Int32, stdout: Int32) = (-1, -1)
        var theirs: [Int32] = []
        defer { theirs.forEach { _ = close($0) } }
        var stdin = ChildProcess.Stream.null
        var stdout = ChildProcess.Stream.file(stdoutPath)
        if pipeStdio {
            let input = try ChildProcess.pipe()
            let output = try ChildProcess.pipe()
            (ours, theirs) = ((input.write, output.read), [input.read, output.write])
            (stdin, stdout) = (.descriptor(input.read), .descriptor(output.write))
        }
        do {
            process = try ChildProcess(launched[0], Array(launched.dropFirst()), environment: environment, stdin: stdin,
                                       stdout: stdout, stderr: .file(stderrPath), group: .newProcessGroup)
        } catch {
            if ours.stdin >= 0 { close(ours.stdin); close(ours.stdout) }
            throw TestFailure("cannot spawn \(executable): \(error)")
        }
        pipes = Mutex(ours)
    }

    deinit {
        kill()
        let (stdin, stdout) = pipes.withLock { $0 }
        if stdin >= 0 { close(stdin) }
        if stdout >= 0 { close(stdout) }
    }

    public var pid: pid_t { process.pid }
    public var stdinFD: Int32 { pipes.withLock { $0.stdin } }
    public var stdoutFD: Int32 { pipes.withLock { $0.stdout } }

    /// The raw wait status if the child has exited (reaps it), else nil.
    public func poll() -> Int32? { process.poll() }

    /// Waits for exit: the raw status, nil on timeout (the child is left running: `kill()` it).
    public func wait(timeout: Duration = .seconds(60)) -> Int32? { process.wait(timeout: timeout) }

    /// The exit code (-signal for a death by signal), nil on timeout.
    public func exitCode(timeout: Duration = .seconds(60)) -> Int32? { wait(timeout: timeout).map(Self.exitCode) }

    public static func exitCode(_ raw: Int32) -> Int32 { ChildProcess.exitCode(raw) }

    public func waitExitCodeBlocking(timeout: Duration = .seconds(60)) throws -> Int32 {
        guard let code = exitCode(timeout: timeout) else {
            throw TestFailure("`\(command)` (pid \(pid)) did not exit within \(timeout); stderr: \(stderr.suffix(2000))")
        }
        return code
    }

    public func waitExitCode(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await offPool { try self.waitExitCodeBlocking(timeout: timeout) }
    }

    public func signal(_ number: Int32) { process.signal(number) }

    /// SIGKILL and reap, unless it already exited. Safe to call repeatedly.
    public func kill() { process.kill() }

    /// SIGKILL to the whole process group (the child and what it started in that group).
    public func killGroup() {
        process.signalGroup(SIGKILL)
        process.kill()
    }

    public func closeStdin() {
        let descriptor = pipes.withLock { pipes in
            defer { pipes.stdin = -1 }
            return pipes.stdin
        }
        if descriptor >= 0 { close(descriptor) }
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// A process whose pid we know but which is not our child (`mesad -d` detaches into
/// its own session): it can only be signalled and watched through /proc.
public struct ForeignProcess: Sendable, Hashable {
    public let pid: pid_t

    public init(pid: pid_t) { self.pid = pid }

    /// The process a pid file names, if the file holds a pid.
    public init?(pidFile: String) {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        self.pid = pid
    }

    /// Running and not a zombie.
    public var isAlive: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// Its command line is mesad's: a stale pid file's number may belong to anything
    /// now, which must never be killed.
    public var isMesad: Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return (String(decoding: data.split(separator: 0).first ?? Data(), as: UTF8.self) as NSString).lastPathComponent == "mesad"
    }

    /// Peak resident set size (VmHWM) in KiB.
    public var peakRSSKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }

    /// SIGTERM, then SIGKILL after `timeout`. True if it went away after SIGTERM alone.
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) -> Bool {
        guard isMesad, isAlive else { return true }
        _ = Glibc.kill(pid, SIGTERM)
        if eventuallyBlocking(timeout: timeout, { !isAlive }) { return true }
        kill()
        return false
    }

    /// SIGKILL (a crash), then waits for it to be gone.
    public func kill() {
        guard isMesad, isAlive else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = eventuallyBlocking(timeout: .seconds(10)) { !isAlive }
    }
}

/// Writes every byte to a socket (without SIGPIPE) or a pipe, retrying partial writes.
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if written < 0 && errno == ENOTSOCK {
            let plain = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard plain > 0 else { throw TestFailure("write failed: \(String(cString: strerror(errno)))") }
            offset += plain
            continue
        }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { throw TestFailure("write failed: \(String(cString: strerror(errno)))") }
        offset += written
    }
}
