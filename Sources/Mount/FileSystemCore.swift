import Foundation

/// What the FUSE adapter drives: one repository (`RepoFileSystem`) or the daemon's
/// `<org>/<repo>` tree (`TreeFileSystem`). Inode-based, like libfuse's low-level API.
/// Methods taking `mayBlock` throw `FSError.wouldBlock` rather than wait for the
/// backend when it is false.
public protocol FileSystemCore: AnyObject, Sendable {
    /// Read-only views get long kernel cache timeouts.
    var isReadOnly: Bool { get }

    func lookup(parent: UInt64, name: String, mayBlock: Bool) throws(FSError) -> Attributes
    func retain(_ ino: UInt64, count: UInt64)
    func forget(_ ino: UInt64, count: UInt64)
    func getattr(_ ino: UInt64) throws(FSError) -> Attributes
    func setattr(_ ino: UInt64, _ changes: AttributeChanges, handle: UInt64?, mayBlock: Bool) throws(FSError) -> Attributes
    func readlink(_ ino: UInt64, mayBlock: Bool) throws(FSError) -> String

    func mkdir(parent: UInt64, name: String, permissions: UInt32, caller: Caller?, mayBlock: Bool) throws(FSError) -> Attributes
    func symlink(parent: UInt64, name: String, target: String, caller: Caller?, mayBlock: Bool) throws(FSError) -> Attributes
    func mknod(parent: UInt64, name: String, mode: UInt32, rdev: UInt64, caller: Caller?, mayBlock: Bool) throws(FSError) -> Attributes
    func link(_ ino: UInt64, parent: UInt64, name: String, mayBlock: Bool) throws(FSError) -> Attributes
    func unlink(parent: UInt64, name: String, mayBlock: Bool) throws(FSError)
    func rmdir(parent: UInt64, name: String, mayBlock: Bool) throws(FSError)
    func rename(parent: UInt64, name: String, newParent: UInt64, newName: String, flags: UInt32, mayBlock: Bool) throws(FSError)

    func create(parent: UInt64, name: String, permissions: UInt32, flags: OpenFlags, caller: Caller?,
                mayBlock: Bool) throws(FSError) -> (Attributes, OpenResult)
    func open(_ ino: UInt64, flags: OpenFlags, mayBlock: Bool) throws(FSError) -> OpenResult
    func read(_ ino: UInt64, handle: UInt64, offset: Int64, size: Int, mayBlock: Bool) throws(FSError) -> ReadSource
    func write(_ ino: UInt64, handle: UInt64, offset: Int64, bytes: UnsafeRawBufferPointer) throws(FSError) -> Int
    func flush(_ ino: UInt64, handle: UInt64) throws(FSError)
    func fsync(_ ino: UInt64, handle: UInt64, dataOnly: Bool) throws(FSError)
    func release(_ ino: UInt64, handle: UInt64)
    func fallocate(_ ino: UInt64, handle: UInt64, mode: Int32, offset: Int64, length: Int64) throws(FSError)

    func opendir(_ ino: UInt64, mayBlock: Bool) throws(FSError) -> UInt64
    func readdir(handle: UInt64, offset: Int) throws(FSError) -> ArraySlice<DirectoryListingEntry>
    func entryAttributes(_ ino: UInt64) -> Attributes?
    func releasedir(handle: UInt64)
    func fsyncdir() throws(FSError)
    func statfs() -> FilesystemStats

    /// The FUSE session, for pushing cache invalidations.
    func attach(_ invalidator: (any Invalidator)?)
}

extension RepoFileSystem: FileSystemCore {
    public func attach(_ invalidator: (any Invalidator)?) { setInvalidator(invalidator) }
}
