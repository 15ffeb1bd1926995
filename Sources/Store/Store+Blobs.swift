import CGit2
import Foundation
import Model

/// Streams one blob into a repository's object database without holding it in memory:
/// libgit2's odb write stream hashes and deflates each chunk into a temporary loose
/// object, renamed into place by `finish()`. The size is declared up front (git's
/// object header carries it), and `finish()` fails unless exactly that many bytes came.
///
/// A writer owns its own repository handle, so it may be fed from any thread (one
/// at a time) and over any length of time — an HTTP body arriving chunk by chunk —
/// without holding a pooled handle. Dropping it unfinished discards what was written.
public final class BlobWriter: @unchecked Sendable {
    public let size: Int
    public private(set) var written = 0
    private let repository: GitRepository
    private var stream: UnsafeMutablePointer<git_odb_stream>?
    private var odb: OpaquePointer?

    init(repository: GitRepository, size: Int) throws {
        guard size >= 0 else { throw MesaError.invalid("invalid blob size \(size)") }
        self.repository = repository
        self.size = size
        try gitCheck(git_repository_odb(&odb, repository.handle), "cannot open object database")
        do {
            try gitCheck(git_odb_open_wstream(&stream, odb, git_object_size_t(size), GIT_OBJECT_BLOB),
                         "cannot start a blob write")
        } catch {
            git_odb_free(odb)
            throw error
        }
    }

    deinit {
        if let stream { git_odb_stream_free(stream) }
        git_odb_free(odb)
    }

    /// Appends bytes; more than the declared size is refused before anything is written.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let stream else { throw MesaError.invalid("the blob write is already finished") }
        guard bytes.count <= size - written else {
            throw MesaError.invalid("blob body is longer than the declared \(size) bytes")
        }
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        try gitCheck(git_odb_stream_write(stream, base.assumingMemoryBound(to: CChar.self), bytes.count),
                     "cannot write blob data")
        written += bytes.count
    }

    /// Completes the object and returns its id (40 hex characters).
    public func finish() throws -> String {
        guard let stream else { throw MesaError.invalid("the blob write is already finished") }
        guard written == size else {
            throw MesaError.invalid("blob body is \(written) bytes, shorter than the declared \(size)")
        }
        var oid = git_oid()
        try gitCheck(git_odb_stream_finalize_write(&oid, stream), "cannot store blob")
        git_odb_stream_free(stream)
        self.stream = nil
        return GitOID(oid).hex
    }
}

/// Reads one blob in chunks. A loose object is read with read(2) and inflated through a
/// fixed 256 KiB window (`cgit2_loose_open`): libgit2 1.5's own odb read stream mmaps the
/// whole object file, which counts the whole blob in the process's RSS. libgit2 1.5's
/// pack backend has no read stream at all, so a packed blob is read whole, once, into
/// memory: the bound is that blob's size. Large blobs arrive through `BlobWriter` (loose)
/// and stay loose unless someone runs `git gc`/`git repack` on the store's repositories.
public final class BlobReader: @unchecked Sendable {
    public let size: Int
    private let repository: GitRepository
    private var odb: OpaquePointer?
    private var loose: OpaquePointer?
    private var object: OpaquePointer?
    private var offset = 0

    init(repository: GitRepository, oid: GitOID) throws {
        self.repository = repository
        try gitCheck(git_repository_odb(&odb, repository.handle), "cannot open object database")
        var id = oid.raw
        var length = 0
        var type = GIT_OBJECT_ANY
        // Check the type first: a tree or commit id is not a blob, whatever backend holds it.
        let header = git_odb_read_header(&length, &type, odb, &id)
        if header == GIT_ENOTFOUND.rawValue {
            git_odb_free(odb)
            throw MesaError.notFound("blob \(oid.hex) does not exist in this repository")
        }
        do {
            try gitCheck(header, "cannot read object \(oid.hex)")
            guard type == GIT_OBJECT_BLOB else {
                throw MesaError.notFound("object \(oid.hex) is not a blob of this repository")
            }
        } catch {
            git_odb_free(odb)
            throw error
        }
        size = length
        let hex = oid.hex
        let file = repository.path + "/objects/" + hex.prefix(2) + "/" + hex.dropFirst(2)
        var looseSize: UInt64 = 0
        var failure: Int32 = 0
        loose = cgit2_loose_open(file, &looseSize, &failure)
        if loose != nil, looseSize != UInt64(length) {
            cgit2_loose_close(loose)
            loose = nil
        }
        if loose == nil {
            // Packed (or unreadable as a loose file): libgit2 reads it whole.
            do {
                try gitCheck(git_odb_read(&object, odb, &id), "cannot read blob \(oid.hex)")
            } catch {
                git_odb_free(odb)
                throw error
            }
        }
    }

    deinit {
        if let loose { cgit2_loose_close(loose) }
        if let object { git_odb_object_free(object) }
        git_odb_free(odb)
    }

    /// Fills `buffer` with the next bytes; returns how many (0 at the end).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset < size, buffer.count > 0, let base = buffer.baseAddress else { return 0 }
        let wanted = min(buffer.count, size - offset)
        let count: Int
        if let loose {
            count = cgit2_loose_read(loose, base, wanted)
            guard count > 0 else { throw MesaError.internal("blob data is damaged or ended after \(offset) of \(size) bytes") }
        } else {
            guard let data = git_odb_object_data(object) else { throw MesaError.internal("blob has no data") }
            base.copyMemory(from: data + offset, byteCount: wanted)
            count = wanted
        }
        offset += count
        return count
    }
}

extension Store {
    /// Chunk size for file ↔ object streaming: large enough for few syscalls, small
    /// enough that memory stays flat.
    static let blobChunk = 1 << 20

    /// A writer for one blob of `size` bytes in `repo`. The caller authorizes.
    public func blobWriter(org slug: String, repo name: String, size: Int) throws -> BlobWriter {
        let repo = try withDatabase { db in try repoRow(org: slug, name: name, db) }
        return try BlobWriter(repository: try GitRepository.open(at: repositories.path(for: repo.id)), size: size)
    }

    /// A reader for the blob `oid` of `repo`; 404 when the id is not a blob there.
    public func blobReader(org slug: String, repo name: String, oid: String) throws -> BlobReader {
        let id = try GitOID(hex: oid)
        let repo = try withDatabase { db in try repoRow(org: slug, name: name, db) }
        return try BlobReader(repository: try GitRepository.open(at: repositories.path(for: repo.id)), oid: id)
    }

    /// Stores the file at `path` as a blob, streaming it (memory stays at one chunk),
    /// and returns the blob's id. The file must not change while it is read.
    public func writeBlob(org slug: String, repo name: String, fromFile path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MesaError.invalid("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = Glibc.stat()
        guard fstat(fd, &info) == 0 else { throw MesaError.internal("cannot stat \(path): \(String(cString: strerror(errno)))") }
        let writer = try blobWriter(org: slug, repo: name, size: Int(info.st_size))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.blobChunk, alignment: 16)
        defer { buffer.deallocate() }
        while writer.written < writer.size {
            let count = pread(fd, buffer.baseAddress, min(buffer.count, writer.size - writer.written), off_t(writer.written))
            if count < 0 {
                if errno == EINTR { continue }
                throw MesaError.internal("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { throw MesaError.invalid("\(path) shrank while it was stored; retry") }
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        return try writer.finish()
    }

    /// Writes the blob `oid` into the file descriptor `fd` (from its current offset) in
    /// chunks; returns the byte count.
    @discardableResult
    public func readBlob(org slug: String, repo name: String, oid: String, into fd: Int32) throws -> Int {
        let reader = try blobReader(org: slug, repo: name, oid: oid)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.blobChunk, alignment: 16)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let count = try reader.read(into: buffer)
            if count == 0 { break }
            var done = 0
            while done < count {
                let result = Glibc.write(fd, buffer.baseAddress! + done, count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    let code: MesaError.Code = errno == ENOSPC || errno == EDQUOT ? .noSpace : .internal
                    throw MesaError(code, "cannot write blob \(oid): \(String(cString: strerror(errno)))")
                }
                done += result
            }
            total += count
        }
        return total
    }

    /// Whether `oid` names a blob of the repository (without reading it).
    func isBlob(_ git: GitRepository, _ oid: GitOID) throws -> Bool {
        var odb: OpaquePointer?
        try gitCheck(git_repository_odb(&odb, git.handle), "cannot open object database")
        defer { git_odb_free(odb) }
        var id = oid.raw
        var size = 0
        var type = GIT_OBJECT_ANY
        let result = git_odb_read_header(&size, &type, odb, &id)
        if result == GIT_ENOTFOUND.rawValue { git_error_clear(); return false }
        try gitCheck(result, "cannot read object \(oid.hex)")
        return type == GIT_OBJECT_BLOB
    }
}
