import Foundation
import RPC

/// `mesad --stdio` while a socket daemon runs: that daemon owns the store and the
/// mounts, so instead of failing on the store lock we relay stdin/stdout to its socket
/// unchanged. Framing passes through untouched; each side ends when the other closes.
public enum StdioRelay {
    /// Relays until stdin closes or the daemon hangs up. Returns false when no daemon answers.
    public static func run(socketPath: String) -> Bool {
        guard Daemonizer.answers(socketPath), let socket = try? UnixSocketListener.connect(path: socketPath) else {
            return false
        }
        let done = DispatchSemaphore(value: 0)
        let upstream = Thread {
            copy(from: STDIN_FILENO, to: socket)
            shutdown(socket, Int32(SHUT_WR))
        }
        let downstream = Thread {
            copy(from: socket, to: STDOUT_FILENO)
            done.signal()
        }
        upstream.start()
        downstream.start()
        done.wait()
        close(socket)
        return true
    }

    /// The backend a running socket daemon serves ("embedded" or its api-url, as its
    /// `listOrgs` reports it), or nil when none answers.
    public static func runningBackend(socketPath: String) -> String? {
        guard let descriptor = try? UnixSocketListener.connect(path: socketPath) else { return nil }
        defer { close(descriptor) }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"listOrgs","params":{}}"#
        let frame = Array("Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        guard frame.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == frame.count else { return nil }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            received += buffer[0..<count]
            guard let separator = received.firstRange(of: [13, 10, 13, 10]) else { continue }
            let header = String(decoding: received[..<separator.lowerBound], as: UTF8.self).lowercased()
            guard let lengthLine = header.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                  let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return nil }
            guard received.count >= separator.upperBound + length else { continue }
            let json = try? JSONSerialization.jsonObject(with: Data(received[separator.upperBound..<separator.upperBound + length]))
            let orgs = ((json as? [String: Any])?["result"] as? [String: Any])?["orgs"] as? [[String: Any]]
            return orgs?.first?["backend"] as? String ?? "embedded"
        }
        return nil
    }

    private static func copy(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            var written = 0
            while written < count {
                let result = buffer[written..<count].withUnsafeBytes { write(destination, $0.baseAddress, $0.count) }
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else { return }
                written += result
            }
        }
    }
}
