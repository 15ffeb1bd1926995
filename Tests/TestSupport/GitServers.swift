import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Real git servers on loopback for the upstream tests, each serving the bare repos under
/// one directory. Every server is a `Child` (its own process group): `stop()` kills it by
/// pid, and deinit does the same, so a failing test leaves nothing running.
public enum GitServers {
    /// A TCP port nothing listens on right now (bind to port 0, read it back, close).
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestFailure("bind: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// True once something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    static func waitListening(_ child: Child, port: Int, what: String) throws {
        let ready = eventuallyBlocking(timeout: .seconds(20)) { child.poll() != nil || isListening(port: port) }
        guard ready, child.poll() == nil else {
            child.kill()
            throw TestFailure("\(what) did not start listening on port \(port):\n\(child.stderr)")
        }
    }
}

/// `git daemon` serving `base` read-only on `git://127.0.0.1:PORT/<name>`.
public final class GitDaemonServer: Sendable {
    public let port: Int
    private let child: Child

    public init(base: String, logs: String) throws {
        port = try GitServers.freePort()
        child = try Child("/usr/bin/git", ["daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)",
                                           "--base-path=\(base)", base],
                          environment: ["PATH": "/usr/bin:/bin", "HOME": logs], logs: logs)
        try GitServers.waitListening(child, port: port, what: "git daemon")
    }

    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }
    public func stop() { child.kill() }
    deinit { child.kill() }
}

/// nginx + fcgiwrap + `git http-backend`: smart HTTP with basic auth (read and push) on
/// `http://127.0.0.1:PORT/<name>`.
public final class GitHTTPServer: Sendable {
    public let port: Int
    private let nginx: Child
    private let fcgiwrap: Child

    public static var available: Bool {
        ["/usr/sbin/nginx", "/usr/sbin/fcgiwrap", "/usr/lib/git-core/git-http-backend"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    public init(base: String, user: String, password: String, logs: String) throws {
        guard Self.available else {
            throw TestFailure("nginx, fcgiwrap or git-http-backend is missing: run scripts/install-deps.sh")
        }
        port = try GitServers.freePort()
        let directory = logs + "/nginx-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        let socket = directory + "/fcgi.sock"
        let wrapper = try Child("/usr/sbin/fcgiwrap", ["-c", "2", "-s", "unix:" + socket],
                                environment: ["PATH": "/usr/bin:/bin", "HOME": directory], logs: logs)
        fcgiwrap = wrapper
        guard eventuallyBlocking(timeout: .seconds(20), { wrapper.poll() != nil || FileManager.default.fileExists(atPath: socket) }),
              wrapper.poll() == nil else {
            throw TestFailure("fcgiwrap did not create \(socket):\n\(wrapper.stderr)")
        }
        // apr1 hash of the password, as htpasswd writes it.
        let hash = try Self.run("/usr/bin/openssl", ["passwd", "-apr1", password], logs: logs)
        try "\(user):\(hash.trimmingCharacters(in: .whitespacesAndNewlines))\n".write(toFile: directory + "/htpasswd", atomically: true, encoding: .utf8)
        let temp = directory + "/tmp"
        let config = """
        worker_processes 1;
        \(getuid() == 0 ? "user root;" : "")
        error_log \(directory)/error.log;
        pid \(directory)/nginx.pid;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(temp)/body; fastcgi_temp_path \(temp)/fastcgi; proxy_temp_path \(temp)/proxy;
            uwsgi_temp_path \(temp)/uwsgi; scgi_temp_path \(temp)/scgi;
            server {
                listen 127.0.0.1:\(port);
                location / {
                    auth_basic "git";
                    auth_basic_user_file \(directory)/htpasswd;
                    client_max_body_size 0;
                    fastcgi_pass unix:\(socket);
                    fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
                    fastcgi_param GIT_PROJECT_ROOT \(base);
                    fastcgi_param GIT_HTTP_EXPORT_ALL "";
                    fastcgi_param PATH_INFO $uri;
                    fastcgi_param REMOTE_USER $remote_user;
                    fastcgi_param REQUEST_METHOD $request_method;
                    fastcgi_param QUERY_STRING $query_string;
                    fastcgi_param CONTENT_TYPE $content_type;
                    fastcgi_param CONTENT_LENGTH $content_length;
                    fastcgi_param HTTP_CONTENT_ENCODING $http_content_encoding;
                    fastcgi_param GIT_CONFIG_NOSYSTEM 1;
                }
            }
        }
        """
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        nginx = try Child("/usr/sbin/nginx", ["-p", directory, "-c", directory + "/nginx.conf", "-g", "daemon off;"],
                          environment: ["PATH": "/usr/bin:/bin:/usr/sbin"], logs: logs)
        do {
            try GitServers.waitListening(nginx, port: port, what: "nginx")
        } catch {
            fcgiwrap.kill()
            throw error
        }
    }

    public func url(_ name: String) -> String { "http://127.0.0.1:\(port)/\(name)" }

    public func stop() {
        nginx.killGroup()
        fcgiwrap.killGroup()
    }

    deinit { stop() }

    static func run(_ executable: String, _ arguments: [String], logs: String) throws -> String {
        let child = try Child(executable, arguments, environment: ["PATH": "/usr/bin:/bin"], logs: logs)
        defer { child.kill() }
        guard try child.waitExitCodeBlocking(timeout: .seconds(30)) == 0 else {
            throw TestFailure("\(executable) failed: \(child.stderr)")
        }
        return child.stdout
    }
}

/// A TCP relay to `127.0.0.1:target` that cuts every connection once `cutAfter` bytes
/// came back from the server: an upstream that disappears in the middle of a transfer.
public final class CuttingRelay: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let stopped = Stopped()

    final class Stopped: Sendable {
        let flag = Atomic<Bool>(false)
    }

    public init(target: Int, cutAfter: Int) throws {
        port = try GitServers.freePort()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = GitServers.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else {
            close(listener)
            throw TestFailure("relay cannot listen on \(port): \(String(cString: strerror(errno)))")
        }
        let stopped = self.stopped
        let thread = Thread {
            while !stopped.flag.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var to = GitServers.loopback(port: target)
                let connected = withUnsafePointer(to: &to) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if connected != 0 { close(client); close(server); continue }
                Thread { Self.pump(from: client, to: server, limit: nil) }.start()
                Thread { Self.pump(from: server, to: client, limit: cutAfter) }.start()
            }
        }
        thread.start()
    }

    private static func pump(from source: Int32, to destination: Int32, limit: Int?) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var total = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            let allowed = limit.map { min(count, $0 - total) } ?? count
            if allowed > 0 { _ = buffer.withUnsafeBytes { write(destination, $0.baseAddress, allowed) } }
            total += count
            if let limit, total >= limit { break }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }

    public func url(_ name: String) -> String { "git://127.0.0.1:\(port)/\(name)" }

    public func stop() {
        guard !stopped.flag.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    deinit { stop() }
}
