import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Large test files: the same bytes for the same seed, written 1 MiB at a time, and
/// compared with `cmp` rather than read into memory.
public enum LargeFile {
    /// Writes `size` deterministic pseudo-random bytes to a new file.
    public static func generate(_ path: String, size: Int, seed: UInt64) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot create \(path)") }
        defer { close(fd) }
        var state = seed
        var chunk = [UInt64](repeating: 0, count: (1 << 20) / 8)
        var written = 0
        while written < size {
            for index in chunk.indices {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                chunk[index] = state
            }
            let count = min(1 << 20, size - written)
            guard chunk.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, count) }) == count else {
                throw TestFailure("short write to \(path)")
            }
            written += count
        }
    }

    /// Whether two files hold the same bytes.
    public static func sameBytes(_ a: String, _ b: String) -> Bool {
        guard let process = try? Process.run(URL(fileURLWithPath: "/usr/bin/cmp"), arguments: ["-s", a, b]) else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
