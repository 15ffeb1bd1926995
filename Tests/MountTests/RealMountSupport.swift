import Foundation
import MesaAPI
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

/// Runs a shell command with a time limit (`timeout` kills it), returning its status
/// and combined output.
@discardableResult
func shell(_ command: String, in directory: String, seconds: Int = 120, sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    process.arguments = ["-k", "5", String(seconds), "/bin/sh", "-c", command]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var environment = ProcessInfo.processInfo.environment
    environment["GIT_CONFIG_NOSYSTEM"] = "1"
    environment["HOME"] = directory
    environment["LC_ALL"] = "C"
    process.environment = environment
    let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("mesa-shell-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    process.waitUntilExit()
    try handle.close()
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    return CommandResult(status: process.terminationStatus, output: output)
}

/// Like `shell`, but records an issue (with the output) when the command fails.
func mustRun(_ command: String, in directory: String, seconds: Int = 120, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let result = try shell(command, in: directory, seconds: seconds)
    #expect(result.status == 0, "`\(command)` exited \(result.status):\n\(result.output)", sourceLocation: sourceLocation)
}
