import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process started with posix_spawn, known and stopped by its pid only. One
/// implementation for mesad's start (`mesad -d`), the clients' auto-start and the tests.
///
/// posix_spawn and waitpid rather than Foundation's Process: its waitUntilExit never
/// returned on Linux (the child stayed a zombie), so a client that started mesad hung.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        case null
        /// A descriptor of ours (dup'ed into the child; the caller still owns it).
        case descriptor(Int32)
        /// A file, created 0600 if missing; truncated unless `append`.
        case file(String, append: Bool = false)
    }

    public enum Group: Sendable {
        /// The caller's session and process group.
        case inherit
        /// Its own process group, so a test can kill it and what it started together.
        case newProcessGroup
        /// Its own session (a daemon: no controlling terminal, no caller's signals).
        case newSession
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let pid: pid_t
    /// The raw wait status, once reaped.
    private let status = Mutex<Int32?>(nil)

    /// Starts `executable` (a path) with `arguments`; `environment` nil = ours. `argv0` is
    /// the child's argv[0] (default `executable`): a multi-call binary runs the command it
    /// names.
    /// `closeOtherDescriptors` marks every descriptor above 2 close-on-exec first, so a
    /// long-lived child holds none of ours (a caller waiting for EOF on a pipe that is
    /// our stderr would otherwise wait for the child's whole life).
    public init(_ executable: String, _ arguments: [String], argv0: String? = nil, environment: [String: String]? = nil,
                stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null, group: Group = .inherit,
                closeOtherDescriptors: Bool = false) throws(Failure) {
        if closeOtherDescriptors { Self.markDescriptorsCloseOnExec() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .descriptor(let descriptor): posix_spawn_file_actions_adddup2(&actions, descriptor, target)
            case .file(let path, let append):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o600)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A clean signal state: the calling thread may block signals (threads libfuse
        // starts block them all, and threads they start inherit that), and a shell
        // whose SIGCHLD stays blocked waits forever in `wait`.
        var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        var none = sigset_t()
        var all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        switch group {
        case .inherit: break
        case .newProcessGroup:
            flags |= Int16(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        case .newSession: flags |= Self.spawnSetSID
        }
        posix_spawnattr_setflags(&attributes, flags)
        let argv = ([argv0 ?? executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer {
            argv.forEach { free($0) }
            envp?.forEach { free($0) }
        }
        var spawned: pid_t = 0
        let result = Self.spawnLock.withLock { _ in
            envp.map { posix_spawn(&spawned, executable, &actions, &attributes, argv, $0) }
                ?? posix_spawn(&spawned, executable, &actions, &attributes, argv, environ)
        }
        guard result == 0 else { throw Failure(description: "cannot run \(executable): \(String(cString: strerror(result)))") }
        pid = spawned
    }

    /// glibc's POSIX_SPAWN_SETSID; not exported to Swift.
    private static let spawnSetSID: Int16 = 0x80

    /// The raw wait status if the child has exited (reaping it), else nil.
    public func poll() -> Int32? {
        status.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
            return status
        }
    }

    /// Waits for the exit and returns the raw status; nil when `timeout` passed first
    /// (the child is left running).
    public func wait(timeout: Duration? = nil) -> Int32? {
        guard let timeout else {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 {
                guard errno == EINTR else { return poll() }
            }
            status.withLock { $0 = raw }
            return raw
        }
        var exited: Int32?
        _ = Self.poll(until: .now + timeout) {
            exited = poll()
            return exited != nil
        }
        return exited
    }

    public enum Readiness: Sendable, Equatable {
        case ready
        /// Exited first, with this raw status.
        case exited(Int32)
        case timedOut
    }

    /// Polls `probe` until it holds, the child exits or `timeout` passes (the child is
    /// left running then): how a caller sees a started server come up.
    public func waitUntilReady(timeout: Duration, _ probe: () -> Bool) -> Readiness {
        var exited: Int32?
        // Every 2 ms: a probe before the server listens is a refused connect (microseconds),
        // and the start of a daemon is on the path of every first command (time to first read).
        let ready = Self.poll(until: .now + timeout, every: 2_000) {
            if let status = poll() {
                exited = status
                return true
            }
            return probe()
        }
        if let exited { return .exited(exited) }
        return ready ? .ready : .timedOut
    }

    /// Sends `number` unless the child was reaped (its pid may belong to another process by then).
    public func signal(_ number: Int32) {
        if poll() == nil { _ = Glibc.kill(pid, number) }
    }

    /// SIGKILL to the child's process group (with `.newProcessGroup`: it and what it started).
    public func signalGroup(_ number: Int32) {
        if poll() == nil { _ = Glibc.kill(-pid, number) }
    }

    /// SIGKILL and reap, unless it already exited. Safe to call repeatedly.
    public func kill(timeout: Duration = .seconds(10)) {
        signal(SIGKILL)
        _ = wait(timeout: timeout)
    }

    /// The exit code of a raw wait status, or -signal for a death by signal.
    public static func exitCode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : -signal
    }

    /// Calls `condition` every `microseconds` (10 ms) until it holds (true) or `deadline`
    /// passes (its last answer).
    public static func poll(until deadline: ContinuousClock.Instant, every microseconds: UInt32 = 10_000,
                            _ condition: () -> Bool) -> Bool {
        while ContinuousClock.now < deadline {
            if condition() { return true }
            usleep(microseconds)
        }
        return condition()
    }

    /// A pipe whose ends are close-on-exec before any child of ours can be spawned, so
    /// no other child inherits them (pipe2 is not visible to Swift: pipe, then fcntl,
    /// under the lock every spawn takes).
    public static func pipe() throws(Failure) -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [-1, -1]
        let made = spawnLock.withLock { _ in
            guard Glibc.pipe(&descriptors) == 0 else { return false }
            for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
            return true
        }
        guard made else { throw Failure(description: "pipe failed: \(String(cString: strerror(errno)))") }
        return (descriptors[0], descriptors[1])
    }

    private static let spawnLock = Mutex(())

    /// Everything readable from `descriptor` until EOF.
    public static func readAll(_ descriptor: Int32) -> [UInt8] {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return output }
            output += buffer[0..<count]
        }
    }

    private static func markDescriptorsCloseOnExec() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for entry in entries {
            guard let descriptor = Int32(entry), descriptor > 2 else { continue }
            let flags = fcntl(descriptor, F_GETFD)
            if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
