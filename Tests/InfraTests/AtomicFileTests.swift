import Foundation
import Infra
import Testing

@Suite struct AtomicFileTests {
    @Test func replacesTheFileWithTheModeAndLeavesNoTemporaryBehind() throws {
        let directory = NSTemporaryDirectory() + "atomic-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/nested/secrets.toml"
        try AtomicFile.write(path, "first".utf8, mode: 0o600)
        try AtomicFile.write(path, "second \"quoted\" ✓".utf8, mode: 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second \"quoted\" ✓")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/nested") == ["secrets.toml"])
    }

    @Test func aFileThatCannotBeWrittenIsAFailureNamingItAndChangesNothing() throws {
        let directory = NSTemporaryDirectory() + "atomic-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let blocker = directory + "/file"
        try AtomicFile.write(blocker, "kept".utf8, mode: 0o644)
        // A path below a regular file: no directory can hold it.
        #expect { try AtomicFile.write(blocker + "/inside", "x".utf8, mode: 0o644) } throws: { error in
            (error as? AtomicFile.Failure)?.description.contains(blocker + "/inside") == true
        }
        #expect(try String(contentsOfFile: blocker, encoding: .utf8) == "kept")
    }
}
