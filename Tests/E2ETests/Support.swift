import Foundation
// The shared harness (Child, ForeignProcess, Executables, offPool, eventually, TestFailure …).
@_exported import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// End-to-end support: the built executables (mesad, mesa, mesa-client) run as separate
// processes in a throw-away $HOME, with hard time limits. Everything a test starts is
// stopped by its pid (never by name) and every FUSE mount under the home is lazily
// unmounted before the home is removed.

/// True when real mounts can be made here (CI runs as root with /dev/fuse).
let canMount = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/fuse")
    && FileManager.default.isExecutableFile(atPath: "/bin/fusermount3")

// MARK: - Processes

/// A finished command.
struct Output: Sendable, CustomStringConvertible {
    let command: String
    let code: Int32
    let stdout: String
    let stderr: String

    var description: String { "`\(command)` exited \(code)\nstdout: \(stdout.suffix(2000))\nstderr: \(stderr.suffix(2000))" }

    /// stdout parsed as a JSON object.
    var object: [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]) ?? [:] }
}

// MARK: - A throw-away home

/// `$HOME` and `$MESA_RUNTIME_DIR` of one test, with the environment every child gets
/// (nothing of the runner's XDG or MESA variables leaks in). `close()` stops every
/// daemon it saw by pid, unmounts everything below the home, and removes it.
final class Home: @unchecked Sendable {
    let root: String
    private let lock = NSLock()
    private var daemons: Set<ForeignProcess> = []
    private var children: [Child] = []

    init() throws {
        root = try makeTemporaryDirectory("mesa-e2e")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    }

    var home: String { root }
    var logs: String { root + "/logs" }
    var runtime: String { root + "/run" }
    var data: String { root + "/.local/share/mesa" }
    var mountPoint: String { data + "/mnt" }
    var pidFile: String { runtime + "/mesad.pid" }
    var daemonLog: String { runtime + "/mesad.log" }
    /// The end of mesad's log, for failure messages.
    var logTail: String { String((read(daemonLog) ?? "").suffix(3000)) }
    func repo(_ name: String, org: String = "local") -> String { "\(mountPoint)/\(org)/\(name)" }

    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "HOME": home,
            "MESA_RUNTIME_DIR": runtime,
            "PATH": "\(Executables.directory ?? "/nonexistent"):/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "E2E", "GIT_AUTHOR_EMAIL": "e2e@example.com",
            "GIT_COMMITTER_NAME": "E2E", "GIT_COMMITTER_EMAIL": "e2e@example.com",
        ]
        for (key, value) in extra { environment[key] = value }
        return environment
    }

    /// Every mount point at or below the home, deepest first.
    var mounts: [String] {
        let table = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { return nil }
            let path = String(fields[1]).replacingOccurrences(of: "\\040", with: " ")
            return path == root || path.hasPrefix(root + "/") ? path : nil
        }.sorted { $0.count > $1.count }
    }

    func isMounted(_ path: String) -> Bool { mounts.contains(path) }

    // Processes

    /// Starts a command (found next to the tests when it is one of ours) without waiting.
    func spawn(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:]) throws -> Child {
        var argv = arguments
        if ["mesad", "mesa", "mesa-client", "bench-populate"].contains(argv[0]) { argv[0] = try Executables.path(argv[0]) }
        let child = try Child(argv[0], Array(argv.dropFirst()), environment: environment(extra), logs: logs, workingDirectory: directory)
        lock.withLock { children.append(child) }
        return child
    }

    /// Runs a command to completion; on timeout its process group is killed and this throws.
    func runBlocking(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:],
                     timeout: Duration = .seconds(60)) throws -> Output {
        let child = try spawn(arguments, in: directory, environment: extra)
        guard let code = child.exitCode(timeout: timeout) else {
            child.killGroup()
            throw TestFailure("`\(child.command)` did not finish within \(timeout); stderr: \(child.stderr.suffix(2000))")
        }
        noteDaemon()
        return Output(command: child.command, code: code, stdout: child.stdout, stderr: child.stderr)
    }

    func run(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:],
             timeout: Duration = .seconds(60)) async throws -> Output {
        try await offPool { try self.runBlocking(arguments, in: directory, environment: extra, timeout: timeout) }
    }

    /// Runs a command that must succeed; returns its stdout.
    @discardableResult
    func ok(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:],
            timeout: Duration = .seconds(60)) async throws -> String {
        let output = try await run(arguments, in: directory, environment: extra, timeout: timeout)
        guard output.code == 0 else { throw TestFailure(output.description) }
        return output.stdout
    }

    /// `sh -c script` that must succeed.
    @discardableResult
    func sh(_ script: String, in directory: String? = nil, timeout: Duration = .seconds(120)) async throws -> String {
        try await ok(["/bin/sh", "-c", script], in: directory, timeout: timeout)
    }

    /// `mesa-client --json call <method> <params>`: the result object, or a thrown failure.
    func call(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        let text = String(decoding: try JSONSerialization.data(withJSONObject: params), as: UTF8.self)
        let output = try await run(["mesa-client", "call", "--no-start", method, text])
        guard output.code == 0 else { throw TestFailure(output.description) }
        return output.object
    }

    // Daemons

    /// The daemon the pid file names, remembered for cleanup.
    @discardableResult
    func noteDaemon() -> ForeignProcess? {
        guard let daemon = ForeignProcess(pidFile: pidFile), daemon.isMesad else { return nil }
        lock.withLock { _ = daemons.insert(daemon) }
        return daemon
    }

    /// The running daemon (from the pid file), or a failure.
    func daemon() throws -> ForeignProcess {
        guard let daemon = noteDaemon(), daemon.isAlive else { throw TestFailure("no mesad runs for \(root)") }
        return daemon
    }

    /// `mesad -d` with extra arguments; returns once it answers (mesad's own promise).
    @discardableResult
    func startDaemon(_ arguments: [String] = [], environment extra: [String: String] = [:]) async throws -> ForeignProcess {
        try await ok(["mesad", "-d"] + arguments, environment: extra, timeout: .seconds(150))
        return try daemon()
    }

    /// Graceful stop through SIGTERM by pid; true when it exited without SIGKILL.
    @discardableResult
    func stopDaemon() async throws -> Bool {
        guard let daemon = noteDaemon() else { return true }
        return try await offPool { daemon.stop(timeout: .seconds(60)) }
    }

    /// Stops everything, unmounts everything below the home, removes it. Never throws.
    func close() {
        let (known, spawned) = lock.withLock { (daemons, children) }
        for child in spawned { child.killGroup() }
        var all = known
        if let current = noteDaemon() { all.insert(current) }
        for daemon in all { daemon.stop(timeout: .seconds(20)) }
        for path in mounts {
            _ = try? Child("/bin/fusermount3", ["-u", "-z", path], environment: [:], logs: logs).wait(timeout: .seconds(20))
        }
        for path in mounts {
            _ = try? Child("/bin/umount", ["-l", path], environment: [:], logs: logs).wait(timeout: .seconds(20))
        }
        if ProcessInfo.processInfo.environment["MESA_E2E_KEEP"] != nil {
            FileHandle.standardError.write(Data("E2E: kept \(root) (MESA_E2E_KEEP)\n".utf8))
        } else if mounts.isEmpty {
            try? FileManager.default.removeItem(atPath: root)
        } else {
            FileHandle.standardError.write(Data("E2E: leaving \(root) in place, still mounted: \(mounts)\n".utf8))
        }
    }
}

extension NSLock {
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

// MARK: - Files and trees

/// What a path holds, as the store versions it.
enum Entry: Equatable, CustomStringConvertible {
    case file(String, executable: Bool = false)
    case symlink(String)

    var description: String {
        switch self {
        case .file(let text, let executable): "\(executable ? "x" : "f")(\(text.debugDescription.prefix(60)))"
        case .symlink(let target): "l(\(target))"
        }
    }
}

/// Every file and symlink below `root` (directories only through their contents),
/// skipping `.git` directories. Reads through the filesystem, so for a mount it is what
/// a user sees.
func walk(_ root: String) throws -> [String: Entry] {
    var result: [String: Entry] = [:]
    func visit(_ relative: String) throws {
        let directory = relative.isEmpty ? root : root + "/" + relative
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            let path = relative.isEmpty ? name : relative + "/" + name
            let full = root + "/" + path
            var info = stat()
            guard lstat(full, &info) == 0 else { throw TestFailure("lstat \(full): \(String(cString: strerror(errno)))") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: if name != ".git" { try visit(path) }
            case S_IFLNK: result[path] = .symlink(try FileManager.default.destinationOfSymbolicLink(atPath: full))
            default:
                let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: full)), as: UTF8.self)
                result[path] = .file(text, executable: info.st_mode & 0o100 != 0)
            }
        }
    }
    try visit("")
    return result
}

/// The tree of `rev` in a repo's bare git repository in the store, read with git itself.
func storeTree(_ home: Home, repo: String, rev: String) async throws -> [String: Entry] {
    let git = try await bareRepo(home, repo: repo)
    let listing = try await home.ok(["/usr/bin/git", "--git-dir", git, "ls-tree", "-r", "-z", rev])
    var result: [String: Entry] = [:]
    for line in listing.split(separator: "\0") {
        let parts = line.split(separator: "\t", maxSplits: 1)
        let meta = parts[0].split(separator: " ")
        let blob = try await home.ok(["/usr/bin/git", "--git-dir", git, "cat-file", "blob", String(meta[2])])
        switch meta[0] {
        case "120000": result[String(parts[1])] = .symlink(blob)
        case "100755": result[String(parts[1])] = .file(blob, executable: true)
        default: result[String(parts[1])] = .file(blob)
        }
    }
    return result
}

/// `<store>/repos/<repo id>.git`.
func bareRepo(_ home: Home, repo: String) async throws -> String {
    let info = try await home.call("getRepo", ["repo": repo])
    guard let id = (info["repo"] as? [String: Any])?["id"] as? String else { throw TestFailure("getRepo \(repo): \(info)") }
    return "\(home.data)/store/repos/\(id).git"
}

func read(_ path: String) -> String? {
    (try? Data(contentsOf: URL(fileURLWithPath: path))).map { String(decoding: $0, as: UTF8.self) }
}

func write(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// errno of a syscall-like closure that returns -1 on failure, or 0 when it succeeded.
func errnoOf(_ body: () -> Int32) -> Int32 {
    errno = 0
    return body() < 0 ? errno : 0
}

/// A mount whose daemon died answers ENOTCONN ("Transport endpoint is not connected").
/// statfs always reaches the FUSE server; stat may be answered from the kernel's cache.
func isStale(_ path: String) -> Bool {
    var info = statvfs()
    return statvfs(path, &info) != 0 && (errno == ENOTCONN || errno == ECONNABORTED)
}
