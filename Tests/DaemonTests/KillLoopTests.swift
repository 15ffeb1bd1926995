import Foundation
import MesaProtocol
import Synchronization
import Testing

/// What a writer has been told is done: path → content, for every create, append,
/// rename and delete whose call returned success (closes and fsyncs included). The one
/// call the kill interrupted is "in flight": its paths may hold either state.
final class AcknowledgedTree: Sendable {
    struct State {
        var files: [String: [UInt8]] = [:]
        var inFlight: Set<String> = []
        var operations = 0
    }
    let state = Mutex(State())
}

/// `kill -9` of mesad, again and again, under a writer that creates, appends, renames,
/// deletes and fsyncs: after every restart each acknowledged byte is in the mount, and
/// the store's git repositories pass `git fsck --strict`.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct KillLoopTests {
    /// 100 cycles unless MESA_KILL_CYCLES says otherwise; stops early at the time budget
    /// (MESA_KILL_SECONDS, default 360) so a slow machine cannot hang CI.
    static let cycles = Int(ProcessInfo.processInfo.environment["MESA_KILL_CYCLES"] ?? "") ?? 100
    static let budget = Duration.seconds(Int(ProcessInfo.processInfo.environment["MESA_KILL_SECONDS"] ?? "") ?? 360)

    /// Runs random operations in `directory` until one fails (the daemon died).
    static func write(_ directory: String, cycle: Int, tree: AcknowledgedTree) {
        var rng = SystemRandomNumberGenerator()
        var serial = 0
        while true {
            let files = tree.state.withLock { Array($0.files.keys) }
            let existing = files.randomElement(using: &rng)
            serial += 1
            let fresh = "c\(cycle)-\(serial).txt"
            let roll = Int.random(in: 0..<10, using: &rng)
            let ok: Bool
            if roll < 4 || existing == nil || (files.count < 20 && roll < 6) {
                let bytes = Array("cycle \(cycle) file \(serial)\n\(String(repeating: "x", count: serial % 300))\n".utf8)
                ok = perform([fresh], tree) { put(directory + "/" + fresh, bytes, append: false, sync: serial % 3 == 0) }
                if ok { tree.state.withLock { $0.files[fresh] = bytes } }
            } else if roll < 6, let existing {
                let more = Array("appended in \(cycle)/\(serial)\n".utf8)
                ok = perform([existing], tree) { put(directory + "/" + existing, more, append: true, sync: true) }
                if ok { tree.state.withLock { $0.files[existing, default: []] += more } }
            } else if roll < 8, let existing {
                ok = perform([existing, fresh], tree) { rename(directory + "/" + existing, directory + "/" + fresh) == 0 }
                if ok { tree.state.withLock { $0.files[fresh] = $0.files.removeValue(forKey: existing) } }
            } else if let existing, files.count > 40 || roll == 9 {
                ok = perform([existing], tree) { unlink(directory + "/" + existing) == 0 }
                if ok { tree.state.withLock { _ = $0.files.removeValue(forKey: existing) } }
            } else {
                continue
            }
            if !ok { return }
        }
    }

    /// Marks `paths` in flight while `body` runs; they stay so if it fails.
    static func perform(_ paths: [String], _ tree: AcknowledgedTree, _ body: () -> Bool) -> Bool {
        tree.state.withLock { $0.inFlight = Set(paths) }
        guard body() else { return false }
        tree.state.withLock {
            $0.inFlight = []
            $0.operations += 1
        }
        return true
    }

    static func put(_ path: String, _ bytes: [UInt8], append: Bool, sync: Bool) -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o644)
        guard descriptor >= 0 else { return false }
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let synced = sync ? fsync(descriptor) : 0
        return close(descriptor) == 0 && written == bytes.count && synced == 0
    }

    /// Checks every acknowledged file outside the in-flight paths; adopts what the
    /// in-flight paths hold. Returns (bytes checked, bytes lost, problems).
    static func verify(_ directory: String, _ tree: AcknowledgedTree) -> (checked: Int, lost: Int, problems: [String]) {
        tree.state.withLock { state in
            var checked = 0, lost = 0
            var problems: [String] = []
            for (name, expected) in state.files where !state.inFlight.contains(name) {
                let actual = FileManager.default.contents(atPath: directory + "/" + name).map { [UInt8]($0) }
                checked += expected.count
                if actual != expected {
                    lost += expected.count
                    problems.append("\(name): expected \(expected.count) bytes, found \(actual.map { "\($0.count) other bytes" } ?? "nothing")")
                }
            }
            for name in state.inFlight {
                state.files[name] = FileManager.default.contents(atPath: directory + "/" + name).map { [UInt8]($0) }
            }
            state.inFlight = []
            // No file the writer never made or already removed may appear.
            let listed = Set((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            for name in listed.subtracting(state.files.keys) where !name.hasPrefix(".") {
                problems.append("\(name) exists but was deleted or renamed away")
            }
            return (checked, lost, problems)
        }
    }

    /// `git fsck --strict` of every repository in the store; the failures' output.
    static func fsck(_ storeDirectory: String) -> [String] {
        let repos = storeDirectory + "/repos"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: repos)) ?? []
        return names.compactMap { name in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/git")
            process.arguments = ["-C", repos + "/" + name, "fsck", "--strict", "--no-progress", "--no-dangling"]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            guard (try? process.run()) != nil else { return "\(name): git did not start" }
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return process.terminationStatus == 0 ? nil : "\(name): \(output.suffix(1000))"
        }
    }

    @Test(.enabled(if: MountCrashTests.available, "needs root and /dev/fuse"))
    func killNineLoopLosesNoAcknowledgedByteAndKeepsTheStoreClean() async throws {
        let sandbox = try Sandbox()
        let mountPoint = sandbox.home + "/.local/share/mesa/mnt"
        var daemon = try await DaemonProcess.start(sandbox, arguments: ["--mount"])
        defer {
            daemon.kill()
            _ = try? Process.run(URL(fileURLWithPath: "/bin/fusermount3"), arguments: ["-u", "-z", mountPoint]).waitUntilExit()
        }
        let client = try daemon.client()
        _ = try await client.call(CreateRepo.self, .init(name: "loop"))
        client.close()
        let repoPath = mountPoint + "/local/loop"
        #expect(await eventually { FileManager.default.fileExists(atPath: repoPath) })

        let tree = AcknowledgedTree()
        let start = ContinuousClock.now
        var cycles = 0, checked = 0, lost = 0
        while cycles < Self.cycles, ContinuousClock.now - start < Self.budget {
            let cycle = cycles
            let writer = Task { await offPool { Self.write(repoPath, cycle: cycle, tree: tree) } }
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...400)))
            kill(daemon.pid, SIGKILL)
            await writer.value
            let killed = daemon
            _ = await offPool { killed.child.wait(timeout: .seconds(10)) }

            daemon = try await DaemonProcess.start(sandbox)
            let remounted = await eventually(timeout: .seconds(120)) { FileManager.default.fileExists(atPath: repoPath) }
            try #require(remounted, "cycle \(cycles): the repo did not come back; mesad said: \(daemon.child.stderr.suffix(3000))")
            let result = await offPool { Self.verify(repoPath, tree) }
            checked += result.checked
            lost += result.lost
            #expect(result.problems.isEmpty, "cycle \(cycles): \(result.problems.prefix(10))")
            let broken = await offPool { Self.fsck(sandbox.paths.storeDirectory) }
            #expect(broken.isEmpty, "cycle \(cycles): git fsck --strict: \(broken)")
            cycles += 1
            if !result.problems.isEmpty || !broken.isEmpty { break }
        }
        let operations = tree.state.withLock { $0.operations }
        print("kill-loop: cycles=\(cycles) acknowledged-operations=\(operations) bytes-checked=\(checked) bytes-lost=\(lost) "
              + "seconds=\((ContinuousClock.now - start).components.seconds)")
        #expect(lost == 0)
        #expect(cycles >= min(Self.cycles, 10), "only \(cycles) cycles ran within the time budget")
        #expect(operations > cycles, "the writer acknowledged almost nothing; the loop proved little")
    }
}
