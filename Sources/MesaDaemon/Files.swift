import Foundation
import Infra
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
    do { try AtomicFile.write(path, text.utf8, mode: 0o600) } catch { throw ConfigError(error.description) }
}

/// A configuration problem the user must fix; the message says where and how.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
