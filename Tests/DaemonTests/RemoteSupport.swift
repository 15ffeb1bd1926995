import Foundation
import MesaAPI
import Model
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers for the remote backend: a real mesa-server process on a loopback port, and a
// scripted HTTP responder for the answers a healthy server never gives.

/// A free loopback TCP port (bound, read, released: good enough for a test).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("bind failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

func tcpAnswers(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// `mesa-server serve` as a child process over a data directory with org `acme`.
/// `stop()` kills it by pid; `start()` serves the same directory on the same port again.
final class APIServerProcess: @unchecked Sendable {
    let sandbox: Sandbox
    let dataDirectory: String
    let port: Int
    /// The admin key `mesa-server init` printed.
    let adminKey: String
    private let child = Mutex<Child?>(nil)

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// Initializes org `org` and starts serving (off the cooperative pool).
    static func start(_ sandbox: Sandbox, org: String = "acme") async throws -> APIServerProcess {
        try await offPool {
            let server = try APIServerProcess(sandbox, org: org)
            try server.startBlocking()
            return server
        }
    }

    private init(_ sandbox: Sandbox, org: String) throws {
        self.sandbox = sandbox
        dataDirectory = sandbox.root + "/server-data"
        port = try freeLoopbackPort()
        let initialize = try Child(try Executables.path("mesa-server"), ["init", "--org", org, "--data", dataDirectory],
                                   environment: sandbox.environment(), logs: sandbox.root)
        defer { initialize.kill() }
        let code = try initialize.waitExitCodeBlocking(timeout: .seconds(60))
        let key = initialize.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard code == 0, key.hasPrefix("mesa_") else {
            throw TestFailure("mesa-server init failed (\(code)): \(initialize.stderr)")
        }
        adminKey = key
    }

    deinit { stop() }

    func startBlocking() throws {
        let started = try Child(try Executables.path("mesa-server"),
                                ["serve", "--listen", "127.0.0.1:\(port)", "--data", dataDirectory],
                                environment: sandbox.environment(), logs: sandbox.root)
        child.withLock { $0 = started }
        switch started.process.waitUntilReady(timeout: .seconds(60), { tcpAnswers(port: port) }) {
        case .ready: break
        case .exited(let status):
            throw TestFailure("mesa-server exited during start-up (\(Child.exitCode(status))): \(started.stderr)")
        case .timedOut:
            started.kill()
            throw TestFailure("mesa-server did not listen on \(port) within 60 s: \(started.stderr)")
        }
    }

    func start() async throws { try await offPool { try self.startBlocking() } }

    /// SIGKILL by pid and reap; safe to repeat.
    func stop() { child.withLock { $0 }?.kill() }

    var pid: pid_t? { child.withLock { $0?.pid } }

    /// Creates repo `acme/<repo>` on the server with one change holding `files`, its
    /// `main` bookmark moved there (blocking: call it off the pool).
    func seedRepo(_ repo: String, _ files: (HTTPBackend) throws -> [FileOperation]) throws {
        let backend = backend()
        _ = try backend.createRepo(org: "acme", name: repo, defaultBookmark: nil)
        let change = try backend.createChange(org: "acme", repo: repo, base: .root, message: "seed", files: try files(backend))
        _ = try backend.moveBookmark(org: "acme", repo: repo, name: "main", to: change.id, expectedFrom: nil, allowBackwards: false)
    }

    func backend(key: String? = nil, org: String? = "acme", _ tune: (inout HTTPBackend.Configuration) -> Void = { _ in }) -> HTTPBackend {
        var configuration = HTTPBackend.Configuration(baseURL: baseURL, apiKey: key ?? adminKey, org: org)
        tune(&configuration)
        return HTTPBackend(configuration)
    }
}

/// A loopback HTTP/1.1 server answering from a script, one answer per request (the
/// last one repeats), recording what it was asked. Every answer closes the connection.
final class ScriptedResponder: @unchecked Sendable {
    struct Answer: Sendable {
        var status: Int
        var headers: [String] = []
        var body: String = ""
    }

    struct Received: Sendable {
        var requestLine: String
        var headers: [String: String]
        var body: String
    }

    let port: Int
    private let listener: Int32
    private let script: Mutex<[Answer]>
    private let log = Mutex<[Received]>([])
    private let stopped = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)

    init(_ answers: [Answer]) throws {
        script = Mutex(answers)
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw TestFailure("socket failed") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 && listen(fd, 16) == 0
            }
        }
        guard ok else {
            close(listener)
            throw TestFailure("cannot listen: \(String(cString: strerror(errno)))")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    deinit { stop() }

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }
    var requests: [Received] { log.withLock { $0 } }

    func stop() {
        let already = stopped.withLock { value in defer { value = true }; return value }
        guard !already else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        finished.wait()
        close(listener)
    }

    private func serve() {
        defer { finished.signal() }
        while !stopped.withLock({ $0 }) {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) >= 0 else { return }
            if pfd.revents == 0 { continue }
            let client = accept(listener, nil, nil)
            if client < 0 { if stopped.withLock({ $0 }) { return } else { continue } }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var received: Received?
        while received == nil {
            let count = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            data += buffer[0..<count]
            guard let end = data.firstRange(of: [13, 10, 13, 10]) else { continue }
            let lines = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            guard data.count >= end.upperBound + length else { continue }
            received = Received(requestLine: lines.first ?? "", headers: headers,
                                body: String(decoding: data[end.upperBound..<(end.upperBound + length)], as: UTF8.self))
        }
        guard let received else { return }
        log.withLock { $0.append(received) }
        let answer = script.withLock { script -> Answer in script.count > 1 ? script.removeFirst() : script[0] }
        var head = "HTTP/1.1 \(answer.status) Scripted\r\nContent-Length: \(answer.body.utf8.count)\r\nConnection: close\r\n"
        for header in answer.headers { head += header + "\r\n" }
        let bytes = Array((head + "\r\n" + answer.body).utf8)
        _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
    }
}

/// `{"error":{…}}` as a body.
func envelope(_ code: String, _ message: String, details: String? = nil) -> String {
    #"{"error":{"code":"\#(code)","message":"\#(message)""# + (details.map { #","details":\#($0)"# } ?? "") + "}}"
}
