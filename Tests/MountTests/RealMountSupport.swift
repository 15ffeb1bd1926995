import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// Real mounts need /dev/fuse; without it the tests say why and pass vacuously.
let fuseAvailable: Bool = {
    let available = FileManager.default.fileExists(atPath: "/dev/fuse")
    if !available { print("SKIP real-mount tests: /dev/fuse is absent on this machine") }
    return available
}()

extension MountFixture {
    /// Mounts `fs` at a fresh directory, runs `body`, and always unmounts.
    func withMount(_ fs: RepoFileSystem, _ body: (String) throws -> Void) throws {
        let path = scratch("mnt")
        let session = try MountSession.start(at: path, root: fs, name: "\(org)/\(repo)")
        defer {
            session.stop()
            try? FileManager.default.removeItem(atPath: path)
        }
        try body(path)
    }
}

struct CommandResult {
    let status: Int32
    let output: String
}

/// Runs a shell command with a time limit (killed with its process group after
/// `seconds`), returning its status and combined output.
@discardableResult
func shell(_ command: String, in directory: String, seconds: Int = 120, sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
    var environment = ProcessInfo.processInfo.environment
    environment["GIT_CONFIG_NOSYSTEM"] = "1"
    environment["HOME"] = directory
    environment["LC_ALL"] = "C"
    let logs = try makeTemporaryDirectory("mesa-shell")
    defer { try? FileManager.default.removeItem(atPath: logs) }
    let child = try Child("/bin/sh", ["-c", "exec 2>&1; " + command], environment: environment, logs: logs,
                          workingDirectory: directory)
    defer { child.killGroup() }
    guard let status = child.exitCode(timeout: .seconds(seconds)) else {
        return CommandResult(status: 124, output: child.stdout + "\n(killed after \(seconds) s)")
    }
    return CommandResult(status: status, output: child.stdout)
}

/// Like `shell`, but records an issue (with the output) when the command fails.
func mustRun(_ command: String, in directory: String, seconds: Int = 120, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let result = try shell(command, in: directory, seconds: seconds)
    #expect(result.status == 0, "`\(command)` exited \(result.status):\n\(result.output)", sourceLocation: sourceLocation)
}
