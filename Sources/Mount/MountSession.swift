import CFuse
import Dispatch
import Foundation
import Logging
import Synchronization

/// A libfuse session pointer; libfuse synchronizes its own use of it.
struct SessionPointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// Pushes kernel cache invalidations for a session (never from inside a FUSE callback:
/// the header documents the deadlock).
struct SessionInvalidator: Invalidator {
    let session: SessionPointer

    func invalidateInode(_ ino: UInt64) {
        _ = fuse_lowlevel_notify_inval_inode(session.raw, fuse_ino_t(ino), 0, 0)
    }

    func invalidateEntry(parent: UInt64, name: String) {
        _ = name.withCString { fuse_lowlevel_notify_inval_entry(session.raw, fuse_ino_t(parent), $0, strlen($0)) }
    }
}

/// One FUSE mount: a filesystem core served at a directory by libfuse's multithreaded
/// loop on its own thread. Setup and teardown follow libfuse's passthrough_ll.c:
/// new session → mount → loop … exit → unmount → join → destroy.
public final class MountSession: Sendable {
    public struct Options: Sendable {
        /// Let other local users reach the mount (needs `user_allow_other` unless root).
        /// Off by default: they would read everything the daemon's key can read and
        /// write where modes allow, uploading as that key.
        public var allowOther: Bool
        public var maxThreads: UInt32
        /// How long `stop` waits for busy files before aborting the connection.
        public var stopTimeout: Duration

        public init(allowOther: Bool = false, maxThreads: UInt32 = 16, stopTimeout: Duration = .seconds(5)) {
            self.allowOther = allowOther
            self.maxThreads = maxThreads
            self.stopTimeout = stopTimeout
        }
    }

    public let path: String
    public let fs: any FileSystemCore
    private let session: SessionPointer
    private let userdata: SendableRawPointer
    private let loopDone = DispatchSemaphore(value: 0)
    private let stopped = Mutex(false)
    /// Set by the loop thread when libfuse's loop returns (a class: the thread shares it).
    private let loopEnded = EndFlag()
    private let logger: Logger

    /// Mounts `fs` at `path` (created if missing; a stale mount left by a crashed
    /// daemon is cleared first) and starts serving.
    /// Caps glibc's malloc arenas (see mesad's main): one per thread would keep the
    /// memory each FUSE worker freed.
    public static func limitMallocArenas(_ count: Int32) { cfuse_malloc_arenas(count) }

    public static func start(at path: String, root fs: any FileSystemCore, name: String = "mesa",
                             options: Options = Options(), logger: Logger = Logger(label: "mesa.fuse")) throws(FSError) -> MountSession {
        clearStaleMount(at: path, logger: logger)
        // A layout may name a path whose parents do not exist yet (`/workspace/app`).
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FSError.posix("cannot create mount point \(path)") }
        return try MountSession(path: path, fs: fs, name: name, options: options, logger: logger)
    }

    private init(path: String, fs: any FileSystemCore, name: String, options: Options, logger: Logger) throws(FSError) {
        self.path = path
        self.fs = fs
        self.logger = logger
        let context = AdapterContext(fs: fs, logger: logger)
        let userdata = Unmanaged.passRetained(context).toOpaque()
        var ops = FUSEAdapter.operations()
        let safeName = name.filter { $0.isLetter || $0.isNumber || "-_./:".contains($0) }
        var mountOptions = "fsname=mesa:\(safeName),subtype=mesa,default_permissions"
        if options.allowOther { mountOptions += ",allow_other" }
        // As root, device nodes and setuid bits work as on a local filesystem (libfuse
        // would mount nodev,nosuid); other users cannot have them.
        if getuid() == 0 { mountOptions += ",dev,suid" }
        guard let raw = cfuse_session_new_options(mountOptions, &ops, userdata) else {
            Unmanaged<AdapterContext>.fromOpaque(userdata).release()
            throw FSError(EIO, "libfuse refused to create a session (options \(mountOptions))")
        }
        guard fuse_session_mount(raw, path) == 0 else {
            fuse_session_destroy(raw)
            Unmanaged<AdapterContext>.fromOpaque(userdata).release()
            throw FSError(EIO, "cannot mount at \(path): is /dev/fuse available and the directory usable? (see the log for libfuse's reason)")
        }
        session = SessionPointer(raw: raw)
        self.userdata = SendableRawPointer(raw: userdata)
        let session = self.session, done = loopDone, threads = options.maxThreads, ended = loopEnded
        let thread = Thread {
            _ = cfuse_session_loop_mt(session.raw, threads, 0)
            ended.set()
            done.signal()
        }
        thread.name = "mesa-fuse-loop"
        thread.start()
        fs.attach(SessionInvalidator(session: session))
        stopTimeout = options.stopTimeout
        logger.info("mounted", metadata: ["path": "\(path)", "name": "\(safeName)"])
    }

    private let stopTimeout: Duration

    /// False once the kernel connection ended without `stop()` (someone ran
    /// `fusermount -u` on it, or the connection was aborted): the mount is lost.
    public var isServing: Bool {
        !stopped.withLock { $0 } && !loopEnded.isSet
    }

    /// Unmounts and waits for the loop to end. Open files delay the end; after
    /// `stopTimeout` the connection is aborted (their descriptors then fail with ENOTCONN).
    /// Flush the filesystem first if its writes must be uploaded.
    public func stop() {
        let already = stopped.withLock { stopped in defer { stopped = true }; return stopped }
        guard !already else { return }
        fs.attach(nil)
        let connection = Self.connectionNumber(path)
        fuse_session_exit(session.raw)
        fuse_session_unmount(session.raw)
        let seconds = Double(stopTimeout.components.seconds) + Double(stopTimeout.components.attoseconds) / 1e18
        if loopDone.wait(timeout: .now() + seconds) == .timedOut {
            logger.error("mount is busy; aborting its connection", metadata: ["path": "\(path)"])
            if let connection { Self.abortConnection(connection) }
            if loopDone.wait(timeout: .now() + 5) == .timedOut {
                logger.critical("FUSE loop did not stop; leaking the session", metadata: ["path": "\(path)"])
                return
            }
        }
        // Requests answered from the slow queue must reply before the session goes.
        Unmanaged<AdapterContext>.fromOpaque(userdata.raw).takeUnretainedValue().slowQueue.sync(flags: .barrier) {}
        fuse_session_destroy(session.raw)
        Unmanaged<AdapterContext>.fromOpaque(userdata.raw).release()
        logger.info("unmounted", metadata: ["path": "\(path)"])
    }

    deinit { stop() }

    /// Test hook: what a `kill -9` of the daemon leaves behind. Aborts the kernel
    /// connection without unmounting, so the mount point answers "Transport endpoint
    /// is not connected" until `clearStaleMount` runs.
    func simulateCrash() {
        let already = stopped.withLock { stopped in defer { stopped = true }; return stopped }
        guard !already else { return }
        fs.attach(nil)
        guard let connection = Self.connectionNumber(path) else { return }
        Self.abortConnection(connection)
        if loopDone.wait(timeout: .now() + 10) == .success {
            fuse_session_destroy(session.raw)
            Unmanaged<AdapterContext>.fromOpaque(userdata.raw).release()
        }
    }

    // MARK: Stale mounts

    /// A daemon killed with its mount in place leaves "Transport endpoint is not
    /// connected" behind; lazily unmount it so the path can be mounted again.
    /// Returns whether something was cleared.
    @discardableResult
    public static func clearStaleMount(at path: String, logger: Logger = Logger(label: "mesa.fuse")) -> Bool {
        // statfs always reaches the server (stat may be answered from the kernel's cache).
        var info = statvfs()
        guard statvfs(path, &info) != 0, errno == ENOTCONN || errno == ECONNABORTED else { return false }
        logger.info("clearing a stale mount", metadata: ["path": "\(path)"])
        if run("/usr/bin/fusermount3", ["-u", "-z", path]) || run("/bin/fusermount3", ["-u", "-z", path]) { return true }
        return umount2(path, Int32(MNT_DETACH)) == 0
    }

    private static func run(_ tool: String, _ arguments: [String]) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: tool) else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// The FUSE connection number (device minor) of the mount at `path`.
    private static func connectionNumber(_ path: String) -> UInt32? {
        var info = Glibc.stat()
        guard stat(path, &info) == 0 else { return nil }
        let device = UInt64(info.st_dev)
        return UInt32((device & 0xff) | ((device >> 12) & 0xfff00))
    }

    private static func abortConnection(_ number: UInt32) {
        let control = "/sys/fs/fuse/connections"
        if !FileManager.default.fileExists(atPath: "\(control)/\(number)/abort") {
            // The fusectl filesystem is not always mounted in containers; root can mount it.
            _ = Glibc.mount("fusectl", control, "fusectl", 0, nil)
        }
        let fd = open("\(control)/\(number)/abort", O_WRONLY)
        guard fd >= 0 else { return }
        _ = "1".withCString { write(fd, $0, 1) }
        close(fd)
    }
}

final class EndFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

struct SendableRawPointer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
}
