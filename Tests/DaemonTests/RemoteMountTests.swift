import Foundation
import MesaAPI
import MesaDaemon
import MesaProtocol
import Model
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// mesad on a remote mesa-server (MESA_API_URL): start-up checks, and a real FUSE mount
/// whose writes reach the server, through an outage of the server too.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct RemoteMountTests {
    static let fuseAvailable = FileManager.default.fileExists(atPath: "/dev/fuse") && getuid() == 0

    static func environment(_ server: APIServerProcess, key: String? = nil) -> [String: String] {
        ["MESA_API_URL": server.baseURL, "MESA_ORGS": "acme:\(key ?? server.adminKey)"]
    }

    /// mesad over `server` with the tree mounted and a 100 ms upload debounce, once
    /// `path` shows in the tree (see `DaemonProcess.startMounted`).
    static func startMounted(_ sandbox: Sandbox, _ server: APIServerProcess, showing path: String) async throws -> DaemonProcess {
        _ = try sandbox.write(".config/mesa/config.toml", "[daemon]\nflush-debounce-ms = 100\n")
        return try await DaemonProcess.startMounted(sandbox, environment: environment(server), showing: path)
    }

    /// The bytes of `path` at `change`, read through the server.
    static func serverFile(_ backend: HTTPBackend, _ repo: String, _ change: String, _ path: String) -> [UInt8]? {
        guard let id = try? ChangeID(change),
              case .file(_, let bytes, _, _)? = try? backend.content(org: "acme", repo: repo, at: .change(id), path: path, depth: 0)
        else { return nil }
        return bytes
    }

    static func writeFile(_ path: String, _ text: String) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return false }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        return close(descriptor) == 0 && written == bytes.count && synced == 0
    }

    @Test func aRefusedKeyStopsTheStartAndAnUnreachableServerDoesNot() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let bogus = "mesa_this_key_was_never_issued_000000000000000000"
        let refused = try await Run.run("mesad", [], sandbox: sandbox, environment: Self.environment(server, key: bogus),
                                        timeout: .seconds(30))
        #expect(refused.code == 1)
        #expect(refused.stderr.contains("'acme'") && refused.stderr.contains(server.baseURL), "\(refused.stderr)")
        #expect(!refused.stderr.contains(bogus))

        // Server down at start-up: mesad starts, calls answer unavailable, then work once it is back.
        server.stop()
        let daemon = try await DaemonProcess.start(sandbox, environment: Self.environment(server))
        defer { daemon.kill() }
        let client = try daemon.client()
        defer { client.close() }
        do {
            _ = try await client.call(ListRepos.self, .init())
            Issue.record("listRepos succeeded with the server down")
        } catch {
            #expect("\(error)".contains("UNAVAILABLE") || "\(error)".contains("unavailable") || "\(error)".contains("connect"), "\(error)")
        }
        try await server.start()
        let whoami = try await client.call(Whoami.self, .init())
        #expect(whoami.org.slug == "acme" && whoami.backend == server.baseURL)
        _ = try await client.call(CreateRepo.self, .init(name: "later"))
        #expect(try await client.call(ListRepos.self, .init()).repos.map(\.name) == ["later"])
        let key = try await client.call(CreateEphemeralKey.self, .init(scopes: ["read"], repos: ["later"]))
        #expect(key.key.hasPrefix("mesa_"))
        #expect(try await daemon.stop() == 0)
    }

    /// `mesad --stdio` relays to a socket daemon only when it serves the same backend.
    @Test func stdioRelaysOnlyToASocketDaemonOfTheSameBackend() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        func stdioBackend(_ environment: [String: String]) async throws -> String? {
            let child = try Child(try Executables.path("mesad"), ["--stdio"], environment: sandbox.environment(environment),
                                  logs: sandbox.root, pipeStdio: true)
            defer { child.kill() }
            let reader = FrameReader(fd: child.stdoutFD)
            try writeAll(child.stdinFD, frame(#"{"jsonrpc":"2.0","id":1,"method":"listOrgs"}"#))
            let answer = try #require(await reader.next(timeout: .seconds(60)), "no answer; stderr: \(child.stderr)")
            child.closeStdin()
            _ = try await child.waitExitCode(timeout: .seconds(30))
            return (((answer["result"] as? [String: Any])?["orgs"] as? [[String: Any]])?.first?["backend"]) as? String
        }
        // An embedded socket daemon runs: a remote stdio session serves itself.
        let embedded = try await DaemonProcess.start(sandbox)
        #expect(try await stdioBackend(Self.environment(server)) == server.baseURL)
        #expect(try await embedded.stop() == 0)
        // A remote socket daemon runs: an embedded stdio session does not relay to it,
        // a remote one does.
        let remote = try await DaemonProcess.start(sandbox, environment: Self.environment(server))
        defer { remote.kill() }
        #expect(try await stdioBackend([:]) == "embedded")
        #expect(try await stdioBackend(Self.environment(server)) == server.baseURL)
    }

    @Test(.enabled(if: fuseAvailable, "needs root and /dev/fuse"))
    func mountWritesReachTheServerAndSurviveAnOutage() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        let backend = server.backend()
        // A repo with one file on the server before the mount, to read through the blob cache.
        let seed = "seeded on the server\n"
        try await offPool { try server.seedRepo("work") { _ in [.upsert(path: "seed.txt", content: Array(seed.utf8))] } }
        let daemon = try await Self.startMounted(sandbox, server, showing: "acme/work/seed.txt")
        defer {
            daemon.kill()
            MountedDaemon.lazyUnmount(sandbox.treeMountPoint)
        }
        let repoPath = sandbox.treeMountPoint + "/acme/work"
        #expect(try String(contentsOfFile: repoPath + "/seed.txt", encoding: .utf8) == seed)

        let client = try daemon.client()
        defer { client.close() }
        @Sendable func status() async throws -> MountStatusInfo {
            let result = try await client.call(MountStatusMethod.self, MountSelector(mountId: "acme/work"))
            guard let only = result.mounts.first else { throw TestFailure("no status for acme/work") }
            return only
        }
        func waitForUploads(_ timeout: Duration) async throws -> MountStatusInfo {
            let deadline = ContinuousClock.now + timeout
            while true {
                let current = try await status()
                if current.pendingUploads == 0 && current.workingChangeId != nil && current.lastError == nil { return current }
                guard ContinuousClock.now < deadline else {
                    throw TestFailure("uploads still pending after \(timeout): \(current.pendingUploads), last error \(current.lastError ?? "-")")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        // Write, rename, delete.
        let wrote = await offPool { () -> Bool in
            (try? FileManager.default.createDirectory(atPath: repoPath + "/dir", withIntermediateDirectories: true)) != nil
                && Self.writeFile(repoPath + "/a.txt", "alpha\n") && Self.writeFile(repoPath + "/b.txt", "bravo\n")
                && Self.writeFile(repoPath + "/dir/c.txt", "charlie\n")
                && rename(repoPath + "/b.txt", repoPath + "/d.txt") == 0 && unlink(repoPath + "/a.txt") == 0
        }
        #expect(wrote)
        let first = try await waitForUploads(.seconds(60))
        let working = try #require(first.workingChangeId)
        try await offPool {
            #expect(Self.serverFile(backend, "work", working, "d.txt") == Array("bravo\n".utf8))
            #expect(Self.serverFile(backend, "work", working, "dir/c.txt") == Array("charlie\n".utf8))
            #expect(Self.serverFile(backend, "work", working, "seed.txt") == Array(seed.utf8))
            for gone in ["a.txt", "b.txt"] {
                #expect(throws: MesaError.self) { _ = try backend.content(org: "acme", repo: "work", at: .change(try ChangeID(working)), path: gone, depth: 0) }
            }
        }

        // The server goes away mid-workload: writes keep succeeding into the journal,
        // cached reads and listed directories keep working.
        server.stop()
        var expected: [String: String] = [:]
        for index in 0..<40 { expected["outage/f\(index).txt"] = "written during the outage #\(index)\n" + String(repeating: "z", count: index * 37) }
        let outageWrites = expected
        let during = await offPool { () -> Bool in
            guard (try? FileManager.default.createDirectory(atPath: repoPath + "/outage", withIntermediateDirectories: true)) != nil else { return false }
            for (path, text) in outageWrites.sorted(by: { $0.key < $1.key }) {
                guard Self.writeFile(repoPath + "/" + path, text) else { return false }
                usleep(20_000)
            }
            return true
        }
        #expect(during, "a write failed during the outage")
        #expect(try String(contentsOfFile: repoPath + "/seed.txt", encoding: .utf8) == seed)
        #expect(try String(contentsOfFile: repoPath + "/dir/c.txt", encoding: .utf8) == "charlie\n")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: repoPath)).isSuperset(of: ["seed.txt", "d.txt", "dir", "outage"]))
        // rename and delete during the outage too
        #expect(rename(repoPath + "/d.txt", repoPath + "/dir/d2.txt") == 0)
        #expect(unlink(repoPath + "/dir/c.txt") == 0)

        // status reports the pending uploads and why they wait.
        let deadline = ContinuousClock.now + .seconds(30)
        var stalled = try await status()
        while stalled.lastError == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            stalled = try await status()
        }
        #expect(stalled.pendingUploads > 0)
        let lastError = try #require(stalled.lastError, "status never reported the failing upload")
        #expect(lastError.contains("127.0.0.1:\(server.port)"), "\(lastError)")
        #expect(!lastError.contains(server.adminKey))

        // Back on the same port and data: everything arrives.
        try await server.start()
        let after = try await waitForUploads(.seconds(120))
        let final = try #require(after.workingChangeId)
        try await offPool {
            for (path, text) in outageWrites {
                #expect(Self.serverFile(backend, "work", final, path) == Array(text.utf8), "\(path) did not arrive")
            }
            #expect(Self.serverFile(backend, "work", final, "dir/d2.txt") == Array("bravo\n".utf8))
            #expect(Self.serverFile(backend, "work", final, "d.txt") == nil)
            #expect(Self.serverFile(backend, "work", final, "dir/c.txt") == nil)
        }
        // A checkpoint moves the bookmark on the server (compare-and-swap through GET + PATCH).
        let saved = try await client.call(Checkpoint.self, .init(.id("acme/work"), .init(message: "through an outage")))
        #expect(saved.bookmark == "main")
        try await offPool {
            let main = try backend.bookmark(org: "acme", repo: "work", name: "main")
            #expect(main.changeID.rawValue == saved.savedChangeId)
            #expect(try backend.change(org: "acme", repo: "work", id: main.changeID).change.message == "through an outage")
            #expect(Self.serverFile(backend, "work", saved.savedChangeId, "outage/f39.txt") == outageWrites["outage/f39.txt"].map { Array($0.utf8) })
        }
        #expect(try await daemon.stop() == 0, "\(daemon.child.stderr.suffix(2000))")
    }

    @Test(.enabled(if: fuseAvailable, "needs root and /dev/fuse"))
    func mesaMountDaemonizedRecordsTheAPIURL() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        try await offPool { _ = try server.backend().createRepo(org: "acme", name: "tree", defaultBookmark: nil) }
        let mountPoint = sandbox.treeMountPoint
        defer {
            killRecordedDaemon(sandbox)
            MountedDaemon.lazyUnmount(mountPoint)
        }
        let mounted = try await Run.run("mesa", ["mount", "-d", "-y"], sandbox: sandbox, environment: Self.environment(server),
                                        timeout: .seconds(90))
        #expect(mounted.code == 0, "\(mounted.stdout) \(mounted.stderr)")
        let config = try String(contentsOfFile: sandbox.home + "/.config/mesa/config.toml", encoding: .utf8)
        #expect(config.contains("api-url = \"\(server.baseURL)\""), "\(config)")
        #expect(await eventually(timeout: .seconds(30)) { exists(mountPoint + "/acme/tree") })
        // Without the environment now: the config written on first boot is enough.
        let orgs = try await Run.run("mesa-client", ["list-orgs", "--json"], sandbox: sandbox)
        #expect(orgs.stdout.contains(server.baseURL), "\(orgs.stdout) \(orgs.stderr)")
    }
}
