import Foundation

/// Replaces a file all at once: the bytes go to a temporary file beside it (created with
/// `mode`, synced), which is then renamed over it, so a reader or a crash sees the old
/// file or the new one, never part of either. Missing parent directories are created.
public enum AtomicFile {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func write(_ path: String, _ bytes: some Sequence<UInt8>, mode: mode_t) throws(Failure) {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try file.write(contentsOf: Data(bytes))
            try file.synchronize()
            guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            unlink(temporary)
            throw Failure(description: "cannot write \(path): \(error.localizedDescription)")
        }
    }
}
