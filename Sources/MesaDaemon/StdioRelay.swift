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
        guard let answer = Daemonizer.ask(socketPath, method: "listOrgs") else { return nil }
        return answer["result"]?["orgs"]?.arrayValue?.first?["backend"]?.stringValue ?? "embedded"
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
