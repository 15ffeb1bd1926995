import Foundation
import Infra
import RPC

/// `mesad -d`: start the daemon as a detached child (its own session, stdio on
/// /dev/null, stderr appended to a log file) and return only once it answers on its
/// socket. If the child dies first, its error output is returned as the failure.
public enum Daemonizer {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// With `pidFile`, success also needs the pid file to name the new child: another
    /// daemon already answering on the socket is not "started" (the child will exit
    /// with "already running", and that is the failure reported). `argv0` is the name the
    /// child sees as argv[0] (default `executable`).
    public static func start(executable: String, argv0: String? = nil, arguments: [String], logFile: String, socketPath: String,
                             pidFile: String? = nil, timeout: Duration = .seconds(30)) throws -> pid_t {
        try FileManager.default.createDirectory(atPath: (logFile as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let logDescriptor = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logDescriptor >= 0 else { throw Failure(description: "cannot open log file \(logFile): \(String(cString: strerror(errno)))") }
        defer { close(logDescriptor) }
        let startOffset = lseek(logDescriptor, 0, SEEK_END)
        let child: ChildProcess
        do {
            child = try ChildProcess(executable, arguments, argv0: argv0, stderr: .descriptor(logDescriptor), group: .newSession,
                                     closeOtherDescriptors: true)
        } catch {
            throw Failure(description: error.description)
        }
        switch child.waitUntilReady(timeout: timeout, { answers(socketPath) && (pidFile.map { recordedPID($0) == child.pid } ?? true) }) {
        case .ready: return child.pid
        case .exited(let status):
            throw Failure(description: logTail(logFile, from: startOffset) ?? "mesad exited during start-up (status \(status))")
        case .timedOut:
            child.signal(SIGTERM)
            throw Failure(description: "mesad did not answer on \(socketPath) within \(timeout); see \(logFile)")
        }
    }

    /// True when something accepts a connection on the socket and answers `initialize`.
    public static func answers(_ socketPath: String) -> Bool {
        ask(socketPath, method: "initialize")?["result"]?["serverInfo"] != nil
    }

    /// One request (no params) on a fresh connection to the socket: the answer, or nil
    /// when nothing answers a well-framed message within 2 s.
    static func ask(_ socketPath: String, method: String) -> JSONValue? {
        guard let descriptor = try? UnixSocketListener.connect(path: socketPath) else { return nil }
        defer { close(descriptor) }
        let frame = FrameParser.encode(Array(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":{}}"#.utf8))
        guard frame.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == frame.count else { return nil }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var parser = FrameParser()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            parser.append(buffer[0..<count])
            do {
                if let body = try parser.next() { return try? JSONValue.parse(body) }
            } catch {
                return nil
            }
        }
    }

    private static func recordedPID(_ path: String) -> pid_t? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private static func logTail(_ path: String, from offset: off_t) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(max(offset, 0)))
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return nil }
        return String(decoding: data.suffix(4000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
