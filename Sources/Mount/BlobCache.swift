import Foundation
import Logging
import Synchronization

/// Blob content on local disk, keyed by git object id. A blob id names its bytes for
/// ever, so an entry never goes stale: it is only evicted (least recently used first)
/// when the cache exceeds its size cap. Entries are written to a temporary file and
/// renamed into place, so a crash leaves either the whole blob or nothing; the index is
/// rebuilt from the directory at start, so the cache survives restarts.
///
/// Layout: `<directory>/blobs/<oid[0..2]>/<oid>`, temporaries in `<directory>/tmp`.
/// One cache may be shared by every mount of a daemon (it is content-addressed).
public final class BlobCache: Sendable {
    private struct Entry {
        var size: UInt64
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var totalBytes: UInt64 = 0
        var clock: UInt64 = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
    }

    /// What `mesa stats` shows: size, and how often a blob the mounts needed was here.
    public struct Statistics: Sendable, Equatable {
        public let entries: Int
        public let usedBytes: UInt64
        public let maxBytes: UInt64
        /// Blobs the mounts asked for that were cached / had to be downloaded, since start.
        public let hits: UInt64
        public let misses: UInt64
    }

    public let directory: String
    public let maxBytes: UInt64
    private let state = Mutex(State())
    private let logger = Logger(label: "mesa.mount.blobcache")

    public init(directory: String, maxBytes: UInt64) throws(FSError) {
        self.directory = directory
        self.maxBytes = maxBytes
        for sub in ["blobs", "tmp"] {
            do {
                try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw FSError(EIO, "cannot create blob cache directory \(directory)/\(sub): \(error.localizedDescription)")
            }
        }
        // Leftover temporaries are writes a crash interrupted.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory + "/tmp")) ?? [] {
            unlink(directory + "/tmp/" + name)
        }
        scan()
    }

    /// Path of the cached blob, if present (counts as a use for LRU).
    public func path(for oid: String) -> String? {
        let present = state.withLock { state -> Bool in
            guard state.entries[oid] != nil else { return false }
            state.clock += 1
            state.entries[oid]?.lastUse = state.clock
            return true
        }
        guard present else { return nil }
        let path = location(oid)
        // The file's mtime is the LRU order a restarted daemon rebuilds.
        utimensat(AT_FDCWD, path, nil, 0)
        return path
    }

    /// Whether the blob is cached, without counting a use.
    public func contains(_ oid: String) -> Bool { state.withLock { $0.entries[oid] != nil } }

    /// Stores bytes under `oid` (atomically) and returns the entry's path.
    @discardableResult
    public func store(_ oid: String, bytes: [UInt8]) throws(FSError) -> String {
        try fill(oid) { temporary throws(FSError) in try writeFile(temporary, bytes) }
    }

    /// Fills the entry for `oid` by letting `download` write a temporary file in the
    /// cache's own directory (it creates or truncates the path it is given), then
    /// renames it into place: no copy, and the blob never passes through memory.
    @discardableResult
    public func fill(_ oid: String, _ download: (String) throws(FSError) -> Void) throws(FSError) -> String {
        guard Self.isValidOID(oid) else { throw FSError.invalid("invalid blob id '\(oid.prefix(80))'") }
        let target = location(oid)
        let temporary = directory + "/tmp/" + oid + "." + UUID().uuidString
        do {
            try download(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        var info = Glibc.stat()
        guard stat(temporary, &info) == 0 else {
            let error = FSError.posix("cannot stat the downloaded blob \(temporary)")
            unlink(temporary)
            throw error
        }
        mkdir(parentPath(target), 0o700)
        guard rename(temporary, target) == 0 else {
            let error = FSError.posix("cannot move blob into the cache at \(target)")
            unlink(temporary)
            throw error
        }
        insert(oid, size: UInt64(info.st_size))
        return target
    }

    /// Adopts an existing file (e.g. a flushed journal file) as the blob `oid` by
    /// renaming it into the cache. Returns false when the rename is impossible (another
    /// filesystem); the caller then keeps its file.
    public func adopt(_ oid: String, file: String, size: UInt64) -> Bool {
        guard Self.isValidOID(oid) else { return false }
        let target = location(oid)
        mkdir(parentPath(target), 0o700)
        guard rename(file, target) == 0 else { return false }
        insert(oid, size: size)
        return true
    }

    public var usedBytes: UInt64 { state.withLock { $0.totalBytes } }
    public var count: Int { state.withLock { $0.entries.count } }

    public var statistics: Statistics {
        state.withLock { Statistics(entries: $0.entries.count, usedBytes: $0.totalBytes, maxBytes: maxBytes, hits: $0.hits, misses: $0.misses) }
    }

    /// Counts one blob a mount needed as found here or downloaded (`path(of:from:…)`).
    func record(hit: Bool) {
        state.withLock { if hit { $0.hits += 1 } else { $0.misses += 1 } }
    }

    // MARK: Internals

    private func location(_ oid: String) -> String {
        directory + "/blobs/" + oid.prefix(2) + "/" + oid
    }

    private func insert(_ oid: String, size: UInt64) {
        let victims: [String] = state.withLock { state in
            state.clock += 1
            if let old = state.entries[oid] { state.totalBytes -= old.size }
            state.entries[oid] = Entry(size: size, lastUse: state.clock)
            state.totalBytes += size
            return Self.evictions(&state, maxBytes: maxBytes, keep: oid)
        }
        // Unlinking is safe while readers hold the file open: their descriptor stays valid.
        for victim in victims { unlink(location(victim)) }
        if !victims.isEmpty { logger.debug("evicted blobs", metadata: ["count": "\(victims.count)"]) }
    }

    /// Picks least recently used entries until the cache is at 90% of its cap, so
    /// eviction runs in batches rather than on every insert.
    private static func evictions(_ state: inout State, maxBytes: UInt64, keep: String) -> [String] {
        guard state.totalBytes > maxBytes else { return [] }
        let goal = maxBytes / 10 * 9
        var victims: [String] = []
        for (oid, entry) in state.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            if state.totalBytes <= goal { break }
            if oid == keep { continue }
            state.entries[oid] = nil
            state.totalBytes -= entry.size
            victims.append(oid)
        }
        return victims
    }

    /// Rebuilds the index from disk; modification times order the LRU across restarts.
    private func scan() {
        var found: [(oid: String, size: UInt64, mtime: Int)] = []
        let blobs = directory + "/blobs"
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? [] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: blobs + "/" + prefix)) ?? [] {
                var info = Glibc.stat()
                guard Self.isValidOID(name), stat(blobs + "/" + prefix + "/" + name, &info) == 0 else { continue }
                found.append((name, UInt64(info.st_size), info.st_mtim.tv_sec))
            }
        }
        found.sort { $0.mtime < $1.mtime }
        let victims: [String] = state.withLock { state in
            for item in found {
                state.clock += 1
                state.entries[item.oid] = Entry(size: item.size, lastUse: state.clock)
                state.totalBytes += item.size
            }
            return Self.evictions(&state, maxBytes: maxBytes, keep: "")
        }
        for victim in victims { unlink(location(victim)) }
    }

    static func isValidOID(_ oid: String) -> Bool {
        (oid.utf8.count == 40 || oid.utf8.count == 64)
            && oid.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

/// Writes `bytes` to a new file at `path` (mode 0600).
func writeFile(_ path: String, _ bytes: [UInt8], sync: Bool = false) throws(FSError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw FSError.posix("cannot create \(path)") }
    defer { close(fd) }
    try writeAll(fd, bytes, path: path)
    if sync, fsync(fd) != 0 { throw FSError.posix("cannot fsync \(path)") }
}

func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FSError) {
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { buffer in
            Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw FSError.posix("cannot write \(path)")
        }
        written += count
    }
}

/// Reads a whole file (used only where an API needs bytes in memory: uploads).
func readFile(_ path: String) throws(FSError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FSError.posix("cannot open \(path)") }
    defer { close(fd) }
    var info = Glibc.stat()
    guard fstat(fd, &info) == 0 else { throw FSError.posix("cannot stat \(path)") }
    var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
    var done = 0
    while done < bytes.count {
        let count = bytes.withUnsafeMutableBytes { buffer in
            pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(done))
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw FSError.posix("cannot read \(path)")
        }
        if count == 0 { bytes.removeLast(bytes.count - done); break }
        done += count
    }
    return bytes
}
