import Foundation

public enum NodeKind: String, Sendable, Equatable, Codable {
    case directory, file, symlink
    /// Special files: they live in the mount's local layer only (a repository holds
    /// files, directories and symlinks); the kernel serves their I/O itself.
    case fifo, socket, charDevice, blockDevice

    /// The S_IFMT bits of `st_mode`.
    var typeBits: UInt32 {
        switch self {
        case .directory: UInt32(S_IFDIR)
        case .file: UInt32(S_IFREG)
        case .symlink: UInt32(S_IFLNK)
        case .fifo: UInt32(S_IFIFO)
        case .socket: UInt32(S_IFSOCK)
        case .charDevice: UInt32(S_IFCHR)
        case .blockDevice: UInt32(S_IFBLK)
        }
    }

    /// The special kind of a `mknod` mode, nil for anything else.
    public init?(specialMode mode: UInt32) {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFIFO): self = .fifo
        case UInt32(S_IFSOCK): self = .socket
        case UInt32(S_IFCHR): self = .charDevice
        case UInt32(S_IFBLK): self = .blockDevice
        default: return nil
        }
    }

    var isSpecial: Bool {
        switch self {
        case .fifo, .socket, .charDevice, .blockDevice: true
        case .directory, .file, .symlink: false
        }
    }
}

/// Who asks: the uid and gid of the process behind a FUSE request. New nodes are
/// owned by it, as on a local filesystem.
public struct Caller: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32) {
        self.uid = uid
        self.gid = gid
    }
}

/// A point in time as the kernel stores it.
public struct Timestamp: Sendable, Equatable, Codable {
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        seconds = Int64(interval.rounded(.down))
        nanoseconds = Int64((interval - Double(seconds)) * 1e9)
    }

    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int64(spec.tv_nsec))
    }

    var cValue: Glibc.timespec { Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds)) }
}

/// What `stat` reports for one inode.
public struct Attributes: Sendable, Equatable {
    public var ino: UInt64
    public var kind: NodeKind
    /// Permission bits only (no file type).
    public var permissions: UInt32
    public var size: UInt64
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var atime: Timestamp
    public var mtime: Timestamp
    public var ctime: Timestamp
    /// The device number of a device node.
    public var rdev: UInt64 = 0

    public var mode: UInt32 { kind.typeBits | permissions }

    static let blockSize: UInt64 = 4096

    /// The C `struct stat` the FUSE adapter replies with.
    public var stat: Glibc.stat {
        var result = Glibc.stat()
        result.st_ino = UInt(ino)
        result.st_mode = mode
        result.st_nlink = UInt(nlink)
        result.st_rdev = UInt(rdev)
        result.st_uid = uid
        result.st_gid = gid
        result.st_size = Int(clamping: size)
        result.st_blksize = Int(Self.blockSize)
        // st_blocks counts 512-byte units; sparse files are not tracked, so this is the
        // apparent size rounded up, which is what `du` on a dense file would show.
        result.st_blocks = Int((size + 511) / 512)
        result.st_atim = atime.cValue
        result.st_mtim = mtime.cValue
        result.st_ctim = ctime.cValue
        return result
    }
}

/// Which attributes a `setattr` call changes; nil fields stay as they are.
public struct AttributeChanges: Sendable, Equatable {
    public var permissions: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var atime: Timestamp?
    public var mtime: Timestamp?

    public init(permissions: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: UInt64? = nil,
                atime: Timestamp? = nil, mtime: Timestamp? = nil) {
        self.permissions = permissions
        self.uid = uid
        self.gid = gid
        self.size = size
        self.atime = atime
        self.mtime = mtime
    }
}

/// One directory entry as readdir returns it.
public struct DirectoryListingEntry: Sendable, Equatable {
    public let name: String
    public let ino: UInt64
    public let kind: NodeKind
}

/// What `statfs` reports. A versioned remote store has no real capacity, so the numbers
/// describe the local disk that holds the journal (where written data actually lands).
public struct FilesystemStats: Sendable, Equatable {
    public var blockSize: UInt64
    public var blocks: UInt64
    public var freeBlocks: UInt64
    public var availableBlocks: UInt64
    public var files: UInt64
    public var freeFiles: UInt64
    public var nameMax: UInt64
}

/// Open flags the core cares about, decoded from `fuse_file_info.flags`.
public struct OpenFlags: Sendable, Equatable {
    public var write: Bool
    public var truncate: Bool
    public var append: Bool
    public var exclusive: Bool

    public init(write: Bool = false, truncate: Bool = false, append: Bool = false, exclusive: Bool = false) {
        self.write = write
        self.truncate = truncate
        self.append = append
        self.exclusive = exclusive
    }

    public init(posix flags: Int32) {
        let access = flags & O_ACCMODE
        write = access == O_WRONLY || access == O_RDWR
        truncate = flags & O_TRUNC != 0
        append = flags & O_APPEND != 0
        exclusive = flags & O_EXCL != 0
    }
}

/// The answer to open/create: a handle, and whether the kernel may keep its page cache
/// (true only for unmodified blobs, whose content can never change).
public struct OpenResult: Sendable, Equatable {
    public let handle: UInt64
    public let keepCache: Bool
}

/// Where the bytes of a read are: a descriptor and a range the adapter hands to
/// `fuse_reply_data` (libfuse preads it, no copy through Swift).
public struct ReadSource: Sendable, Equatable {
    public let descriptor: Int32
    public let offset: Int64
    public let length: Int
}
