import Dispatch
import Foundation
import Synchronization

/// One namespace change, as the journal records it. Paths are repository-relative.
/// Replaying the records in order on top of the header's change rebuilds the mount's
/// local edits; every record is idempotent enough that replaying one already uploaded
/// (a crash between an upload and the compaction that follows it) does no harm.
enum JournalRecord: Codable, Sendable, Equatable {
    /// A regular file. Its bytes are `inline` when present (small files, written at
    /// close: the record itself is the durable copy and `data` was never synced), else
    /// the data file `data`: fdatasynced before this record was appended when the record
    /// was made at an fsync (or at any close with `durability = close`), else holding
    /// what the kernel was given, which a kill -9 of mesad cannot lose.
    /// `inline` is absent in journals written before it existed.
    case file(path: String, data: UInt64, permissions: UInt32, inline: Data? = nil)
    case symlink(path: String, target: String)
    case mkdir(path: String, permissions: UInt32)
    /// unlink or rmdir.
    case remove(path: String)
    case rename(from: String, to: String)
    case chmod(path: String, permissions: UInt32)
    /// A FIFO, socket or device node (local layer only, never uploaded).
    case special(path: String, kind: NodeKind, permissions: UInt32, rdev: UInt64)
    /// A hard link: `to` names the same node as `from`.
    case link(from: String, to: String)
    /// Owner and every permission bit of the node at `path` (the executable bit of a
    /// file is also versioned; the rest lives in the local layer).
    case attributes(path: String, permissions: UInt32, uid: UInt32, gid: UInt32)
}

/// The versioning state a journal is relative to, written as its first line.
struct JournalHeader: Codable, Sendable, Equatable {
    var format = 1
    var org: String
    var repo: String
    /// The bookmark checkpoints move, if the mount targets one.
    var bookmark: String?
    /// Where the bookmark was when this mount last saw it (compare-and-swap witness).
    var bookmarkExpected: String?
    /// The change new working changes are created on.
    var base: String
    /// The change flushes amend, once the first flush created it.
    var working: String?
    /// Timestamp reported for unmodified files.
    var baseTime: Timestamp
}

private struct JournalLine: Codable {
    var seq: UInt64
    var record: JournalRecord
}

/// A mount's journal directory: `manifest` (a header line, then one JSON record per
/// line) and `data/<id>` files holding the bytes of every file written on the mount.
/// Records are appended without fsync; `sync()` makes everything appended so far
/// durable, and the core calls it before fsync/close return. After an upload,
/// `compact` rewrites the manifest without the records it covered.
///
/// What a durable close costs, and why no more:
/// - Data files come from a pool created 64 at a time with one directory fsync, so a
///   data file's directory entry is durable before it is ever used; no per-file
///   directory fsync.
/// - Files of at most `inlineLimit` bytes are recorded with their bytes inline: the
///   journal fsync alone makes them durable (an empty `touch`ed file costs one fsync).
/// - Larger files: fdatasync of the data file, then the record, then the journal fsync.
/// Invariant: a `.file` record without `inline` appended by an fsync (or by a close with
/// `durability = close`) comes after its data file was fdatasynced (`durableContent`),
/// so replay may trust it after a power loss; others are trusted after a kill -9 only,
/// which is all an unsynced close promises on any local filesystem (with `durability =
/// close`, the close of an ephemeral `.mesaignore` file is such an unsynced one too).
final class Journal: Sendable {
    private struct State {
        var descriptor: Int32 = -1
        var lastSeq: UInt64 = 0
        /// Records appended, and how many of them a completed fdatasync (or rewrite)
        /// covers: sync() returns only once its own appends are covered, never because
        /// another thread's sync is merely under way.
        var appended: UInt64 = 0
        var synced: UInt64 = 0
        var nextData: UInt64 = 1
        /// Empty data files whose directory entries are already durable.
        var pool: [UInt64] = []
        var compactedBytes: Int = 0
        /// A background refill of the pool is under way.
        var refilling = false
        var bytes: Int = 0
        /// While replaying, the records being applied are already in the manifest.
        var muted = false
        /// A rewrite replaced the manifest without syncing it or its directory entry: the
        /// next `sync()` must sync both, or an fsync'ed append could sit in a file that a
        /// power loss takes back to the previous manifest.
        var rewriteUnsynced = false
    }

    let directory: String
    var manifestPath: String { directory + "/manifest" }
    var dataDirectory: String { directory + "/data" }
    private let state = Mutex(State())
    /// Background refills under way (`waitForRefills`).
    private let refills = DispatchGroup()
    /// Held while the pool is refilled, so one creator refills and the others wait.
    private let refillLock = Mutex(())
    /// Files up to this size are journaled inline at close instead of syncing their data file.
    static let inlineLimit = 4096
    static let poolBatch = 64
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Held (flock) for the journal's life: two mounts on one journal would corrupt it.
    private let lockDescriptor: Int32
    private let lockReleased = Mutex(false)

    init(directory: String) throws(FSError) {
        self.directory = directory
        for path in [directory, directory + "/data"] {
            guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw FSError.posix("cannot create journal directory \(path)") }
        }
        lockDescriptor = open(directory + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockDescriptor >= 0 else { throw FSError.posix("cannot open \(directory)/lock") }
        guard flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(lockDescriptor)
            throw FSError(EBUSY, "journal \(directory) is in use by another mount; unmount it first or use another journal directory")
        }
        let maxData = ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/data")) ?? [])
            .compactMap { UInt64($0) }.max() ?? 0
        state.withLock { $0.nextData = maxData + 1 }
    }

    deinit {
        state.withLock { state in if state.descriptor >= 0 { close(state.descriptor) } }
        releaseLock()
    }

    /// Lets another mount open this journal. The mount calls it when it goes away (after
    /// its background work stopped), since a refill thread may hold the journal object
    /// a moment longer than the mount.
    func releaseLock() {
        let first = lockReleased.withLock { released in defer { released = true }; return !released }
        if first { close(lockDescriptor) }
    }

    /// Reads an existing journal: nil when there is none (a fresh mount). A torn last
    /// line (a crash during an append) is ignored: it was never synced, so never promised.
    func load() throws(FSError) -> (header: JournalHeader, records: [JournalRecord])? {
        guard FileManager.default.fileExists(atPath: manifestPath) else { return nil }
        let bytes = try readFile(manifestPath)
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        guard let first = lines.first else { return nil }
        let decoder = JSONDecoder()
        guard let header = try? decoder.decode(JournalHeader.self, from: Data(first)) else {
            throw FSError(EIO, "journal \(manifestPath) has an unreadable header; move the directory away to start afresh")
        }
        var records: [JournalRecord] = []
        var lastSeq: UInt64 = 0
        for line in lines.dropFirst() {
            guard let entry = try? decoder.decode(JournalLine.self, from: Data(line)) else { break }
            records.append(entry.record)
            lastSeq = max(lastSeq, entry.seq)
        }
        state.withLock { $0.lastSeq = lastSeq }
        return (header, records)
    }

    var lastSeq: UInt64 { state.withLock { $0.lastSeq } }

    func setMuted(_ muted: Bool) { state.withLock { $0.muted = muted } }
    var isMuted: Bool { state.withLock { $0.muted } }

    /// Appends a record (not yet durable) and returns its sequence number.
    @discardableResult
    func append(_ record: JournalRecord) throws(FSError) -> UInt64 {
        try append([record])
    }

    /// Appends records all or nothing, in one write: if the disk is full (or any write
    /// fails), the manifest is cut back to where it was, so no torn line hides the
    /// records appended after it from a replay, and the caller changes nothing.
    @discardableResult
    func append(_ records: [JournalRecord]) throws(FSError) -> UInt64 {
        try state.withLock { state throws(FSError) -> UInt64 in
            if state.muted || records.isEmpty { return state.lastSeq }
            guard state.descriptor >= 0 else { throw FSError(EIO, "journal \(directory) is not open") }
            var bytes: [UInt8] = []
            var seq = state.lastSeq
            for record in records {
                seq += 1
                guard let line = try? encoder.encode(JournalLine(seq: seq, record: record)) else {
                    throw FSError(EIO, "cannot encode journal record")
                }
                bytes += line
                bytes.append(UInt8(ascii: "\n"))
            }
            do throws(FSError) {
                try writeAll(state.descriptor, bytes, path: manifestPath)
            } catch {
                _ = ftruncate(state.descriptor, off_t(state.bytes))
                throw error
            }
            state.lastSeq = seq
            state.appended += UInt64(records.count)
            state.bytes += bytes.count
            return state.lastSeq
        }
    }

    /// Makes every record appended so far durable. Free when nothing was appended since
    /// the last completed sync (a close after an fsync, a release after its flush).
    func sync() throws(FSError) {
        let pending: (target: UInt64, descriptor: Int32, rewrite: Bool)? = state.withLock { state in
            guard state.synced < state.appended || state.rewriteUnsynced, state.descriptor >= 0 else { return nil }
            return (state.appended, state.descriptor, state.rewriteUnsynced)
        }
        guard let pending else { return }
        if pending.rewrite {
            // Under the lock: a concurrent rewrite must not swap the file in between.
            try state.withLock { state throws(FSError) in
                guard state.rewriteUnsynced, state.descriptor >= 0 else { return }
                guard fdatasync(state.descriptor) == 0 else { throw FSError.posix("cannot fsync journal \(manifestPath)") }
                syncDirectory(directory)
                state.rewriteUnsynced = false
                state.synced = max(state.synced, state.appended)
            }
            return
        }
        if fdatasync(pending.descriptor) != 0 {
            let error = FSError.posix("cannot fsync journal \(manifestPath)")
            // A concurrent rewrite replaced (and closed) the descriptor: its new manifest,
            // fsynced, already holds our records.
            if state.withLock({ $0.synced >= pending.target }) { return }
            throw error
        }
        state.withLock { $0.synced = max($0.synced, pending.target) }
    }

    /// Replaces the manifest by `header`, then `prefix`, then the existing records
    /// `keep` selects (in their order), atomically: temporary file, fsync, rename, fsync
    /// of the directory. Callers hold the core's state lock, so no append interleaves.
    /// With `sync: false` nothing is synced now; the next `sync()` syncs the new manifest
    /// and its directory entry (the old manifest, a superset, stays valid until then).
    func rewrite(header: JournalHeader, prefix: [JournalRecord] = [], sync: Bool = true,
                 keep: (UInt64, JournalRecord) -> Bool = { _, _ in false }) throws(FSError) {
        try state.withLock { state throws(FSError) in
            var kept: [JournalLine] = []
            if let existing = try? readFile(manifestPath) {
                let decoder = JSONDecoder()
                for line in existing.split(separator: UInt8(ascii: "\n")).dropFirst() {
                    guard let entry = try? decoder.decode(JournalLine.self, from: Data(line)) else { break }
                    if keep(entry.seq, entry.record) { kept.append(entry) }
                }
            }
            // Kept records keep their sequence numbers: a flush compares them with the
            // number it snapshotted before uploading, and a rewrite in between (the new
            // working change's header) must not make uploaded records look newer. The
            // prefix (state rebuilt from the tree, regenerated by every compaction) is
            // numbered 0, older than any snapshot.
            let seq = state.lastSeq
            var bytes: [UInt8] = []
            guard let head = try? encoder.encode(header) else { throw FSError(EIO, "cannot encode journal header") }
            bytes += head
            bytes.append(UInt8(ascii: "\n"))
            for line in prefix.map({ JournalLine(seq: 0, record: $0) }) + kept {
                guard let encoded = try? encoder.encode(line) else {
                    throw FSError(EIO, "cannot encode journal record")
                }
                bytes += encoded
                bytes.append(UInt8(ascii: "\n"))
            }
            let temporary = manifestPath + ".tmp"
            try writeFile(temporary, bytes, sync: sync)
            guard rename(temporary, manifestPath) == 0 else { throw FSError.posix("cannot replace \(manifestPath)") }
            if sync { syncDirectory(directory) }
            state.rewriteUnsynced = !sync
            if state.descriptor >= 0 { close(state.descriptor) }
            state.descriptor = open(manifestPath, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard state.descriptor >= 0 else { throw FSError.posix("cannot open \(manifestPath)") }
            state.lastSeq = seq
            state.synced = state.appended  // every record is in the new, fsynced manifest
            state.bytes = bytes.count
            state.compactedBytes = bytes.count
        }
    }

    // MARK: Data files

    func dataPath(_ id: UInt64) -> String { dataDirectory + "/" + String(id) }

    /// Hands out an empty data file from the pool and returns its id and a read-write
    /// descriptor. Its directory entry is already durable: a record referring to it
    /// only needs the file's own fdatasync (or nothing, for inline records).
    func createData() throws(FSError) -> (id: UInt64, descriptor: Int32) {
        let id = try takeFromPool()
        let fd = open(dataPath(id), O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.posix("cannot open journal data file \(dataPath(id))") }
        return (id, fd)
    }

    private func takeFromPool() throws(FSError) -> UInt64 {
        let id: UInt64
        if let taken = state.withLock({ $0.pool.popLast() }) {
            id = taken
        } else {
            id = try refillLock.withLock { _ throws(FSError) -> UInt64 in
                if let id = state.withLock({ $0.pool.popLast() }) { return id }  // another thread refilled
                guard let id = try refill(keepFirst: true) else { throw FSError(EIO, "journal data pool is empty") }
                return id
            }
        }
        // Decided after the caller has its file, so an empty pool refilled here is also
        // refilled ahead (was a race: whichever refill took the lock first set the count).
        refillAheadIfLow()
        return id
    }

    /// Refills the pool ahead, off the caller's thread, when it runs low: creating files
    /// is an inode allocation each, and a create through the mount should not wait for 64.
    private func refillAheadIfLow() {
        let low = state.withLock { state -> Bool in
            let low = state.pool.count < Self.poolBatch && !state.refilling
            if low { state.refilling = true }
            return low
        }
        guard low else { return }
        refills.enter()
        DispatchQueue.global().async { [weak self] in
            guard let self else { return }
            defer {
                self.state.withLock { $0.refilling = false }
                self.refills.leave()
            }
            try? self.refillLock.withLock { _ throws(FSError) in
                if self.state.withLock({ $0.pool.count }) < Self.poolBatch { try self.refill(keepFirst: false) }
            }
        }
    }

    /// Creates `poolBatch` empty data files (callers hold `refillLock`) and adds them to
    /// the pool, except the first when `keepFirst` (returned to the caller).
    @discardableResult
    private func refill(keepFirst: Bool) throws(FSError) -> UInt64? {
        let ids = state.withLock { state -> [UInt64] in
            defer { state.nextData += UInt64(Self.poolBatch) }
            return (0..<UInt64(Self.poolBatch)).map { state.nextData + $0 }
        }
        for id in ids {
            let fd = open(dataPath(id), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw FSError.posix("cannot create journal data file \(dataPath(id))") }
            close(fd)
        }
        // One directory fsync makes all the new entries durable. Unused pool files
        // are never referenced by a record; the next start's garbage collection
        // deletes them.
        syncDirectory(dataDirectory)
        return state.withLock { state in
            state.pool.insert(contentsOf: (keepFirst ? ids.dropFirst() : ids[...]).reversed(), at: 0)
            return keepFirst ? ids[0] : nil
        }
    }

    /// Waits for a background refill to finish, so that the journal (and its lock) goes
    /// away with the mount: a mount of the same journal right after must not find it busy.
    func waitForRefills() { refills.wait() }

    /// Data files handed out by the pool but not used yet (garbage collection keeps them).
    var pooledData: Set<UInt64> { state.withLock { Set($0.pool) } }

    /// Makes the current bytes of data file `id` durable for a `.file` record: returns
    /// them when they fit `inlineLimit` (the record carries them, no data sync needed),
    /// else fdatasyncs the file and returns nil (the record refers to it).
    func durableContent(_ id: UInt64, descriptor: Int32? = nil) throws(FSError) -> Data? {
        let fd = descriptor ?? open(dataPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.posix("cannot open journal data file \(dataPath(id))") }
        defer { if descriptor == nil { close(fd) } }
        var buffer = [UInt8](repeating: 0, count: Self.inlineLimit + 1)
        var count = 0
        while count < buffer.count {
            let read = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + count, $0.count - count, off_t(count)) }
            if read < 0 { if errno == EINTR { continue }; throw FSError.posix("cannot read journal data file \(dataPath(id))") }
            if read == 0 { break }
            count += read
        }
        if count <= Self.inlineLimit { return Data(buffer[0..<count]) }
        guard fdatasync(fd) == 0 else { throw FSError.posix("cannot fsync journal data \(dataPath(id))") }
        return nil
    }

    /// Writes bytes into a fresh data file (replay of an inline record) and returns its id.
    /// Not synced: the inline record stays in the manifest until a compaction, which
    /// re-inlines or fdatasyncs what it keeps.
    func createData(with bytes: Data) throws(FSError) -> UInt64 {
        let (id, fd) = try createData()
        defer { close(fd) }
        try writeAll(fd, Array(bytes), path: dataPath(id))
        return id
    }

    func openData(_ id: UInt64) throws(FSError) -> Int32 {
        let fd = open(dataPath(id), O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.posix("cannot open journal data file \(dataPath(id))") }
        return fd
    }

    /// A data file no node uses any more: emptied and put back in the pool (up to
    /// `maxPool` files), else deleted. Reusing it spares a filesystem an inode
    /// allocation and a deletion per file: on ext4 without a journal, allocating an
    /// inode near many recently deleted ones scans past each of them, and that scan
    /// was most of a create's cost after an `rm -rf`.
    func removeData(_ id: UInt64) {
        let keep = state.withLock { $0.pool.count < Self.maxPool }
        guard keep, truncate(dataPath(id), 0) == 0 else {
            unlink(dataPath(id))
            return
        }
        state.withLock { $0.pool.append(id) }
    }

    static let maxPool = 16_384

    /// Deletes data files nothing refers to (left by a crash or by compaction, and pool
    /// files a previous run never used).
    func collectGarbage(keeping live: Set<UInt64>) {
        // A background refill creates files before it pools them: let it finish, or
        // its files would look unreferenced here and the pool would hand out deleted ids.
        waitForRefills()
        let pooled = pooledData
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory)) ?? [] {
            if let id = UInt64(name), !live.contains(id), !pooled.contains(id) { unlink(dataDirectory + "/" + name) }
        }
    }

    var manifestBytes: Int { state.withLock { $0.bytes } }
    /// The manifest's size right after the last rewrite.
    var compactedBytes: Int { state.withLock { $0.compactedBytes } }

    /// Whether records were appended since the last sync (tests of what a close syncs).
    var hasUnsyncedRecords: Bool { state.withLock { $0.synced < $0.appended } }
}

func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}

extension JournalRecord {
    var paths: [String] {
        switch self {
        case .file(let path, _, _, _), .symlink(let path, _), .mkdir(let path, _), .remove(let path), .chmod(let path, _),
             .special(let path, _, _, _), .attributes(let path, _, _, _): [path]
        case .rename(let from, let to), .link(let from, let to): [from, to]
        }
    }
}
