import Foundation
import Testing

/// Every input in fuzz/corpus (the seeds and each finding of scripts/fuzz.sh, kept as a
/// regression test) goes through the fuzzed surfaces again: frames, JSON, names.
@Suite(.timeLimit(.minutes(2)))
struct FuzzCorpusTests {
    @Test func everyCorpusInputReplaysWithoutACrash() async throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fuzz/corpus").path
        let inputs = try FileManager.default.contentsOfDirectory(atPath: corpus)
        try #require(inputs.count >= 10, "the seed corpus is missing")
        let logs = try makeTemporaryDirectory("fuzz-replay")
        let replay = try Child(try Executables.path("mesa-fuzz"), [corpus], environment: [:], logs: logs)
        defer { replay.kill() }
        let code = try await replay.waitExitCode(timeout: .seconds(90))
        #expect(code == 0, "stderr: \(replay.stderr.suffix(2000))")
        #expect(replay.stdout.contains("replayed \(inputs.count) inputs, no crash"), "\(replay.stdout)")
    }
}
