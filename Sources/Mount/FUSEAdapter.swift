import CFuse
import Dispatch
import Foundation
import Logging

/// A libfuse request handle that may be answered from another thread (libfuse allows
/// replying later and from any thread, exactly once).
struct Request: @unchecked Sendable {
    let raw: fuse_req_t
}

/// What every trampoline reaches through the session's userdata pointer.
final class AdapterContext: Sendable {
    let fs: any FileSystemCore
    /// Requests that need the backend run here, so libfuse workers stay free.
    let slowQueue = DispatchQueue(label: "mesa.fuse.slow", attributes: .concurrent)
    let entryTimeout: Double
    let attrTimeout: Double
    let negativeTimeout: Double = 1
    let logger: Logger

    init(fs: any FileSystemCore, logger: Logger) {
        self.fs = fs
        self.logger = logger
        // A read-only mount changes only when it follows its bookmark, which invalidates
        // every entry the kernel knows: cache for a day. A read-write mount is changed
        // through the kernel or by this daemon (edit, follow), which invalidates what it
        // changes underneath, so the timeout only bounds what a missed invalidation
        // costs; an hour keeps `git status` after a long build in the kernel (with 10 s,
        // every lstat of it was a round trip again).
        entryTimeout = fs.isReadOnly ? 86_400 : 3_600
        attrTimeout = fs.isReadOnly ? 86_400 : 3_600
    }

    static func from(_ req: fuse_req_t) -> AdapterContext {
        Unmanaged<AdapterContext>.fromOpaque(fuse_req_userdata(req)).takeUnretainedValue()
    }

    /// Runs `body` on the libfuse thread without blocking; if it needs the backend,
    /// reruns it on `slowQueue` allowed to block. `reply` sends the answer.
    func run<T>(_ req: fuse_req_t, _ body: @escaping @Sendable (Bool) throws(FSError) -> T,
                reply: @escaping @Sendable (fuse_req_t, T) -> Void) {
        do throws(FSError) {
            reply(req, try body(false))
        } catch where error.isWouldBlock {
            let request = Request(raw: req)
            slowQueue.async {
                // Allowed to block, `body` still finds an unlisted directory when the view
                // switched revision (edit, followed bookmark) between its listing and its
                // use: list again, a bounded number of times.
                var attempts = 0
                while true {
                    attempts += 1
                    do throws(FSError) {
                        reply(request.raw, try body(true))
                    } catch where error.isWouldBlock && attempts < 4 {
                        continue
                    } catch {
                        self.fail(request.raw, error)
                    }
                    return
                }
            }
        } catch {
            fail(req, error)
        }
    }

    func fail(_ req: fuse_req_t, _ error: FSError) {
        if error.errno == EIO || error.errno == ESTALE {
            logger.warning("filesystem error", metadata: ["error": "\(error)"])
        } else {
            logger.debug("filesystem refusal", metadata: ["error": "\(error)"])
        }
        fuse_reply_err(req, error.isWouldBlock ? EIO : error.errno)
    }

    /// The caller of a request, for ownership of what it creates.
    static func caller(_ req: fuse_req_t) -> Caller {
        var uid: UInt32 = 0, gid: UInt32 = 0
        cfuse_req_caller(req, &uid, &gid)
        return Caller(uid: uid, gid: gid)
    }

    func entry(_ attributes: Attributes) -> fuse_entry_param {
        var entry = fuse_entry_param()
        entry.ino = fuse_ino_t(attributes.ino)
        entry.generation = 1
        entry.attr = attributes.stat
        entry.attr_timeout = attrTimeout
        entry.entry_timeout = entryTimeout
        return entry
    }

    func replyEntry(_ req: fuse_req_t, _ attributes: Attributes) {
        var entry = entry(attributes)
        fuse_reply_entry(req, &entry)
    }

    func replyAttr(_ req: fuse_req_t, _ attributes: Attributes) {
        var stat = attributes.stat
        fuse_reply_attr(req, &stat, attrTimeout)
    }
}

/// The low-level operations table: thin `@convention(c)` trampolines that decode
/// arguments, copy every pointer libfuse owns (`name`, `fuse_file_info`), call the
/// core and reply. No logic lives here.
enum FUSEAdapter {
    static func operations() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let conn else { return }
            cfuse_conn_set_sizes(conn, 1 << 20, 1 << 20)
            cfuse_conn_want(conn, UInt32(FUSE_CAP_ASYNC_READ | FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO
                                         | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_CACHE_SYMLINKS))
        }
        ops.lookup = { req, parent, name in
            guard let req, let name else { return }
            let context = AdapterContext.from(req), fs = context.fs
            // No name on a mount is invalid UTF-8 (creating one is refused): it is missing.
            guard let entryName = FUSEAdapter.existingName(name) else { return context.fail(req, FSError(ENOENT, "no such name")) }
            context.run(req, { mayBlock throws(FSError) -> Attributes? in
                do throws(FSError) {
                    return try fs.lookup(parent: UInt64(parent), name: entryName, mayBlock: mayBlock)
                } catch where error.errno == ENOENT {
                    return nil
                }
            }, reply: { req, attributes in
                if let attributes {
                    context.replyEntry(req, attributes)
                } else {
                    // A negative entry: probes of missing paths (git, compilers) stop here.
                    // Creating the name through the kernel replaces it; a view switch
                    // may leave it for at most `negativeTimeout`.
                    var entry = fuse_entry_param()
                    entry.entry_timeout = context.negativeTimeout
                    fuse_reply_entry(req, &entry)
                }
            })
        }
        ops.forget = { req, ino, count in
            guard let req else { return }
            AdapterContext.from(req).fs.forget(UInt64(ino), count: count)
            fuse_reply_none(req)
        }
        ops.forget_multi = { req, count, forgets in
            guard let req else { return }
            let fs = AdapterContext.from(req).fs
            if let forgets {
                for index in 0..<count { fs.forget(UInt64(forgets[index].ino), count: forgets[index].nlookup) }
            }
            fuse_reply_none(req)
        }
        ops.getattr = { req, ino, _ in
            guard let req else { return }
            let context = AdapterContext.from(req), fs = context.fs
            context.run(req, { _ throws(FSError) in try fs.getattr(UInt64(ino)) }, reply: { req, a in context.replyAttr(req, a) })
        }
        ops.setattr = { req, ino, attr, toSet, fi in
            guard let req, let attr else { return }
            let context = AdapterContext.from(req), fs = context.fs
            let changes = Self.changes(attr.pointee, toSet)
            let handle = fi.map { $0.pointee.fh }
            context.run(req, { mayBlock throws(FSError) in try fs.setattr(UInt64(ino), changes, handle: handle, mayBlock: mayBlock) },
                        reply: { req, a in context.replyAttr(req, a) })
        }
        ops.readlink = { req, ino in
            guard let req else { return }
            let context = AdapterContext.from(req), fs = context.fs
            context.run(req, { mayBlock throws(FSError) in try fs.readlink(UInt64(ino), mayBlock: mayBlock) },
                        reply: { req, target in fuse_reply_readlink(req, target) })
        }
        ops.mknod = { req, parent, name, mode, rdev in
            guard let req, let name else { return }
            let context = AdapterContext.from(req), fs = context.fs, caller = AdapterContext.caller(req)
            guard let entryName = FUSEAdapter.newName(name, req, context) else { return }
            context.run(req, { mayBlock throws(FSError) in
                try fs.mknod(parent: UInt64(parent), name: entryName, mode: UInt32(mode), rdev: UInt64(rdev), caller: caller,
                             mayBlock: mayBlock)
            }, reply: { req, a in context.replyEntry(req, a) })
        }
        ops.mkdir = { req, parent, name, mode in
            guard let req, let name else { return }
            let context = AdapterContext.from(req), fs = context.fs, caller = AdapterContext.caller(req)
            guard let entryName = FUSEAdapter.newName(name, req, context) else { return }
            context.run(req, { mayBlock throws(FSError) in
                try fs.mkdir(parent: UInt64(parent), name: entryName, permissions: UInt32(mode), caller: caller, mayBlock: mayBlock)
            }, reply: { req, a in context.replyEntry(req, a) })
        }
        ops.symlink = { req, link, parent, name in
            guard let req, let link, let name else { return }
            let context = AdapterContext.from(req), fs = context.fs, caller = AdapterContext.caller(req)
            guard let entryName = FUSEAdapter.newName(name, req, context), let target = FUSEAdapter.newName(link, req, context) else { return }
            context.run(req, { mayBlock throws(FSError) in
                try fs.symlink(parent: UInt64(parent), name: entryName, target: target, caller: caller, mayBlock: mayBlock)
            }, reply: { req, a in context.replyEntry(req, a) })
        }
        ops.link = { req, ino, parent, name in
            guard let req, let name else { return }
            let context = AdapterContext.from(req), fs = context.fs
            guard let entryName = FUSEAdapter.newName(name, req, context) else { return }
            context.run(req, { mayBlock throws(FSError) in
                try fs.link(UInt64(ino), parent: UInt64(parent), name: entryName, mayBlock: mayBlock)
            }, reply: { req, a in context.replyEntry(req, a) })
        }
        ops.unlink = { req, parent, name in
            FUSEAdapter.remove(req, parent, name) { fs, parent, name, mayBlock throws(FSError) in
                try fs.unlink(parent: parent, name: name, mayBlock: mayBlock)
            }
        }
        ops.rmdir = { req, parent, name in
            FUSEAdapter.remove(req, parent, name) { fs, parent, name, mayBlock throws(FSError) in
                try fs.rmdir(parent: parent, name: name, mayBlock: mayBlock)
            }
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            guard let req, let name, let newName else { return }
            let context = AdapterContext.from(req), fs = context.fs
            guard let from = FUSEAdapter.existingName(name) else { return context.fail(req, FSError(ENOENT, "no such name")) }
            guard let to = FUSEAdapter.newName(newName, req, context) else { return }
            context.run(req, { mayBlock throws(FSError) in
                try fs.rename(parent: UInt64(parent), name: from, newParent: UInt64(newParent), newName: to, flags: flags,
                              mayBlock: mayBlock)
            }, reply: { req, _ in fuse_reply_err(req, 0) })
        }
        ops.create = { req, parent, name, mode, fi in
            guard let req, let name, let fi else { return }
            let context = AdapterContext.from(req), fs = context.fs, caller = AdapterContext.caller(req)
            guard let entryName = FUSEAdapter.newName(name, req, context) else { return }
            let flags = OpenFlags(posix: fi.pointee.flags)
            let info = fi.pointee  // fi dies when the callback returns
            context.run(req, { mayBlock throws(FSError) in
                try fs.create(parent: UInt64(parent), name: entryName, permissions: UInt32(mode), flags: flags, caller: caller,
                              mayBlock: mayBlock)
            }, reply: { req, result in
                var entry = context.entry(result.0)
                var copy = info
                copy.fh = result.1.handle
                cfuse_fi_set_cache(&copy, 0, 0)
                if fuse_reply_create(req, &entry, &copy) != 0 { fs.release(result.0.ino, handle: result.1.handle) }
            })
        }
        ops.open = { req, ino, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req), fs = context.fs
            let flags = OpenFlags(posix: fi.pointee.flags)
            let info = fi.pointee
            context.run(req, { mayBlock throws(FSError) in try fs.open(UInt64(ino), flags: flags, mayBlock: mayBlock) },
                        reply: { req, result in
                var copy = info
                copy.fh = result.handle
                cfuse_fi_set_cache(&copy, result.keepCache ? 1 : 0, 0)
                if fuse_reply_open(req, &copy) != 0 { fs.release(UInt64(ino), handle: result.handle) }
            })
        }
        ops.read = { req, ino, size, offset, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req), fs = context.fs, handle = fi.pointee.fh
            context.run(req, { mayBlock throws(FSError) in
                try fs.read(UInt64(ino), handle: handle, offset: Int64(offset), size: size, mayBlock: mayBlock)
            }, reply: { req, source in
                if source.length == 0 {
                    fuse_reply_buf(req, nil, 0)
                } else {
                    _ = cfuse_reply_fd(req, source.descriptor, source.offset, source.length)
                }
            })
        }
        ops.write = { req, ino, buffer, size, offset, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req)
            do throws(FSError) {
                let written = try context.fs.write(UInt64(ino), handle: fi.pointee.fh, offset: Int64(offset),
                                                   bytes: UnsafeRawBufferPointer(start: buffer, count: size))
                fuse_reply_write(req, written)
            } catch {
                context.fail(req, error)
            }
        }
        ops.flush = { req, ino, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req)
            do throws(FSError) { try context.fs.flush(UInt64(ino), handle: fi.pointee.fh); fuse_reply_err(req, 0) } catch { context.fail(req, error) }
        }
        ops.release = { req, ino, fi in
            guard let req, let fi else { return }
            AdapterContext.from(req).fs.release(UInt64(ino), handle: fi.pointee.fh)
            fuse_reply_err(req, 0)
        }
        ops.fsync = { req, ino, dataOnly, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req)
            do throws(FSError) {
                try context.fs.fsync(UInt64(ino), handle: fi.pointee.fh, dataOnly: dataOnly != 0)
                fuse_reply_err(req, 0)
            } catch { context.fail(req, error) }
        }
        ops.fallocate = { req, ino, mode, offset, length, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req)
            do throws(FSError) {
                try context.fs.fallocate(UInt64(ino), handle: fi.pointee.fh, mode: mode, offset: Int64(offset), length: Int64(length))
                fuse_reply_err(req, 0)
            } catch { context.fail(req, error) }
        }
        ops.opendir = { req, ino, fi in
            guard let req, let fi else { return }
            let context = AdapterContext.from(req), fs = context.fs
            let info = fi.pointee
            context.run(req, { mayBlock throws(FSError) in try fs.opendir(UInt64(ino), mayBlock: mayBlock) }, reply: { req, handle in
                var copy = info
                copy.fh = handle
                if fuse_reply_open(req, &copy) != 0 { fs.releasedir(handle: handle) }
            })
        }
        ops.readdir = { req, _, size, offset, fi in
            guard let req, let fi else { return }
            FUSEAdapter.readdir(req, size: size, offset: Int(offset), handle: fi.pointee.fh, plus: false)
        }
        ops.readdirplus = { req, _, size, offset, fi in
            guard let req, let fi else { return }
            FUSEAdapter.readdir(req, size: size, offset: Int(offset), handle: fi.pointee.fh, plus: true)
        }
        ops.releasedir = { req, _, fi in
            guard let req, let fi else { return }
            AdapterContext.from(req).fs.releasedir(handle: fi.pointee.fh)
            fuse_reply_err(req, 0)
        }
        ops.fsyncdir = { req, _, _, _ in
            guard let req else { return }
            let context = AdapterContext.from(req)
            do throws(FSError) { try context.fs.fsyncdir(); fuse_reply_err(req, 0) } catch { context.fail(req, error) }
        }
        ops.statfs = { req, _ in
            guard let req else { return }
            let stats = AdapterContext.from(req).fs.statfs()
            var result = statvfs()
            result.f_bsize = UInt(stats.blockSize)
            result.f_frsize = UInt(stats.blockSize)
            result.f_blocks = UInt(stats.blocks)
            result.f_bfree = UInt(stats.freeBlocks)
            result.f_bavail = UInt(stats.availableBlocks)
            result.f_files = UInt(stats.files)
            result.f_ffree = UInt(stats.freeFiles)
            result.f_favail = UInt(stats.freeFiles)
            result.f_namemax = UInt(stats.nameMax)
            fuse_reply_statfs(req, &result)
        }
        // Extended attributes are not versioned: none can be read or set. getxattr answers
        // ENOSYS, which the kernel remembers for the whole mount and turns into EOPNOTSUPP
        // without asking again: `ls -l` asks for two ACL attributes per file, and those
        // round trips were 80 % of `ls -lR` (bench/RESULTS.md).
        ops.getxattr = { req, _, _, _ in if let req { fuse_reply_err(req, ENOSYS) } }
        ops.listxattr = { req, _, size in
            guard let req else { return }
            if size == 0 { fuse_reply_xattr(req, 0) } else { fuse_reply_buf(req, nil, 0) }
        }
        ops.setxattr = { req, _, _, _, _, _ in if let req { fuse_reply_err(req, ENOTSUP) } }
        ops.removexattr = { req, _, _ in if let req { fuse_reply_err(req, ENOTSUP) } }
        return ops
    }

    /// unlink and rmdir: `remove` the entry `name` of `parent` and reply with success.
    static func remove(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?,
                       _ remove: @escaping @Sendable (any FileSystemCore, UInt64, String, Bool) throws(FSError) -> Void) {
        guard let req, let name else { return }
        let context = AdapterContext.from(req), fs = context.fs
        guard let entryName = existingName(name) else { return context.fail(req, FSError(ENOENT, "no such name")) }
        context.run(req, { mayBlock throws(FSError) in try remove(fs, UInt64(parent), entryName, mayBlock) },
                    reply: { req, _ in fuse_reply_err(req, 0) })
    }

    /// The name of an entry that may exist: nil when it is not valid UTF-8, which no
    /// name on a mount is.
    static func existingName(_ name: UnsafePointer<CChar>) -> String? {
        String(validatingCString: name)
    }

    /// The name of an entry to create (or a symlink target): one that is not valid
    /// UTF-8 is refused with EILSEQ and nothing is created. Repositories name paths in
    /// UTF-8; silently repairing the bytes would make two names collide.
    static func newName(_ name: UnsafePointer<CChar>, _ req: fuse_req_t, _ context: AdapterContext) -> String? {
        if let decoded = String(validatingCString: name) { return decoded }
        context.fail(req, FSError(EILSEQ, "name is not valid UTF-8; a repository names paths in UTF-8"))
        return nil
    }

    /// Fills one reply buffer with directory entries from `offset`; for readdirplus
    /// every entry added (except . and ..) counts as a lookup, as the kernel expects.
    private static func readdir(_ req: fuse_req_t, size: Int, offset: Int, handle: UInt64, plus: Bool) {
        let context = AdapterContext.from(req)
        let entries: ArraySlice<DirectoryListingEntry>
        do throws(FSError) { entries = try context.fs.readdir(handle: handle, offset: offset) } catch {
            context.fail(req, error)
            return
        }
        var buffer = [CChar](repeating: 0, count: size)
        var used = 0
        var next = offset
        buffer.withUnsafeMutableBufferPointer { raw in
            guard let base = raw.baseAddress else { return }
            for entry in entries {
                next += 1
                let remaining = size - used
                let needed: Int
                if plus {
                    let isDot = entry.name == "." || entry.name == ".."
                    var param = fuse_entry_param()
                    if !isDot, let attributes = context.fs.entryAttributes(entry.ino) {
                        param = context.entry(attributes)
                    } else {
                        param.attr.st_ino = UInt(entry.ino)
                        param.attr.st_mode = entry.kind.typeBits
                    }
                    needed = fuse_add_direntry_plus(req, base + used, remaining, entry.name, &param, off_t(next))
                    if needed <= remaining && !isDot && param.ino != 0 { context.fs.retain(entry.ino, count: 1) }
                } else {
                    var stat = Glibc.stat()
                    stat.st_ino = UInt(entry.ino)
                    stat.st_mode = entry.kind.typeBits
                    needed = fuse_add_direntry(req, base + used, remaining, entry.name, &stat, off_t(next))
                }
                if needed > remaining { break }
                used += needed
            }
        }
        _ = buffer.withUnsafeBufferPointer { fuse_reply_buf(req, $0.baseAddress, used) }
    }

    private static func changes(_ attr: Glibc.stat, _ toSet: Int32) -> AttributeChanges {
        var changes = AttributeChanges()
        if toSet & FUSE_SET_ATTR_MODE != 0 { changes.permissions = attr.st_mode & 0o7777 }
        if toSet & FUSE_SET_ATTR_UID != 0 { changes.uid = attr.st_uid }
        if toSet & FUSE_SET_ATTR_GID != 0 { changes.gid = attr.st_gid }
        if toSet & FUSE_SET_ATTR_SIZE != 0 { changes.size = UInt64(max(0, attr.st_size)) }
        let now = Timestamp.now()
        if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 {
            changes.atime = now
        } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
            changes.atime = Timestamp(seconds: Int64(attr.st_atim.tv_sec), nanoseconds: Int64(attr.st_atim.tv_nsec))
        }
        if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 {
            changes.mtime = now
        } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
            changes.mtime = Timestamp(seconds: Int64(attr.st_mtim.tv_sec), nanoseconds: Int64(attr.st_mtim.tv_nsec))
        }
        return changes
    }
}
