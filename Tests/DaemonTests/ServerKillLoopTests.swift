import Foundation
import MesaAPI
import Model
import Store
import Synchronization
import Testing

/// `kill -9` of mesa-server under concurrent REST writes: every write it answered 201
/// or 200 is there after the restart, and its git repositories pass `git fsck --strict`.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct ServerKillLoopTests {
    static let cycles = Int(ProcessInfo.processInfo.environment["MESA_SERVER_KILL_CYCLES"] ?? "") ?? 30

    final class Log: Sendable {
        let records = Mutex<[Answered]>([])
    }

    struct Answered: Sendable {
        var change: ChangeID
        var path: String
        var bytes: [UInt8]
        var bookmark: String?
    }

    /// Creates changes (and every third time a bookmark on it) until a call fails.
    static func write(_ backend: HTTPBackend, writer: Int, cycle: Int, into answered: Log) {
        for serial in 0... {
            let path = "w\(writer)/c\(cycle)-\(serial).txt"
            let bytes = Array("writer \(writer) cycle \(cycle) write \(serial)\n".utf8)
            guard let change = try? backend.createChange(org: "acme", repo: "load", base: .root, message: path,
                                                         files: [.upsert(path: path, content: bytes)]) else { return }
            var record = Answered(change: change.id, path: path, bytes: bytes)
            answered.records.withLock { $0.append(record) }
            if serial % 3 == 0 {
                let name = "b/\(writer)-\(cycle)-\(serial)"
                guard (try? backend.createBookmark(org: "acme", repo: "load", name: name, at: change.id)) != nil else { return }
                record.bookmark = name
                answered.records.withLock { $0[$0.count - 1] = record }
            }
        }
    }

    @Test func killNineOfMesaServerLosesNoAnsweredWrite() async throws {
        let sandbox = try Sandbox()
        let server = try await APIServerProcess.start(sandbox)
        defer { server.stop() }
        // One attempt per call: a write counts only if this very call was answered.
        let backend = server.backend { $0.maxAttempts = 1; $0.requestTimeout = .seconds(10) }
        try await offPool { _ = try backend.createRepo(org: "acme", name: "load", defaultBookmark: nil) }
        let answered = Log()
        var problems: [String] = []
        for cycle in 0..<Self.cycles {
            let writers = (0..<4).map { writer in
                Task { await offPool { Self.write(backend, writer: writer, cycle: cycle, into: answered) } }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 100...400)))
            server.stop()
            for writer in writers { await writer.value }
            try await server.start()
            let records = answered.records.withLock { $0 }
            problems += try await offPool {
                records.compactMap { record -> String? in
                    guard let detail = try? backend.change(org: "acme", repo: "load", id: record.change) else {
                        return "change \(record.change) (\(record.path)) answered 201 but is gone"
                    }
                    _ = detail
                    guard case .file(_, let bytes, _, _)? = try? backend.content(org: "acme", repo: "load", at: .change(record.change),
                                                                               path: record.path, depth: 0),
                          bytes == record.bytes else {
                        return "\(record.path) is not what change \(record.change) wrote"
                    }
                    if let name = record.bookmark, (try? backend.bookmark(org: "acme", repo: "load", name: name))?.changeID != record.change {
                        return "bookmark \(name) answered 201 but is not at \(record.change)"
                    }
                    return nil
                }
            }
            problems += KillLoopTests.fsck(server.dataDirectory)
            if !problems.isEmpty { break }
        }
        let records = answered.records.withLock { $0 }
        print("server-kill-loop: cycles=\(Self.cycles) answered-writes=\(records.count) "
              + "bookmarks=\(records.filter { $0.bookmark != nil }.count) lost=\(problems.count)")
        #expect(problems.isEmpty, "\(problems.prefix(10))")
        #expect(records.count > Self.cycles, "the writers were answered almost nothing; the loop proved little")
    }
}
