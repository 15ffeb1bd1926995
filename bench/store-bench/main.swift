// Store benchmark: the same work done by the store and by `git` on this machine, in the
// same run, printed side by side with the ratio. Run with `bash bench/store.sh`.
import Foundation
import Model
import Store

let fileCount = Int(ProcessInfo.processInfo.environment["BENCH_FILES"] ?? "") ?? 10_000
let rounds = Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("store-bench-\(getpid())").path
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: scratch) }

/// 1 KiB of deterministic, mostly-incompressible text per file.
func fileBytes(_ index: Int) -> [UInt8] {
    var state = UInt64(index) &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<1024).map { offset in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return offset % 64 == 63 ? 0x0A : UInt8(0x21 + state % 90)
    }
}

func name(_ index: Int) -> String { String(format: "files/f%05d.txt", index) }

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

@discardableResult
func shell(_ command: String, in directory: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var environment = ProcessInfo.processInfo.environment
    environment["GIT_AUTHOR_NAME"] = "bench"; environment["GIT_AUTHOR_EMAIL"] = "bench@localhost"
    environment["GIT_COMMITTER_NAME"] = "bench"; environment["GIT_COMMITTER_EMAIL"] = "bench@localhost"
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw MesaError(.internal, "command failed: \(command)") }
    return String(decoding: data, as: UTF8.self)
}

func timed(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    return seconds(clock.now - start)
}

let files = (0..<fileCount).map { FileOperation.upsert(path: name($0), content: fileBytes($0), mode: .regular) }

// 1. Commit 10,000 files: store.createChange vs `git add -A && git commit` of the same tree.
var storeCommit: [Double] = []
var gitCommit: [Double] = []
var store: Store!
var change: Change!
for round in 0..<rounds {
    let storeDirectory = scratch + "/store-\(round)"
    store = try Store(directory: storeDirectory)
    _ = try store.createOrg(slug: "bench")
    _ = try store.createRepo(org: "bench", name: "workspace")
    storeCommit.append(try timed {
        change = try store.createChange(org: "bench", repo: "workspace", base: .root, message: "import", files: files)
    })

    let work = scratch + "/git-\(round)"
    try FileManager.default.createDirectory(atPath: work + "/files", withIntermediateDirectories: true)
    for index in 0..<fileCount {
        FileManager.default.createFile(atPath: work + "/" + name(index), contents: Data(fileBytes(index)))
    }
    try shell("git init -q .", in: work)
    gitCommit.append(try timed { try shell("git add -A && git commit -q -m import", in: work) })
}
let gitWork = scratch + "/git-\(rounds - 1)"
// Reads compare against git at its best: everything in one pack, as after `git gc`.
try shell("git repack -adq", in: gitWork)

// 2. Read every file's content at the change vs `git cat-file --batch`.
let batchInput = scratch + "/batch.txt"
try (0..<fileCount).map { "HEAD:" + name($0) }.joined(separator: "\n").appending("\n")
    .write(toFile: batchInput, atomically: true, encoding: .utf8)
var storeRead: [Double] = []
var gitRead: [Double] = []
for _ in 0..<rounds {
    storeRead.append(try timed {
        for index in 0..<fileCount {
            guard case .file(_, let bytes, _, _) = try store.content(org: "bench", repo: "workspace", at: .change(change.id), path: name(index)),
                  bytes.count == 1024 else { throw MesaError(.internal, "bad read of \(name(index))") }
        }
    })
    gitRead.append(try timed { try shell("git cat-file --batch < \(batchInput) > /dev/null", in: gitWork) })
}

// 2b. The same reads by blob id: no path resolution on either side.
guard case .directory(_, _, let listed) = try store.content(org: "bench", repo: "workspace", at: .change(change.id), path: "files") else {
    throw MesaError(.internal, "files/ is not a directory")
}
let oidInput = scratch + "/oids.txt"
try listed.map(\.oid).joined(separator: "\n").appending("\n").write(toFile: oidInput, atomically: true, encoding: .utf8)
var storeBlobRead: [Double] = []
var gitBlobRead: [Double] = []
for _ in 0..<rounds {
    storeBlobRead.append(try timed {
        for entry in listed {
            guard try store.blob(org: "bench", repo: "workspace", oid: entry.oid).count == 1024 else {
                throw MesaError(.internal, "bad read of \(entry.path)")
            }
        }
    })
    gitBlobRead.append(try timed { try shell("git cat-file --batch < \(oidInput) > /dev/null", in: gitWork) })
}

// 3. List a directory of 10,000 entries (names, modes, sizes) vs `git ls-tree -l`.
var storeList: [Double] = []
var gitList: [Double] = []
for _ in 0..<rounds {
    storeList.append(try timed {
        guard case .directory(_, _, let entries) = try store.content(org: "bench", repo: "workspace", at: .change(change.id), path: "files"),
              entries.count == fileCount else { throw MesaError(.internal, "bad listing") }
    })
    gitList.append(try timed { try shell("git ls-tree -l HEAD files/ > /dev/null", in: gitWork) })
}

func row(_ label: String, _ ours: Double, _ theirs: Double, perFile: Bool = false) {
    let scale = perFile ? 1e6 / Double(fileCount) : 1e3
    let unit = perFile ? "µs/file" : "ms"
    func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
    print(pad(label, 46) + String(format: "%10.2f ", ours * scale) + pad(unit, 8)
          + String(format: "%10.2f ", theirs * scale) + pad(unit, 8) + String(format: "%7.2f×", ours / theirs))
}

print("store benchmark: \(fileCount) files of 1 KiB, median of \(rounds) rounds")
print("operation".padding(toLength: 46, withPad: " ", startingAt: 0) + "     store           git            ratio")
row("create change with all files (git add+commit)", median(storeCommit), median(gitCommit))
row("read every file by path (HEAD:path, packed)", median(storeRead), median(gitRead), perFile: true)
row("read every blob by id (packed git cat-file)", median(storeBlobRead), median(gitBlobRead), perFile: true)
row("list directory (git ls-tree -l)", median(storeList), median(gitList))
print("ratio = store time / git time; below 1 means the store is faster")

// 5. The cost of the webhook outbox on small writes: amend a one-file change that a
// bookmark names, with no webhook target and with one target that wants every event (each
// amend then writes change.evolved + push and their deliveries in its transaction).
let amends = Int(ProcessInfo.processInfo.environment["BENCH_AMENDS"] ?? "") ?? 200
func amendLoop(withTarget: Bool) throws -> Double {
    let directory = scratch + "/amends-\(withTarget)"
    let amendStore = try Store(directory: directory)
    _ = try amendStore.createOrg(slug: "bench")
    _ = try amendStore.createRepo(org: "bench", name: "small")
    if withTarget {
        _ = try amendStore.createWebhookTarget(org: "bench", name: nil, url: "http://127.0.0.1:9/", events: nil, repoIDs: nil)
    }
    let small = try amendStore.createChange(org: "bench", repo: "small", base: .root, files: [.upsert(path: "a", content: [1])])
    _ = try amendStore.moveBookmark(org: "bench", repo: "small", bookmark: "main", to: small.id)
    return try timed {
        for index in 0..<amends {
            _ = try amendStore.updateChange(org: "bench", repo: "small", id: small.id, files: [.upsert(path: "a", content: Array("\(index)".utf8))])
        }
    } / Double(amends)
}
var plainAmend: [Double] = []
var hookedAmend: [Double] = []
for _ in 0..<rounds {
    plainAmend.append(try amendLoop(withTarget: false))
    hookedAmend.append(try amendLoop(withTarget: true))
    try? FileManager.default.removeItem(atPath: scratch + "/amends-false")
    try? FileManager.default.removeItem(atPath: scratch + "/amends-true")
}
print(String(format: "amend a bookmarked change (%d×, ms each): no webhook target %.3f, one all-events target %.3f (%.2f×)",
             amends, median(plainAmend) * 1e3, median(hookedAmend) * 1e3, median(hookedAmend) / median(plainAmend)))
