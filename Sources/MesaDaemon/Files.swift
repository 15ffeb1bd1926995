import Foundation
@_exported import MesaProtocol

/// Creates a directory (and parents) with `mode`, and tightens the mode if it exists.
func makePrivateDirectory(_ path: String, mode: mode_t = 0o700) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    guard chmod(path, mode) == 0 else {
        throw ConfigError("cannot set permissions of \(path): \(String(cString: strerror(errno)))")
    }
}

/// Writes a file atomically with mode 0600 (config and secrets hold keys).
func writePrivateFile(_ path: String, _ text: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let temporary = path + ".tmp-\(getpid())"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))") }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let result = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if result < 0 && errno == EINTR { continue }
        guard result > 0 else {
            close(descriptor)
            throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        written += result
    }
    fsync(descriptor)
    close(descriptor)
    guard rename(temporary, path) == 0 else { throw ConfigError("cannot write \(path): \(String(cString: strerror(errno)))") }
}

/// A configuration problem the user must fix; the message says where and how.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
