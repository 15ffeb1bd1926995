import Foundation
import Logging
import MesaAPI
import Model
import RPC
import Synchronization

extension Daemon {
    /// Serves one session on stdin/stdout until stdin closes or the daemon is stopped.
    public func serveStdio() async throws {
        var options = Connection.Options()
        options.maximumFrameSize = config.maxFrameBytes
        options.closesDescriptors = false
        let connection = try Connection(readFD: STDIN_FILENO, writeFD: STDOUT_FILENO, dispatcher: dispatcher,
                                        options: options, logger: logger)
        connection.onClose { _ in self.requestStop() }
        connection.start()
        await waitForStop()
        connection.closeAfterPendingRequests()
        let reason = await connection.waitUntilClosed()
        logger.info("stdio session ended", metadata: ["reason": "\(reason)"])
    }

    /// Serves many clients on `<runtime>/mesad.sock` until stopped. The runtime directory
    /// is 0700, the socket 0600, and peers of another uid are refused (SO_PEERCRED).
    /// A lock file makes a second daemon on the same runtime directory refuse to start.
    /// The caller holds the `RuntimeLock` (taken before the store is opened, so a second
    /// daemon is refused with "already running" rather than a store error).
    public func serveSocket(onReady: @Sendable () -> Void = {}) async throws {
        let paths = config.paths

        let listener: UnixSocketListener
        do { listener = try UnixSocketListener(path: paths.socketPath, logger: logger) } catch {
            throw ConfigError("cannot listen on \(paths.socketPath): \(error)")
        }
        try writePrivateFile(paths.pidFile, "\(getpid())\n")
        defer { unlink(paths.pidFile) }

        raiseDescriptorLimit()
        var options = Connection.Options()
        options.maximumFrameSize = config.maxFrameBytes
        let connections = Mutex<[UInt64: Connection]>([:])
        let connectionOptions = options
        let ownUID = getuid()
        let limit = config.maxConnections
        listener.start { accepted in
            if let peer = accepted.peer, peer.uid != ownUID, peer.uid != 0 {
                self.logger.error("refused a connection from uid \(peer.uid): mesad serves only uid \(ownUID)")
                accepted.close()
                return
            }
            let connection = Connection(accepted: accepted, dispatcher: self.dispatcher, options: connectionOptions, logger: self.logger)
            let admitted = connections.withLock { open -> Bool in
                guard open.count < limit else { return false }
                open[connection.info.id] = connection
                return true
            }
            guard admitted else {
                self.logger.warning("refused a connection: \(limit) clients are connected ([daemon] max-connections)")
                accepted.refuse(MesaError(.unavailable, "mesad already serves \(limit) connections, its limit ([daemon] max-connections); close idle clients or retry later", errno: EAGAIN).responseError)
                return
            }
            connection.onClose { _ in _ = connections.withLock { $0.removeValue(forKey: connection.info.id) } }
            connection.start()
        }
        logger.info("listening", metadata: ["socket": "\(paths.socketPath)", "pid": "\(getpid())", "backend": "\(backendName)"])
        onReady()
        await waitForStop()

        logger.info("stopping: finishing in-flight requests")
        listener.close()
        let open = connections.withLock { Array($0.values) }
        open.forEach { $0.closeAfterPendingRequests() }
        for connection in open { _ = await connection.waitUntilClosed() }
        await listener.waitUntilClosed()
        logger.info("stopped")
    }
}

/// Each client holds one descriptor: lift the soft limit to the hard one, so the
/// connection limit, not EMFILE, is what refuses clients.
func raiseDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// An exclusive `flock` on `<runtime>/mesad.lock`, held for the daemon's life; the
/// kernel drops it when the process dies, so a crashed daemon never blocks a restart.
public struct RuntimeLock: Sendable {
    let descriptor: Int32

    public init(paths: Paths) throws {
        try makePrivateDirectory(paths.runtimeDirectory)
        descriptor = open(paths.lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigError("cannot open \(paths.lockFile): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            let pid = (try? String(contentsOfFile: paths.pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ConfigError("mesad is already running\(pid.map { " (pid \($0))" } ?? "") for runtime directory \(paths.runtimeDirectory); stop it first or set MESA_RUNTIME_DIR")
        }
    }

    public func release() { close(descriptor) }
}
