import APIServer
import ArgumentParser
import Foundation
import Infra
import Hummingbird
import Logging
import MesaAPI
import Model
import Store

/// mesa-server's one entry point: run by the `mesa-server` executable and by the
/// multi-call binary.
public enum MesaServerProgram {
    /// Parses `arguments` (without the program name) and runs mesa-server.
    public static func main(arguments: [String]) async { await MesaServer.main(arguments) }
}

/// mesa-server: the Mesa REST API over a local store. Plain HTTP/1.1; put TLS in a
/// reverse proxy in front of it.
struct MesaServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesa-server",
        abstract: "A Mesa-compatible REST API server over a local versioned store.",
        subcommands: [Serve.self, Init.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the REST API under /v1.")

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:8420"

    @Option(help: "Directory of the store.")
    var data: String = Store.defaultDirectory

    @Option(help: "Largest request body in bytes (blob uploads stream and are not bound by it).")
    var maxBodyBytes = Limits().maxBodyBytes

    @Option(help: "Bytes all request bodies under way may hold together; past it, 503.")
    var maxInflightBodyBytes = Limits().maxInFlightBodyBytes

    @Option(help: "Most open connections; past it a connection is answered 503 and closed.")
    var maxConnections = Limits().maxConnections

    @Option(help: "Seconds from a request's first byte to the end of its headers.")
    var headerTimeout = Limits().headerTimeout.components.seconds

    @Option(help: "Seconds a kept-alive connection may sit with no request under way.")
    var idleTimeout = Limits().idleTimeout.components.seconds

    @Option(help: "Seconds from the end of a request's headers to the end of its body.")
    var requestTimeout = Limits().requestTimeout.components.seconds

    @Option(help: "The server's URL as webhook receivers should see it (repository.url in events); default http://LISTEN.")
    var publicURL: String?

    func validate() throws {
        for (name, value) in [("--max-body-bytes", Int64(maxBodyBytes)), ("--max-inflight-body-bytes", Int64(maxInflightBodyBytes)),
                              ("--max-connections", Int64(maxConnections)), ("--header-timeout", headerTimeout),
                              ("--idle-timeout", idleTimeout), ("--request-timeout", requestTimeout)] where value <= 0 {
            throw ValidationError("\(name) must be a positive number, got \(value)")
        }
        guard maxInflightBodyBytes >= maxBodyBytes else {
            throw ValidationError("--max-inflight-body-bytes (\(maxInflightBodyBytes)) must be at least --max-body-bytes (\(maxBodyBytes))")
        }
    }

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, got '\(listen)'")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let store = try Store(directory: data)
        LoggingSystem.bootstrap { SafeLogHandler(StreamLogHandler.standardError(label: $0)) }
        var logger = Logger(label: "mesa-server")
        logger.logLevel = .info
        var limits = Limits()
        limits.maxBodyBytes = maxBodyBytes
        limits.maxInFlightBodyBytes = maxInflightBodyBytes
        limits.maxConnections = maxConnections
        limits.headerTimeout = .seconds(headerTimeout)
        limits.idleTimeout = .seconds(idleTimeout)
        limits.requestTimeout = .seconds(requestTimeout)
        let baseURL = (publicURL ?? "http://\(listen)").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let webhooks = WebhookDeliverer(store: store, options: .init(publicURL: baseURL))
        webhooks.start()
        defer { webhooks.stop() }
        let server = APIServer(store: store, logger: logger, limits: limits, webhooks: webhooks)
        // Upstream syncs run in this process, in the background.
        try store.startSyncWorker()
        defer { store.stopSyncWorker() }
        try await server.application(host: host, port: port).runService()
    }
}

struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an organization and its first admin key; the key is printed once.")

    @Option(help: "Slug of the organization to create.")
    var org: String

    @Option(help: "Directory of the store.")
    var data: String = Store.defaultDirectory

    @Option(help: "Name of the admin key.")
    var keyName = "admin"

    func run() throws {
        let store = try Store(directory: data)
        do {
            _ = try store.createOrg(slug: org)
            let created = try store.createAPIKey(org: org, name: keyName, scopes: [.read, .write, .admin])
            FileHandle.standardError.write(Data("created org '\(org)' and admin key '\(created.key.id)'; the key is shown only once:\n".utf8))
            print(created.secret)
        } catch {
            throw ValidationError(MesaError.from(error).message)
        }
    }
}
