import Foundation
import Model
import Store
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension E2E {
    /// The durability promise through the real processes: kill -9 of mesad under a writer,
    /// a clean stop with files held open.
    @Suite(.timeLimit(.minutes(10)))
    struct Crash {
        /// What the writer puts in round `round`'s file `index` (1 to 7 lines).
        static func content(_ round: Int, _ index: Int) -> String {
            String(repeating: "round \(round) file \(index)\n", count: index % 7 + 1)
        }

        static func lines(_ path: String) -> [Int] {
            (read(path) ?? "").split(separator: "\n").compactMap { Int($0) }
        }

        @Test("kill -9 of mesad under a fsyncing writer, three times: the restart clears the stale mount, remounts, and every fsynced file is there")
        func killNineUnderAWriter() async throws {
            let home = try Home()
            defer { home.close() }
            try await home.ok(["mesa", "mount", "-d", "-y"], timeout: .seconds(150))
            try await home.ok(["mesa-client", "create-repo", "crash"])
            let repo = home.repo("crash")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })

            var completed: [Int: [Int]] = [:]
            for round in 0..<3 {
                // A shell writer: each file written by dd with conv=fsync; its number is
                // logged (outside the mount) only once dd has returned successfully.
                let log = "\(home.root)/completed-\(round).txt"
                let writer = try home.spawn(["/bin/sh", "-c", """
                    i=0
                    while [ $i -lt 5000 ]; do
                        seq 1 $((i % 7 + 1)) | sed "s/.*/round \(round) file $i/" | dd of=r\(round)-$i.txt conv=fsync status=none || exit 0
                        echo $i >> \(log)
                        i=$((i + 1))
                    done
                    """], in: repo)
                // Kill once the writer is well under way (a different point each round).
                let target = 15 + 20 * round
                #expect(await eventually(timeout: .seconds(120)) { Self.lines(log).count >= target }, "the writer stalled: \(writer.stderr)")
                let daemon = try home.daemon()
                try await offPool { daemon.kill() }
                #expect(!daemon.isAlive)
                #expect(try await offPool { writer.exitCode(timeout: .seconds(60)) } != nil, "the writer hung on the dead mount")
                completed[round] = Self.lines(log)
                #expect(isStale(home.mountPoint), "after kill -9 the mount point should be a dead FUSE mount")
                // A supervisor restarts the daemon seconds later, not within the kernel's
                // attribute timeout (1 s): by then even stat of the mount point fails.
                try await Task.sleep(for: .milliseconds(1500))

                // `mesad -d` clears the dead mount, mounts the tree again, replays the journal.
                let restarted = try await home.startDaemon()
                #expect(restarted != daemon)
                #expect(await eventually(timeout: .seconds(120)) { FileManager.default.fileExists(atPath: repo) },
                        "the repo did not come back after round \(round): \(home.logTail)")
                #expect(!isStale(home.mountPoint))
                #expect((read(home.daemonLog) ?? "").components(separatedBy: "clearing a stale mount").count - 1 == round + 1,
                        "mesad's log does not report clearing the stale mount")
                #expect(home.mounts.filter { $0 == home.mountPoint }.count == 1, "mounts: \(home.mounts)")
                for (earlier, indexes) in completed {
                    for index in indexes {
                        let path = "\(repo)/r\(earlier)-\(index).txt"
                        #expect(read(path) == Self.content(earlier, index), "\(path) lost or wrong after kill -9 in round \(round)")
                    }
                }
            }
            let total = completed.values.map(\.count).reduce(0, +)
            #expect(total >= 15 + 35 + 55)

            // All of it reaches the store.
            let saved = try await home.ok(["mesa", "checkpoint", "-m", "after three crashes"], in: repo, timeout: .seconds(120))
            #expect(saved.contains("main moved onto it"), "\(saved)")
            let clone = home.root + "/clone"
            try await home.ok(["/usr/bin/git", "clone", "-q", try await bareRepo(home, repo: "crash"), clone], timeout: .seconds(120))
            let stored = try walk(clone)
            for (round, indexes) in completed {
                for index in indexes {
                    #expect(stored["r\(round)-\(index).txt"] == .file(Self.content(round, index)), "r\(round)-\(index).txt in the store")
                }
            }
        }

        @Test("SIGTERM to a foreground `mesa mount` with files held open: exit 0, unmounted, written data in the store")
        func sigtermWithOpenFiles() async throws {
            let home = try Home()
            defer { home.close() }
            // Foreground `mesa mount` becomes mesad itself: our child, so its exit code is ours to see.
            let foreground = try home.spawn(["mesa", "mount", "-y"])
            #expect(await eventually(timeout: .seconds(120)) { home.isMounted(home.mountPoint) }, "\(foreground.stderr)")
            #expect(await eventually { home.noteDaemon()?.pid == foreground.pid }, "`mesa mount` should exec mesad in the foreground")
            try await home.ok(["mesa-client", "create-repo", "--no-start", "busy"])
            let repo = home.repo("busy")
            #expect(await eventually { FileManager.default.fileExists(atPath: repo) })

            let fsynced = open(repo + "/fsynced.txt", O_WRONLY | O_CREAT, 0o644)
            let unsynced = open(repo + "/written.txt", O_WRONLY | O_CREAT, 0o644)
            try #require(fsynced >= 0 && unsynced >= 0)
            let first = Array("fsynced, held open\n".utf8)
            let second = Array("written, not fsynced, held open\n".utf8)
            #expect(first.withUnsafeBytes { Glibc.write(fsynced, $0.baseAddress, $0.count) } == first.count)
            #expect(fsync(fsynced) == 0)
            #expect(second.withUnsafeBytes { Glibc.write(unsynced, $0.baseAddress, $0.count) } == second.count)

            foreground.signal(SIGTERM)
            let code = try await offPool { foreground.exitCode(timeout: .seconds(90)) }
            _ = Glibc.close(fsynced)
            _ = Glibc.close(unsynced)
            #expect(code == 0, "mesad exited \(String(describing: code)): \(foreground.stderr.suffix(2000))")
            #expect(!home.isMounted(home.mountPoint), "still mounted after a clean stop")
            #expect(foreground.stderr.contains("busy"), "the busy mount was not reported")

            // The store (opened directly: no daemon holds it now) has both files in the working change.
            let store = try Store(directory: home.data + "/store")
            let newest = try #require(try store.listChanges(org: "local", repo: "busy").items.first, "shutdown uploaded nothing")
            for (name, bytes) in [("fsynced.txt", first), ("written.txt", second)] {
                guard case .file(_, let stored, _, _) = try store.content(org: "local", repo: "busy", at: .change(newest.id), path: name) else {
                    Issue.record("\(name) is missing from the store")
                    continue
                }
                #expect(stored == bytes, "\(name)")
            }
        }
    }
}
