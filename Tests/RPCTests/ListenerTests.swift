import Foundation
import Synchronization
import Testing

@testable import RPC

#if canImport(Glibc)
import Glibc
#endif

@Suite("UnixSocketListener", .timeLimit(.minutes(1)))
struct ListenerTests {
    /// A listener serving the test methods, keeping its connections for cleanup.
    final class Server: Sendable {
        let listener: UnixSocketListener
        let connections = Mutex<[Connection]>([])
        let peers = Mutex<[PeerCredentials?]>([])

        init(path: String) throws {
            listener = try UnixSocketListener(path: path)
            let dispatcher = makeTestDispatcher()
            listener.start { [self] accepted in
                peers.withLock { $0.append(accepted.peer) }
                let connection = Connection(accepted: accepted, dispatcher: dispatcher)
                connections.withLock { $0.append(connection) }
                connection.start()
            }
        }

        func stop() {
            listener.close()
            for connection in connections.withLock({ $0 }) { connection.close() }
        }
    }

    @Test func twoClientsAreServedAtOnce() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        let server = try Server(path: path)
        defer { server.stop() }

        let first = RawPeer(fd: try UnixSocketListener.connect(path: path))
        let second = RawPeer(fd: try UnixSocketListener.connect(path: path))
        defer {
            first.close()
            second.close()
        }
        // The first client's slow request must not hold up the second client.
        try first.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"milliseconds":500,"tag":1}}"#)
        try second.send(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"second"}}"#)
        #expect(try await second.receiveAsync()?["result"] == ["text": "second"])
        #expect(try await first.receiveAsync()?["result"] == ["tag": 1])
        #expect(server.connections.withLock { $0.count } == 2)
    }

    @Test func socketIsOwnerOnlyAndPeerUidIsReported() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        let server = try Server(path: path)
        defer { server.stop() }

        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600)

        let client = RawPeer(fd: try UnixSocketListener.connect(path: path))
        defer { client.close() }
        try client.send(pingJSON(id: 1))
        _ = try await client.receiveAsync()
        let peer = try #require(server.peers.withLock { $0.first } ?? nil)
        #expect(peer.uid == getuid())
        #expect(peer.gid == getgid())
        #expect(peer.pid == getpid())
        #expect(server.connections.withLock { $0.first?.info.peer } == peer)
    }

    @Test func liveSocketIsNotStolen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        let server = try Server(path: path)
        defer { server.stop() }
        #expect(throws: UnixSocketError.addressInUse(path: path)) { try UnixSocketListener(path: path) }
        // The refused attempt left the live socket in place.
        #expect(UnixSocketListener.isAnswering(path))
    }

    @Test func staleSocketIsReplaced() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        // A socket file whose owner died: bound, never unlinked, nobody listening.
        var address = try UnixSocketListener.address(for: path)
        let orphan = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(orphan, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        Descriptors.closeFD(orphan)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(!UnixSocketListener.isAnswering(path))

        let server = try Server(path: path)
        defer { server.stop() }
        let client = RawPeer(fd: try UnixSocketListener.connect(path: path))
        defer { client.close() }
        try client.send(pingJSON(id: 1))
        #expect(try await client.receiveAsync()?["result"] == ["pong": true])
    }

    @Test func nonSocketFileIsNeverDeleted() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        #expect(throws: UnixSocketError.notASocket(path: path)) { try UnixSocketListener(path: path) }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }

    @Test func overlongPathIsRefusedWithItsLimit() {
        let path = "/tmp/" + String(repeating: "p", count: 200)
        #expect(throws: UnixSocketError.pathTooLong(path: path, limit: 107)) { try UnixSocketListener(path: path) }
    }

    @Test func closeRemovesTheSocketAndIsIdempotent() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        let server = try Server(path: path)
        let client = RawPeer(fd: try UnixSocketListener.connect(path: path))
        defer { client.close() }
        try client.send(pingJSON(id: 1))
        _ = try await client.receiveAsync()

        server.listener.close()
        server.listener.close()
        await server.listener.waitUntilClosed()
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(throws: UnixSocketError.self) { try UnixSocketListener.connect(path: path) }
        // Connections already accepted keep working.
        try client.send(pingJSON(id: 2))
        #expect(try await client.receiveAsync()?["id"] == 2)
        server.stop()
    }

    @Test func unstartedListenerClosesCleanly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/mesad.sock"
        let listener = try UnixSocketListener(path: path)
        listener.close()
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
