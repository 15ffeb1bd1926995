import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// End-to-end support: the built executables (mesad, mesa, mesa-client) run as separate
// processes in a throw-away $HOME, with hard time limits. Everything a test starts is
// stopped by its pid (never by name) and every FUSE mount under the home is lazily
// unmounted before the home is removed.

struct E2EFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// True when real mounts can be made here (CI runs as root with /dev/fuse).
let canMount = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/fuse")
    && FileManager.default.isExecutableFile(atPath: "/bin/fusermount3")

// MARK: - Executables

enum Bin {
    /// The directory of the test bundle, where `swift build --build-tests` also puts
    /// mesad, mesa and mesa-client; `$MESA_TEST_BIN_DIR` overrides it.
    static let directory: String? = {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["MESA_TEST_BIN_DIR"] { candidates.append(override) }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().path)
        candidates.append((CommandLine.arguments[0] as NSString).deletingLastPathComponent)
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let directory = (own as NSString).deletingLastPathComponent
            candidates += [directory, (directory as NSString).deletingLastPathComponent]
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/mesad") }
    }()

    static func path(_ name: String) throws -> String {
        guard let directory, FileManager.default.isExecutableFile(atPath: directory + "/" + name) else {
            throw E2EFailure("\(name) is not built next to the test bundle (\(CommandLine.arguments[0])); run `swift build --build-tests` or set MESA_TEST_BIN_DIR")
        }
        return directory + "/" + name
    }
}

// MARK: - Blocking helpers (run off Swift's cooperative pool)

/// Runs blocking work on a dispatch thread and returns its value. Assertions stay in the
/// test's task: nothing inside calls #expect.
func off<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// Polls every 20 ms until `condition` holds or `timeout` passes.
func waitUntil(_ timeout: Duration, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

func eventually(_ timeout: Duration = .seconds(20), _ condition: @escaping @Sendable () -> Bool) async -> Bool {
    (try? await off { waitUntil(timeout, condition) }) ?? false
}

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

private let posixSpawnSetPGroup: Int16 = 0x02

/// A child process in its own process group, stdout/stderr in files, stdin /dev/null.
/// `stop()`/`kill()` act on its pid only; `killGroup()` on its process group (only while
/// it is unreaped, so the group id cannot have been reused).
final class Child: @unchecked Sendable {
    let pid: pid_t
    let command: String
    let stdoutPath: String
    let stderrPath: String
    private let lock = NSLock()
    private var status: Int32?

    init(_ argv: [String], environment: [String: String], directory: String?, logs: String) throws {
        command = argv.joined(separator: " ")
        let tag = String(UUID().uuidString.prefix(8))
        let base = (argv[0] as NSString).lastPathComponent
        stdoutPath = "\(logs)/\(base)-\(tag).out"
        stderrPath = "\(logs)/\(base)-\(tag).err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, posixSpawnSetPGroup)
        posix_spawnattr_setpgroup(&attributes, 0)
        // glibc's posix_spawn_file_actions_addchdir_np is not visible to Swift: a shell
        // changes directory, then execs the command.
        let launched = directory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + argv } ?? argv
        let cArguments = launched.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        var spawned: pid_t = 0
        let result = posix_spawn(&spawned, launched[0], &actions, &attributes, cArguments, cEnvironment)
        guard result == 0 else { throw E2EFailure("cannot spawn \(argv[0]): \(String(cString: strerror(result)))") }
        pid = spawned
    }

    deinit { kill() }

    /// The raw wait status once exited (reaps), else nil.
    func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let status { return status }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
        return status
    }

    /// Exit code, or -signal; nil if still running after `timeout`.
    func wait(_ timeout: Duration) -> Int32? {
        var raw: Int32?
        _ = waitUntil(timeout) {
            raw = poll()
            return raw != nil
        }
        return raw.map(Self.decode)
    }

    static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : -signal
    }

    func signal(_ number: Int32) {
        if poll() == nil { _ = Glibc.kill(pid, number) }
    }

    /// SIGKILL to the whole process group (the child and what it started in that group).
    func killGroup() {
        if poll() == nil { _ = Glibc.kill(-pid, SIGKILL) }
        _ = wait(.seconds(10))
    }

    /// SIGKILL and reap, unless already exited.
    func kill() {
        if poll() == nil { _ = Glibc.kill(pid, SIGKILL) }
        _ = wait(.seconds(10))
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// A process we know by pid but did not spawn (`mesad -d` detaches into its own session).
struct DaemonPID: Sendable, Hashable {
    let pid: pid_t

    /// Running and not a zombie.
    var isAlive: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// Its command line is mesad's: a stale pid file's number may belong to anything now.
    var isMesad: Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        return (String(decoding: data.split(separator: 0).first ?? Data(), as: UTF8.self) as NSString).lastPathComponent == "mesad"
    }

    /// Peak resident set size (VmHWM) in KiB.
    var peakRSSKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }

    /// SIGTERM, then SIGKILL after `timeout`. True if it went away after SIGTERM alone.
    @discardableResult
    func stop(timeout: Duration = .seconds(30)) -> Bool {
        guard isMesad, isAlive else { return true }
        _ = Glibc.kill(pid, SIGTERM)
        if waitUntil(timeout, { !isAlive }) { return true }
        if isMesad { _ = Glibc.kill(pid, SIGKILL) }
        _ = waitUntil(.seconds(10)) { !isAlive }
        return false
    }

    func kill9() {
        guard isMesad, isAlive else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = waitUntil(.seconds(10)) { !isAlive }
    }
}

// MARK: - A throw-away home

/// `$HOME` and `$MESA_RUNTIME_DIR` of one test, with the environment every child gets
/// (nothing of the runner's XDG or MESA variables leaks in). `close()` stops every
/// daemon it saw by pid, unmounts everything below the home, and removes it.
final class Home: @unchecked Sendable {
    let root: String
    private let lock = NSLock()
    private var daemons: Set<DaemonPID> = []
    private var children: [Child] = []

    init() throws {
        var template = Array("/tmp/mesa-e2e.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw E2EFailure("mkdtemp: \(String(cString: strerror(errno)))") }
        root = String(cString: made)
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
            "PATH": "\(Bin.directory ?? "/nonexistent"):/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
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
        if ["mesad", "mesa", "mesa-client", "bench-populate"].contains(argv[0]) { argv[0] = try Bin.path(argv[0]) }
        let child = try Child(argv, environment: environment(extra), directory: directory, logs: logs)
        lock.withLock { children.append(child) }
        return child
    }

    /// Runs a command to completion; on timeout its process group is killed and this throws.
    func runBlocking(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:],
                     timeout: Duration = .seconds(60)) throws -> Output {
        let child = try spawn(arguments, in: directory, environment: extra)
        guard let code = child.wait(timeout) else {
            child.killGroup()
            throw E2EFailure("`\(child.command)` did not finish within \(timeout); stderr: \(child.stderr.suffix(2000))")
        }
        noteDaemon()
        return Output(command: child.command, code: code, stdout: child.stdout, stderr: child.stderr)
    }

    func run(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:],
             timeout: Duration = .seconds(60)) async throws -> Output {
        try await off { try self.runBlocking(arguments, in: directory, environment: extra, timeout: timeout) }
    }

    /// Runs a command that must succeed; returns its stdout.
    @discardableResult
    func ok(_ arguments: [String], in directory: String? = nil, environment extra: [String: String] = [:],
            timeout: Duration = .seconds(60)) async throws -> String {
        let output = try await run(arguments, in: directory, environment: extra, timeout: timeout)
        guard output.code == 0 else { throw E2EFailure(output.description) }
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
        guard output.code == 0 else { throw E2EFailure(output.description) }
        return output.object
    }

    // Daemons

    /// The daemon the pid file names, remembered for cleanup.
    @discardableResult
    func noteDaemon() -> DaemonPID? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        let daemon = DaemonPID(pid: pid)
        guard daemon.isMesad else { return nil }
        lock.withLock { _ = daemons.insert(daemon) }
        return daemon
    }

    /// The running daemon (from the pid file), or a failure.
    func daemon() throws -> DaemonPID {
        guard let daemon = noteDaemon(), daemon.isAlive else { throw E2EFailure("no mesad runs for \(root)") }
        return daemon
    }

    /// `mesad -d` with extra arguments; returns once it answers (mesad's own promise).
    @discardableResult
    func startDaemon(_ arguments: [String] = [], environment extra: [String: String] = [:]) async throws -> DaemonPID {
        try await ok(["mesad", "-d"] + arguments, environment: extra, timeout: .seconds(150))
        return try daemon()
    }

    /// Graceful stop through SIGTERM by pid; true when it exited without SIGKILL.
    @discardableResult
    func stopDaemon() async throws -> Bool {
        guard let daemon = noteDaemon() else { return true }
        return try await off { daemon.stop(timeout: .seconds(60)) }
    }

    /// Stops everything, unmounts everything below the home, removes it. Never throws.
    func close() {
        let (known, spawned) = lock.withLock { (daemons, children) }
        for child in spawned { child.killGroup() }
        var all = known
        if let current = noteDaemon() { all.insert(current) }
        for daemon in all { daemon.stop(timeout: .seconds(20)) }
        for path in mounts {
            _ = try? Child(["/bin/fusermount3", "-u", "-z", path], environment: [:], directory: nil, logs: logs).wait(.seconds(20))
        }
        for path in mounts {
            _ = try? Child(["/bin/umount", "-l", path], environment: [:], directory: nil, logs: logs).wait(.seconds(20))
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
            guard lstat(full, &info) == 0 else { throw E2EFailure("lstat \(full): \(String(cString: strerror(errno)))") }
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
    guard let id = (info["repo"] as? [String: Any])?["id"] as? String else { throw E2EFailure("getRepo \(repo): \(info)") }
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
