import Foundation
import MesaAPI
@testable import MesaDaemon
import MesaProtocol
import Model
import RPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An in-process mesad whose backend can be taken offline, with a repo mounted for real:
/// subscribers see an upload become pending, fail, and recover.
@Suite(.serialized, .timeLimit(.minutes(2))) struct UploadEventTests {
    @Test func anOutageIsReportedAsPendingFailedThenRecovered() async throws {
        let sandbox = try Sandbox()
        _ = try sandbox.write(".config/mesa/config.toml", "[daemon]\nflush-debounce-ms = 100\n")
        let config = try DaemonConfig.load(.init(environment: sandbox.environment()))
        let embedded = try CredentialResolver.embedded(config, logger: quietLogger)
        let backend = FaultInjectingBackend(wrapping: try embedded.backend(for: "local").1)
        // No store: the daemon acts through exactly this backend.
        let daemon = Daemon(config: config, orgs: OrgBackends(backends: ["local": backend], orgs: embedded.orgs, store: nil),
                            logger: quietLogger)
        let mountPath = sandbox.root + "/m"
        defer {
            daemon.mounts?.shutdownAll()
            MountedDaemon.lazyUnmount(mountPath)
        }
        _ = try backend.createRepo(org: "local", name: "demo", defaultBookmark: nil)

        let log = EventLog()
        let (server, client) = try Self.pair(daemon.dispatcher, notifications: log.dispatcher)
        defer { client.close(); server.close() }
        _ = try await client.send(MountMethod.self, .init(repo: "demo", path: mountPath))
        _ = try await client.send(Subscribe.self, .init(.path(mountPath)))

        // Listed while the backend is up: creating a file offline is then purely local.
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPath).isEmpty)
        backend.setOffline(true)
        try "draft\n".write(toFile: mountPath + "/draft.md", atomically: false, encoding: .utf8)
        let pending = try await log.waitFor("uploadPending") { $0.event == "uploadPending" }
        #expect(pending.paths == ["draft.md"])
        let failed = try await log.waitFor("uploadFailed") { $0.event == "uploadFailed" }
        #expect(failed.error?.contains("offline") == true, "\(failed.error ?? "")")
        #expect(failed.pendingUploads == 1)

        backend.setOffline(false)
        let status = try await client.send(Flush.self, .init(mountId: mountPath))
        #expect(status.pendingUploads == 0 && status.lastError == nil)
        let recovered = try await log.waitFor("uploadRecovered") { $0.event == "uploadRecovered" }
        #expect(recovered.pendingUploads == 0)
        let kinds = log.all.map(\.event)
        #expect(kinds.filter { $0 == "uploadFailed" }.count == 1, "a retry with the same error is not news: \(kinds)")
        let amended = try #require(log.all.lastIndex { $0.event == "changeAmended" }, "\(kinds)")
        #expect(amended > (kinds.firstIndex(of: "uploadFailed") ?? Int.max))
    }

    static func pair(_ dispatcher: Dispatcher, notifications: Dispatcher) throws -> (Connection, Connection) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw TestFailure("socketpair failed") }
        let server = try Connection(socket: fds[0], dispatcher: dispatcher, logger: quietLogger)
        let client = try Connection(socket: fds[1], dispatcher: notifications, logger: quietLogger)
        server.start()
        client.start()
        return (server, client)
    }
}
