import Client
import Foundation
import Logging
import MesaProtocol
import RPC
import Synchronization

/// `mesad --mcp`: MCP on stdin/stdout, each tool forwarded to the daemon on the socket
/// (started with `mesad -d -y` when none runs). One daemon owns the store and the FUSE
/// mounts; the MCP server, hooks and CLIs are all its clients, so mounts made through MCP
/// outlive the MCP session and the hooks see them.
public enum MCPMode {
    public static func run(version: String, logger: Logger) async {
        signal(SIGPIPE, SIG_IGN)
        let link = DaemonLink(logger: logger)
        let server = MCPServer(version: version) { method, params in try await link.call(method, params) }
        logger.info("serving MCP on stdio")
        await MCPStdio(server: server).run()
        link.close()
    }
}

/// A connection to the socket daemon, made on first use and made again once if the
/// daemon went away (restarted, or stopped by `mesa-client shutdown`).
final class DaemonLink: Sendable {
    private let client = Mutex<MesaClient?>(nil)
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func call(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        for attempt in 0..<2 {
            let connected = try connected()
            do {
                return try await connected.call(method: method, params: params)
            } catch .method(let error) {
                throw error
            } catch .unreachable(let message) {
                drop(connected)
                if attempt == 1 { throw ResponseError(code: ErrorCode(-32010), message: message, errorClass: .transient, extra: ["code": "UNAVAILABLE"]) }
                logger.info("lost mesad; connecting again", metadata: ["reason": "\(message)"])
            }
        }
        throw ResponseError.internalError("unreachable")
    }

    private func connected() throws -> MesaClient {
        try client.withLock { client in
            if let client { return client }
            do {
                let made = try MesaClient.connect(autostart: true)
                client = made
                return made
            } catch {
                throw ResponseError(code: ErrorCode(-32010), message: "\(error)", errorClass: .transient, extra: ["code": "UNAVAILABLE"])
            }
        }
    }

    private func drop(_ stale: MesaClient) {
        client.withLock { client in
            if client === stale { client = nil }
        }
        stale.close()
    }

    func close() { client.withLock { $0?.close() } }
}
