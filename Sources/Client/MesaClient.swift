import Foundation
import Infra
import MesaProtocol
import RPC

/// A connection to mesad over its Unix socket, starting the daemon when none runs.
public final class MesaClient: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        /// No daemon answers and none could be started.
        case unreachable(String)
        /// The daemon answered with an error.
        case method(ResponseError)

        public var description: String {
            switch self {
            case .unreachable(let message): message
            case .method(let error): error.message
            }
        }
    }

    public let connection: Connection
    public let socketPath: String

    /// Connects to `paths.socketPath`; with `autostart`, runs `mesad -d` first when no
    /// daemon answers there.
    public static func connect(paths: Paths = Paths(), autostart: Bool = true,
                               notifications: Dispatcher = Dispatcher()) throws(Failure) -> MesaClient {
        let socket = paths.socketPath
        if let client = try? MesaClient(socketPath: socket, dispatcher: notifications) { return client }
        guard autostart else {
            throw .unreachable("mesad is not running (no answer on \(socket)); start it with `mesad -d`")
        }
        try startDaemon()
        do { return try MesaClient(socketPath: socket, dispatcher: notifications) } catch {
            throw .unreachable("mesad started but does not answer on \(socket): \(error)")
        }
    }

    init(socketPath: String, dispatcher: Dispatcher) throws {
        self.socketPath = socketPath
        let descriptor = try UnixSocketListener.connect(path: socketPath)
        connection = try Connection(socket: descriptor, dispatcher: dispatcher)
        connection.start()
    }

    /// Calls a method and returns its typed result.
    public func call<M: MesaMethod>(_ method: M.Type, _ params: M.Params) async throws(Failure) -> M.Result {
        do { return try await connection.send(method, params) } catch let error as ResponseError {
            throw .method(error)
        } catch {
            throw .unreachable("lost the connection to mesad: \(error)")
        }
    }

    /// Calls any method with raw JSON parameters (for `mesa-client call`).
    public func call(method: String, params: JSONValue?) async throws(Failure) -> JSONValue {
        do { return try await connection.sendRequest(method: method, params: params) } catch let error as ResponseError {
            throw .method(error)
        } catch {
            throw .unreachable("lost the connection to mesad: \(error)")
        }
    }

    public func close() { connection.close() }

    /// Whether a daemon answers on the socket.
    public static func isRunning(paths: Paths = Paths()) -> Bool {
        guard let client = try? MesaClient(socketPath: paths.socketPath, dispatcher: Dispatcher()) else { return false }
        client.close()
        return true
    }

    static func startDaemon() throws(Failure) { try runDaemon(["-d", "-y"]) }

    /// Runs `mesad <arguments>` (next to this executable, else on PATH) and waits for it.
    public static func runDaemon(_ arguments: [String]) throws(Failure) {
        guard let executable = mesadExecutable() else {
            throw .unreachable("mesad is not running and no mesad executable was found next to \(CommandLine.arguments.first ?? "this command") or on PATH")
        }
        // `mesad -d` returns once the daemon answers (or fails); its stderr is the reason.
        let output: [UInt8]
        let status: Int32?
        do {
            let (readEnd, writeEnd) = try ChildProcess.pipe()
            defer { closeDescriptor(readEnd) }
            let child: ChildProcess
            do {
                defer { closeDescriptor(writeEnd) }
                child = try ChildProcess(executable, arguments, stderr: .descriptor(writeEnd))
            }
            output = ChildProcess.readAll(readEnd)
            status = child.wait()
        } catch {
            throw .unreachable("cannot start mesad: \(error)")
        }
        guard status == 0 else {
            throw .unreachable("mesad failed to start: \(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    public static func mesadExecutable() -> String? { executable(named: "mesad") }

    /// The executable `name` next to this command, else on PATH. "Next to" is first the
    /// directory it was run from (argv[0]), then the one its file is in (/proc/self/exe):
    /// in the bundle the commands are links to one multi-call binary, which may live
    /// elsewhere. Absolute unless PATH names a relative directory.
    public static func executable(named name: String) -> String? {
        let fileManager = FileManager.default
        var directories: [String] = []
        if let invoked = CommandLine.arguments.first, invoked.contains("/") {
            let absolute = invoked.hasPrefix("/") ? invoked : fileManager.currentDirectoryPath + "/" + invoked
            directories.append((absolute as NSString).deletingLastPathComponent)
        }
        if let own = try? fileManager.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append((own as NSString).deletingLastPathComponent)
        }
        directories += (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        // Links stay unresolved: the multi-call binary runs the command its argv[0] names.
        return directories.lazy.map { "\($0)/\(name)" }.first { fileManager.isExecutableFile(atPath: $0) }
    }
}

/// close(2), out of reach of `MesaClient.close()`.
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
