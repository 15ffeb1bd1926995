import CFuse
import Foundation

extension RepoFileSystem {
    /// Opens a file. Writing handles work on a journal data file (the blob is copied in
    /// first unless the open truncates); reading handles of unmodified files read the
    /// cached blob, and only those may keep the kernel's page cache.
    public func open(_ ino: UInt64, flags: OpenFlags, mayBlock: Bool = true) throws(FSError) -> OpenResult {
        try guardKey(mayBlock: mayBlock)
        if flags.write || flags.truncate {
            guard !isReadOnly else { throw FSError.readOnly }
        }
        let node = try state.withLock { state throws(FSError) in try state.table.node(ino) }
        switch node.kind {
        case .directory: if flags.write { throw FSError.isDirectory(pathName(ino)) }
        case .symlink: throw FSError(ELOOP, "\(pathName(ino)) is a symlink")
        case .fifo, .socket, .charDevice, .blockDevice: throw FSError(ENXIO, "\(pathName(ino)) is a special file")
        case .file: break
        }
        let source: FileContent
        let descriptor: Int32
        if flags.write || flags.truncate {
            let id = try materialize(ino, empty: flags.truncate, mayBlock: mayBlock)
            descriptor = try journal.openData(id)
            source = .data(id)
            if flags.truncate {
                ftruncate(descriptor, 0)
                state.withLock { state in
                    state.table.nodes[ino]?.size = 0
                    state.table.nodes[ino]?.writes += 1
                    let now = Timestamp.now()
                    state.table.nodes[ino]?.mtime = now
                    state.table.nodes[ino]?.ctime = now
                    state.table.touchLinks(ino)
                }
            }
        } else {
            (source, descriptor) = try openDescriptor(for: node.content, mayBlock: mayBlock)
        }
        return state.withLock { state in
            state.table.nodes[ino]?.opens += 1
            let handle = newHandleID(&state)
            state.files[handle] = OpenFile(ino: ino, writable: flags.write, append: flags.append, source: source,
                                             descriptor: descriptor, dirty: flags.truncate)
            // Blobs never change. Local data changes only through this mount's own writes,
            // which the kernel sees (its cache stays coherent), or through edits that
            // invalidate the inode explicitly — so read-only opens keep the page cache too.
            if case .blob = source { return OpenResult(handle: handle, keepCache: true) }
            return OpenResult(handle: handle, keepCache: !flags.write && !flags.truncate)
        }
    }

    /// A descriptor reading `content`.
    private func openDescriptor(for content: FileContent, mayBlock: Bool) throws(FSError) -> (FileContent, Int32) {
        switch content {
        case .blob(let oid):
            let path = try blobPath(oid, mayBlock: mayBlock)
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FSError.posix("cannot open cached blob \(oid)") }
            return (content, fd)
        case .data(let id):
            return (content, try journal.openData(id))
        case .none, .target:
            throw FSError.invalid("not a regular file")
        }
    }

    /// Where to read `size` bytes at `offset`: the handle's descriptor, reopened on the
    /// node's current content if another handle has modified the file since.
    public func read(_ ino: UInt64, handle: UInt64, offset: Int64, size: Int, mayBlock: Bool = true) throws(FSError) -> ReadSource {
        try guardKeyCached()
        for _ in 0..<3 {
            let answer = try state.withLock { state throws(FSError) -> (ReadSource?, FileContent) in
                guard let file = state.files[handle] else { throw FSError.badHandle(handle) }
                let node = try state.table.node(file.ino)
                let length = offset >= Int64(node.size) ? 0 : Int(min(Int64(size), Int64(node.size) - offset))
                if file.source == node.content || node.content == .none {
                    return (ReadSource(descriptor: file.descriptor, offset: offset, length: length), node.content)
                }
                return (nil, node.content)
            }
            if let source = answer.0 { return source }
            let (content, descriptor) = try openDescriptor(for: answer.1, mayBlock: mayBlock)
            state.withLock { state in
                guard var file = state.files[handle] else { close(descriptor); return }
                file.retired.append(file.descriptor)
                file.descriptor = descriptor
                file.source = content
                state.files[handle] = file
            }
        }
        throw FSError(EIO, "\(pathName(ino)) keeps changing underneath the read; retry")
    }

    /// Writes bytes at `offset` (at the end for O_APPEND handles).
    public func write(_ ino: UInt64, handle: UInt64, offset: Int64, bytes: UnsafeRawBufferPointer) throws(FSError) -> Int {
        try guardKeyCached()
        guard !isReadOnly else { throw FSError.readOnly }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
        let (descriptor, position, sizeBefore) = try state.withLock { state throws(FSError) -> (Int32, Int64, UInt64) in
            guard let file = state.files[handle] else { throw FSError.badHandle(handle) }
            guard file.writable, case .data = file.source else { throw FSError(EBADF, "file handle \(handle) is not open for writing") }
            guard var node = state.table.nodes[file.ino] else { throw FSError(ESTALE, "inode \(file.ino) is gone") }
            let sizeBefore = node.size
            var position = offset
            if file.append {
                // Reserve the range under the lock so concurrent appends never overlap.
                position = Int64(node.size)
                node.size += UInt64(bytes.count)
                state.table.nodes[file.ino] = node
            }
            return (file.descriptor, position, sizeBefore)
        }
        do {
            try writeAllOrNothing(descriptor, base, bytes.count, at: position, sizeBefore: sizeBefore)
        } catch {
            state.withLock { state in
                // Bytes past the old end that did get written are cut off again, and an
                // append gives back its reservation, unless a later append reserved after it.
                let end = UInt64(position) + UInt64(bytes.count)
                var keep = state.table.nodes[ino]?.size ?? sizeBefore
                if state.files[handle]?.append == true {
                    guard keep == end else { return }
                    keep = UInt64(position)
                    state.table.nodes[ino]?.size = keep
                }
                var info = Glibc.stat()
                if UInt64(position) >= sizeBefore, fstat(descriptor, &info) == 0, UInt64(info.st_size) > keep {
                    _ = ftruncate(descriptor, off_t(keep))
                }
            }
            throw FSError(error.errno, "write to \(pathName(ino)) failed in the journal: \(error.message); the file is unchanged")
        }
        let written = bytes.count
        state.withLock { state in
            guard var node = state.table.nodes[ino] else { return }
            node.size = max(node.size, UInt64(position) + UInt64(written))
            node.writes += 1
            let now = Timestamp.now()
            node.mtime = now
            node.ctime = now
            state.table.nodes[ino] = node
            state.files[handle]?.dirty = true
            state.table.touchLinks(ino)
        }
        return written
    }

    /// Writes all `count` bytes at `position` or leaves the data file as it was: a write
    /// that overwrites existing bytes reserves its blocks first (fallocate keeping the
    /// size: if the disk is full, nothing was touched); a write past the end that fails
    /// midway is cut back by the caller. Either way the caller reports the error and the
    /// file holds exactly what it held before.
    private func writeAllOrNothing(_ descriptor: Int32, _ base: UnsafeRawPointer, _ count: Int, at position: Int64,
                                   sizeBefore: UInt64) throws(FSError) {
        if position < Int64(sizeBefore), cfuse_fallocate(descriptor, cfuse_falloc_keep_size(), position, Int64(count)) != 0,
           errno != EOPNOTSUPP {
            throw FSError.posix("cannot reserve space")
        }
        var written = 0
        while written < count {
            let result = pwrite(descriptor, base + written, count - written, off_t(position) + off_t(written))
            if result < 0 {
                if errno == EINTR { continue }
                throw FSError.posix("cannot write")
            }
            written += result
        }
    }

    /// close(2): the file is journaled, so a kill -9 of mesad loses nothing; with
    /// `durability = close` it is also synced (see `makeDurable`), except at ephemeral
    /// paths (see `closeEphemeral`).
    public func flush(_ ino: UInt64, handle: UInt64) throws(FSError) {
        if configuration.durability == .close {
            if try closeEphemeral(ino, handle: handle) { return }
            try makeDurable(handle: handle, dataOnly: false)
        } else {
            try journalClosed(handle: handle)
        }
    }

    /// close(2) of a file at an ephemeral (`.mesaignore`) path with `durability = close`:
    /// its record is appended to the journal, but neither the journal nor the data file
    /// is synced (as every close does with the default `durability = fsync`). A daemon
    /// crash keeps it (the kernel's page cache holds both); a power loss may lose or
    /// tear it, which regenerable content (installed packages, caches, build output)
    /// can afford, and an `npm install` does not pay one sync per file. fsync(2) still
    /// makes such a file durable, and the next durable close or journal compaction
    /// syncs the records too. `.git` trees are not ephemeral: they keep durable closes.
    /// Returns false when the handle is not an ephemeral file.
    private func closeEphemeral(_ ino: UInt64, handle: UInt64) throws(FSError) -> Bool {
        let rules = cachedIgnoreRules
        let pending = state.withLock { state -> (dirty: Bool, data: UInt64?)? in
            guard let file = state.files[handle], let path = state.table.path(of: ino),
                  Self.isEphemeral(path, rules: rules) else { return nil }
            guard file.dirty, case .data(let id) = file.source else { return (false, nil) }
            state.files[handle]?.dirty = false
            return (true, id)
        }
        guard let pending else { return false }
        guard pending.dirty, let id = pending.data else { return true }
        do {
            try state.withLock { state throws(FSError) in try appendRecord(state, ino, id, nil) }
        } catch {
            state.withLock { $0.files[handle]?.dirty = true }
            throw error
        }
        scheduleFlush()
        return true
    }

    public func fsync(_ ino: UInt64, handle: UInt64, dataOnly: Bool) throws(FSError) {
        try makeDurable(handle: handle, dataOnly: dataOnly)
    }

    /// fsyncdir: namespace records become durable.
    public func fsyncdir() throws(FSError) {
        try journal.sync()
    }

    public func release(_ ino: UInt64, handle: UInt64) {
        // close(2) already sent flush, which made the handle durable; only a handle
        // written after that (a dup'ed or inherited descriptor) has something to sync.
        // An untouched handle needs no second journal fsync here.
        if state.withLock({ $0.files[handle]?.dirty ?? false }) {
            do {
                try flush(ino, handle: handle)
            } catch {
                logger.error("could not make a closed file durable", metadata: ["inode": "\(ino)", "error": "\(error)"])
            }
        }
        let garbage = state.withLock { state -> [UInt64] in
            guard let file = state.files.removeValue(forKey: handle) else { return [] }
            close(file.descriptor)
            file.retired.forEach { close($0) }
            state.table.nodes[file.ino]?.opens -= 1
            return state.table.dropIfUnused(file.ino)
        }
        discard(garbage)
    }

    /// Journals the handle's file without syncing anything: its record refers to the
    /// data file, whose bytes the kernel already holds, so only a power loss before the
    /// next fsync (or journal compaction) can lose them, as on a local filesystem.
    private func journalClosed(handle: UInt64) throws(FSError) {
        let pending = state.withLock { state -> (UInt64, UInt64)? in
            guard let file = state.files[handle], file.dirty, case .data(let id) = file.source else { return nil }
            state.files[handle]?.dirty = false
            return (file.ino, id)
        }
        guard let (ino, id) = pending else { return }
        do {
            try state.withLock { state throws(FSError) in
                guard let node = state.table.nodes[ino], node.content == .data(id), let path = state.table.path(of: ino) else { return }
                try journal.append(.file(path: path, data: id, permissions: node.permissions, inline: nil))
            }
        } catch {
            state.withLock { $0.files[handle]?.dirty = true }
            throw error
        }
        scheduleFlush()
    }

    /// Records the handle's file in the journal in a durable form and fsyncs the journal:
    /// after this returns, a crash loses nothing. A file of at most `Journal.inlineLimit`
    /// bytes (every empty one) goes into the record itself, so the journal fsync is the
    /// only sync; a larger one has its data file fdatasynced first. Data files' directory
    /// entries are durable from the pool, so no directory fsync either.
    private func makeDurable(handle: UInt64, dataOnly: Bool) throws(FSError) {
        let pending = state.withLock { state -> (UInt64, UInt64, Int32)? in
            guard let file = state.files[handle], file.dirty, case .data(let id) = file.source else { return nil }
            state.files[handle]?.dirty = false
            return (file.ino, id, file.descriptor)
        }
        guard let (ino, id, descriptor) = pending else {
            // Nothing written through this handle: only the namespace records so far
            // (sync() is free when nothing was appended since the last one).
            try journal.sync()
            return
        }
        do {
            try recordDurably(ino, data: id, descriptor: descriptor)
        } catch {
            state.withLock { $0.files[handle]?.dirty = true }
            throw error
        }
        try journal.sync()
        scheduleFlush()
    }

    /// Appends the `.file` record of `ino` if it still holds data file `id` and is still
    /// linked, with its bytes inline or after fdatasync of the data file (see
    /// `Journal.durableContent`). The journal itself is not synced here.
    ///
    /// The bytes are read (or synced) outside the lock; if another handle changed them
    /// meanwhile, its own close may already have appended a newer record, and ours must
    /// not land after it with older bytes: retry, and the last attempt holds the lock
    /// throughout (reads of at most 4 KiB; a data-file sync under the lock only when
    /// writers keep racing).
    func recordDurably(_ ino: UInt64, data id: UInt64, descriptor: Int32? = nil) throws(FSError) {
        for _ in 0..<3 {
            let before = state.withLock { $0.table.nodes[ino]?.writes }
            guard let before else { return }
            let inline = try journal.durableContent(id, descriptor: descriptor)
            let done = try state.withLock { state throws(FSError) -> Bool in
                guard let node = state.table.nodes[ino], node.writes == before else { return false }
                if inline == nil, node.content == .data(id) { state.table.nodes[ino]?.syncedWrites = before }
                try appendRecord(state, ino, id, inline)
                return true
            }
            if done { return }
        }
        try state.withLock { state throws(FSError) in
            try appendRecord(state, ino, id, try journal.durableContent(id, descriptor: descriptor))
        }
    }

    private func appendRecord(_ state: CoreState, _ ino: UInt64, _ id: UInt64, _ inline: Data?) throws(FSError) {
        guard let node = state.table.nodes[ino], node.content == .data(id), let path = state.table.path(of: ino) else { return }
        try journal.append(.file(path: path, data: id, permissions: node.permissions, inline: inline))
    }

    /// Allocates (or punches, with the matching mode) space in a file open for writing.
    public func fallocate(_ ino: UInt64, handle: UInt64, mode: Int32, offset: Int64, length: Int64) throws(FSError) {
        guard !isReadOnly else { throw FSError.readOnly }
        let descriptor = try state.withLock { state throws(FSError) -> Int32 in
            guard let file = state.files[handle], file.writable, case .data = file.source else {
                throw FSError(EBADF, "file handle \(handle) is not open for writing")
            }
            return file.descriptor
        }
        guard cfuse_fallocate(descriptor, mode, offset, length) == 0 else {
            throw FSError.posix("fallocate on \(pathName(ino))")
        }
        var info = Glibc.stat()
        guard fstat(descriptor, &info) == 0 else { throw FSError.posix("fstat of journal data") }
        state.withLock { state in
            state.table.nodes[ino]?.size = UInt64(info.st_size)
            state.table.nodes[ino]?.writes += 1
            state.files[handle]?.dirty = true
            state.table.touchLinks(ino)
        }
    }

    /// Gives `ino` its own journal data file, copying the blob in unless `empty`.
    /// Returns the data file's id (the existing one if the file was written before).
    func materialize(_ ino: UInt64, empty: Bool, mayBlock: Bool) throws(FSError) -> UInt64 {
        let (content, generation) = try state.withLock { state throws(FSError) in
            (try state.table.node(ino).content, state.viewGeneration)
        }
        let oid: String?
        switch content {
        case .data(let id): return id
        case .blob(let blob): oid = blob
        case .none, .target: throw FSError.invalid("\(pathName(ino)) is not a regular file")
        }
        var sourcePath: String?
        if !empty, let oid { sourcePath = try blobPath(oid, mayBlock: mayBlock) }
        let (id, descriptor) = try journal.createData()
        defer { close(descriptor) }
        var size: UInt64 = 0
        if let sourcePath {
            size = try copyFile(from: sourcePath, to: descriptor)
        }
        let committed = state.withLock { state -> Result<UInt64, FSError> in
            guard var node = state.table.nodes[ino] else { return .failure(FSError(ESTALE, "inode \(ino) is gone")) }
            // The view switched to another revision (a followed bookmark, an edit) while
            // the blob was copied: the copy holds the old revision's bytes. ESTALE makes
            // the kernel look the path up again and open the new revision's file.
            guard state.viewGeneration == generation, !node.detachedByReset else {
                return .failure(FSError(ESTALE, "inode \(ino) changed revision while being opened; retry"))
            }
            if case .data(let other) = node.content { return .success(other) }  // Another open won the race.
            node.content = .data(id)
            node.size = size
            state.table.nodes[ino] = node
            // No journal record here: the caller records the file durably (a writing or
            // truncating handle at its close/fsync, setattr at once). A record now would
            // refer to an unsynced copy of the blob, which someone else's fsync could make
            // durable: a crash would then replay a torn copy. Until then a crash replays
            // the blob, which is what the file held.
            state.table.touchLinks(ino)
            return .success(id)
        }
        switch committed {
        case .success(let winner):
            if winner != id { journal.removeData(id) }
            return winner
        case .failure(let error):
            journal.removeData(id)
            throw error
        }
    }

    func pathName(_ ino: UInt64) -> String {
        state.withLock { state in state.table.path(of: ino).map { "'/\($0)'" } ?? "inode \(ino)" }
    }
}

/// Copies a whole file into `descriptor` in the kernel (copy_file_range), falling back
/// to a read/write loop, and returns the byte count.
func copyFile(from path: String, to descriptor: Int32) throws(FSError) -> UInt64 {
    let source = open(path, O_RDONLY | O_CLOEXEC)
    guard source >= 0 else { throw FSError.posix("cannot open \(path)") }
    defer { close(source) }
    var total: UInt64 = 0
    while true {
        let count = cfuse_copy_file_range(source, descriptor, 1 << 30)
        if count > 0 { total += UInt64(count); continue }
        if count == 0 { return total }
        if errno == EINTR { continue }
        break  // EXDEV / ENOSYS on some filesystems: copy by hand.
    }
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let count = buffer.withUnsafeMutableBytes { pread(source, $0.baseAddress!, $0.count, off_t(total)) }
        if count < 0 { if errno == EINTR { continue }; throw FSError.posix("cannot read \(path)") }
        if count == 0 { return total }
        var done = 0
        while done < count {
            let written = buffer.withUnsafeBytes { raw in
                pwrite(descriptor, raw.baseAddress! + done, count - done, off_t(total) + off_t(done))
            }
            if written < 0 { if errno == EINTR { continue }; throw FSError.posix("cannot write journal data") }
            done += written
        }
        total += UInt64(count)
    }
}
