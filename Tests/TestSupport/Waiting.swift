import Foundation
import Infra

// The one test harness of every test target: temporary directories, waiting with
// deadlines off Swift's cooperative pool, the built executables, and child processes
// stopped by pid on every path. Nothing here calls #expect: assertions stay in tests.

/// Thrown by helpers when something they wait for does not happen in time.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A fresh directory under /tmp, short on purpose (a Unix socket path holds at most
/// 107 bytes): `/tmp/<prefix>.XXXXXX`.
public func makeTemporaryDirectory(_ prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap(mkdtemp) }) else {
        throw TestFailure("mkdtemp /tmp/\(prefix).XXXXXX failed: \(String(cString: strerror(errno)))")
    }
    return String(cString: made)
}

/// A temporary directory removed by `remove()` (or when the last reference goes).
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "mesad-test") throws { path = try makeTemporaryDirectory(prefix) }

    deinit { remove() }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs blocking work (waiting for processes, sockets, reads with timeouts) on a thread
/// of its own: Swift's cooperative pool has one thread per core (two here), and the
/// code under test needs them while a test waits.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

public func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes (blocking).
public func eventuallyBlocking(timeout: Duration = .seconds(30), _ condition: () -> Bool) -> Bool {
    ChildProcess.poll(until: .now + timeout, condition)
}

/// Polls `condition` off the cooperative pool until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(30), _ condition: @escaping @Sendable () -> Bool) async -> Bool {
    await offPool { eventuallyBlocking(timeout: timeout, condition) }
}

/// The directory holding mesad, mesa, mesa-client and mesa-server: next to the test
/// bundle (`swift build --build-tests` builds them there), or `$MESA_TEST_BIN_DIR`.
public enum Executables {
    public static let directory: String? = {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["MESA_TEST_BIN_DIR"] { candidates.append(override) }
        candidates.append((CommandLine.arguments[0] as NSString).deletingLastPathComponent)
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let directory = (own as NSString).deletingLastPathComponent
            // An .xctest bundle directory on some platforms: look beside the bundle too.
            candidates += [directory, (directory as NSString).deletingLastPathComponent]
        }
        candidates += [Bundle.main.bundleURL.deletingLastPathComponent().path, Bundle.main.bundlePath]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/mesad") }
    }()

    public static func path(_ name: String) throws -> String {
        guard let directory, FileManager.default.isExecutableFile(atPath: directory + "/" + name) else {
            throw TestFailure("\(name) is not built next to the test bundle (\(CommandLine.arguments[0])); run `swift build --build-tests` or set MESA_TEST_BIN_DIR")
        }
        return directory + "/" + name
    }
}
