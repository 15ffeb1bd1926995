import Client
import Foundation
import Logging
import MesaAPI
@testable import MesaDaemon
import MesaProtocol
import Model
import RPC
import Store
import Synchronization
// The shared harness (Child, Executables, offPool, eventually, TestFailure …), for every file here.
@_exported import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Shared helpers: temporary homes, child processes killed by pid on every path, raw
// LSP frames over sockets and pipes, and an in-process daemon reached over a socketpair.

let quietLogger = Logger(label: "daemon-tests") { _ in SwiftLogNoOpLogHandler() }

/// The store logs through swift-log's default handler (stdout); silence it once.
private let loggingSilenced: Void = LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }

// MARK: - Temporary home

/// A fresh `$HOME` with its own runtime directory, config and data homes. The path is
/// short on purpose: a Unix socket path holds at most 107 bytes.
final class Sandbox: @unchecked Sendable {
    let root: String

    init() throws {
        _ = loggingSilenced
        root = try makeTemporaryDirectory("mesad-test")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var home: String { root }
    var runtimeDirectory: String { root + "/run" }
    var socketPath: String { runtimeDirectory + "/mesad.sock" }
    var pidFile: String { runtimeDirectory + "/mesad.pid" }
    /// Where `mesad --mount` puts the daemon tree.
    var treeMountPoint: String { home + "/.local/share/mesa/mnt" }

    /// The environment a daemon or client of this sandbox runs with: nothing of the
    /// caller's XDG or MESA variables leaks in.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "HOME": home,
            "MESA_RUNTIME_DIR": runtimeDirectory,
            "XDG_CONFIG_HOME": home + "/.config",
            "XDG_DATA_HOME": home + "/.local/share",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "LANG": "C.UTF-8",
        ]
        for (key, value) in extra { environment[key] = value }
        return environment
    }

    var paths: Paths { Paths(environment: environment()) }

    func write(_ relativePath: String, _ text: String) throws -> String {
        let path = root + "/" + relativePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o7777
}

func fileType(_ path: String) -> mode_t? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return info.st_mode & S_IFMT
}

func exists(_ path: String) -> Bool { fileType(path) != nil }

/// Runs a command to completion with a hard timeout; the child is killed on every path.
struct Run: Sendable {
    let code: Int32
    let stdout: String
    let stderr: String

    /// `executable`: a name built next to the test bundle, or an absolute path.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], sandbox: Sandbox, environment extra: [String: String] = [:],
                    timeout: Duration = .seconds(60)) async throws -> Run {
        let path = executable.hasPrefix("/") ? executable : try Executables.path(executable)
        return try await offPool {
            let child = try Child(path, arguments, environment: sandbox.environment(extra), logs: sandbox.root)
            defer { child.kill() }
            let code = try child.waitExitCodeBlocking(timeout: timeout)
            return Run(code: code, stdout: child.stdout, stderr: child.stderr)
        }
    }

    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
    }
}

/// The daemon named by the sandbox's pid file, if any.
func recordedDaemon(_ sandbox: Sandbox) -> ForeignProcess? { ForeignProcess(pidFile: sandbox.pidFile) }

/// For `defer`: kills a detached daemon (`mesad -d`, a client's autostart) by its pid.
func killRecordedDaemon(_ sandbox: Sandbox) {
    recordedDaemon(sandbox)?.kill()
}

// MARK: - A daemon as a child process

/// `mesad` in socket mode (foreground, so it is our child), ready once it answers.
final class DaemonProcess: @unchecked Sendable {
    let sandbox: Sandbox
    let child: Child

    /// Starts mesad and waits (off the cooperative pool) until it answers.
    static func start(_ sandbox: Sandbox, arguments: [String] = [], environment: [String: String] = [:],
                      timeout: Duration = .seconds(60)) async throws -> DaemonProcess {
        try await offPool { try DaemonProcess(sandbox, arguments: arguments, environment: environment, timeout: timeout) }
    }

    private init(_ sandbox: Sandbox, arguments: [String], environment: [String: String], timeout: Duration) throws {
        self.sandbox = sandbox
        child = try Child(try Executables.path("mesad"), arguments, environment: sandbox.environment(environment),
                          logs: sandbox.root)
        let socket = sandbox.socketPath
        switch child.process.waitUntilReady(timeout: timeout, { Daemonizer.answers(socket) }) {
        case .ready: break
        case .exited(let status):
            throw TestFailure("mesad exited during start-up (code \(Child.exitCode(status))): \(child.stderr)")
        case .timedOut:
            child.kill()
            throw TestFailure("mesad did not answer on \(socket) within \(timeout): \(child.stderr)")
        }
    }

    var pid: pid_t { child.pid }

    /// SIGTERM, then the exit code (SIGKILL after the timeout).
    func stop(timeout: Duration = .seconds(30)) async throws -> Int32 {
        child.signal(SIGTERM)
        defer { child.kill() }
        return try await child.waitExitCode(timeout: timeout)
    }

    func kill() { child.kill() }

    /// mesad with the daemon tree mounted, once `<tree>/<org>/<repo>/<file>` is there
    /// (`file` "": the repo itself), after `create` made it. A failure leaves neither
    /// mesad nor the mount behind; after success that is the caller's `defer`
    /// (`kill()`, `MountedDaemon.lazyUnmount(sandbox.treeMountPoint)`).
    static func startMounted(_ sandbox: Sandbox, environment: [String: String] = [:], showing path: String,
                             create: (MesaClient) async throws -> Void = { _ in }) async throws -> DaemonProcess {
        let daemon = try await start(sandbox, arguments: ["--mount"], environment: environment)
        do {
            let client = try daemon.client()
            defer { client.close() }
            try await create(client)
            let target = sandbox.treeMountPoint + "/" + path
            guard await eventually(timeout: .seconds(60), { FileManager.default.fileExists(atPath: target) }) else {
                throw TestFailure("\(path) did not appear in the tree: \(daemon.child.stderr.suffix(2000))")
            }
            return daemon
        } catch {
            daemon.kill()
            MountedDaemon.lazyUnmount(sandbox.treeMountPoint)
            throw error
        }
    }

    /// A client of the daemon through the library the CLIs use.
    func client() throws -> MesaClient {
        do { return try MesaClient.connect(paths: sandbox.paths, autostart: false) } catch {
            throw TestFailure("cannot connect: \(error)")
        }
    }
}

// MARK: - Raw frames

func frame(_ body: String) -> [UInt8] {
    Array("Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
}

/// Reads LSP frames from a descriptor with a deadline (poll, so it never blocks past it).
final class FrameReader: @unchecked Sendable {
    let fd: Int32
    var buffer: [UInt8] = []
    var sawEOF = false

    init(fd: Int32) { self.fd = fd }

    /// Reads more bytes; false on EOF, timeout or error.
    private func fill(until deadline: ContinuousClock.Instant) -> Bool {
        guard !sawEOF else { return false }
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(min(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000, 60_000))
        let ready = Glibc.poll(&pfd, 1, max(milliseconds, 1))
        if ready < 0 { return errno == EINTR }
        if ready == 0 { return ContinuousClock.now < deadline }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { return true }
        if count <= 0 {
            sawEOF = true
            return false
        }
        buffer += chunk[0..<count]
        return true
    }

    /// The next frame's raw body, or nil on EOF/timeout.
    func rawNext(timeout: Duration = .seconds(30)) async -> [UInt8]? {
        await offPool { self.rawNextBlocking(timeout: timeout) }
    }

    func rawNextBlocking(timeout: Duration = .seconds(30)) -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let (body, consumed) = Self.parse(buffer) {
                buffer.removeFirst(consumed)
                return body
            }
            if !fill(until: deadline) && (sawEOF || ContinuousClock.now >= deadline) { return nil }
        }
    }

    /// The next frame's body parsed as a JSON object, or nil on EOF/timeout.
    func next(timeout: Duration = .seconds(30)) async -> [String: Any]? {
        await rawNext(timeout: timeout).flatMap { (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any] }
    }

    /// Waits for the peer to close: true if EOF came before the deadline.
    func waitForEOF(timeout: Duration = .seconds(30)) async -> Bool {
        await offPool { self.waitForEOFBlocking(timeout: timeout) }
    }

    func waitForEOFBlocking(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !sawEOF && ContinuousClock.now < deadline { _ = fill(until: deadline) }
        return sawEOF
    }

    static func parse(_ bytes: [UInt8]) -> ([UInt8], Int)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return nil }
        var headerEnd: Int?
        for index in 0...(bytes.count - 4) where Array(bytes[index..<index + 4]) == separator {
            headerEnd = index
            break
        }
        guard let headerEnd else { return nil }
        let header = String(decoding: bytes[0..<headerEnd], as: UTF8.self)
        var length: Int?
        for line in header.components(separatedBy: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                length = Int(parts[1].trimmingCharacters(in: .whitespaces))
            }
        }
        guard let length, bytes.count >= headerEnd + 4 + length else { return nil }
        return (Array(bytes[(headerEnd + 4)..<(headerEnd + 4 + length)]), headerEnd + 4 + length)
    }
}


/// A raw client socket to the daemon, for bytes no well-behaved client sends.
final class RawSocket: @unchecked Sendable {
    let fd: Int32
    let reader: FrameReader

    init(_ path: String) throws {
        do { fd = try UnixSocketListener.connect(path: path) } catch { throw TestFailure("connect \(path): \(error)") }
        reader = FrameReader(fd: fd)
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws { try writeAll(fd, bytes) }

    func request(_ id: Int, _ method: String, _ params: String = "{}") async throws -> [String: Any]? {
        try send(frame(#"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#))
        return await reader.next()
    }
}

// MARK: - In-process daemon

/// A Daemon over an embedded store in a temporary home, reached through a real
/// `Connection` over a socketpair: the same bytes as a socket client, no process.
final class InProcessDaemon: @unchecked Sendable {
    let sandbox: Sandbox
    let daemon: Daemon
    let server: Connection
    let client: Connection

    /// With `orgs`, serves those backends instead of resolving the config's.
    init(sandbox: Sandbox? = nil, environment: [String: String] = [:], orgs: OrgBackends? = nil,
         configure: (inout DaemonConfig) -> Void = { _ in }) throws {
        let sandbox = try sandbox ?? Sandbox()
        self.sandbox = sandbox
        var config = try DaemonConfig.load(.init(environment: sandbox.environment(environment)))
        configure(&config)
        let backends = try orgs ?? CredentialResolver.embedded(config, logger: quietLogger)
        daemon = Daemon(config: config, orgs: backends, logger: quietLogger)
        (server, client) = try Self.pair(daemon.dispatcher)
    }

    static func pair(_ dispatcher: Dispatcher) throws -> (server: Connection, client: Connection) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw TestFailure("socketpair failed")
        }
        let server = try Connection(socket: fds[0], dispatcher: dispatcher, logger: quietLogger)
        let client = try Connection(socket: fds[1], dispatcher: Dispatcher(), logger: quietLogger)
        server.start()
        client.start()
        return (server, client)
    }

    deinit {
        client.close()
        server.close()
    }

    var store: Store? { daemon.storeForTests }

    func call<M: MesaMethod>(_ method: M.Type, _ params: M.Params) async throws -> M.Result {
        try await client.send(method, params)
    }

    /// Calls and expects a JSON-RPC error, returned for inspection.
    func failure<M: MesaMethod>(_ method: M.Type, _ params: M.Params,
                                sourceLocation: SourceLocation = #_sourceLocation) async -> ResponseError? {
        do {
            _ = try await client.send(method, params)
            Issue.record("\(M.name) succeeded but an error was expected", sourceLocation: sourceLocation)
            return nil
        } catch let error as ResponseError {
            return error
        } catch {
            Issue.record("\(M.name) failed with \(error), not a JSON-RPC error", sourceLocation: sourceLocation)
            return nil
        }
    }

    func raw(_ method: String, _ params: JSONValue?) async throws -> JSONValue {
        try await client.sendRequest(method: method, params: params)
    }
}

extension Daemon {
    /// The embedded store behind the daemon (tests create keys and repos with it).
    var storeForTests: Store? { orgs.store }
}

/// Checks an error's code, symbolic name (`data.code`) and class, and that its message
/// mentions each of `mentions`.
func expectError(_ error: ResponseError?, code: Int, name: String? = nil, errorClass: String = "bad-input",
                 mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error else {
        Issue.record("no error", sourceLocation: sourceLocation)
        return
    }
    #expect(error.code.rawValue == code, "\(error)", sourceLocation: sourceLocation)
    #expect(error.data?["errorClass"]?.stringValue == errorClass, "\(error) data=\(String(describing: error.data))",
            sourceLocation: sourceLocation)
    if let name {
        #expect(error.data?["code"]?.stringValue == name, "\(error) data=\(String(describing: error.data))",
                sourceLocation: sourceLocation)
    }
    for text in mentions {
        #expect(error.message.contains(text), "'\(error.message)' should mention '\(text)'", sourceLocation: sourceLocation)
    }
}
