// mesa-fuzz: what a hostile peer controls, fed arbitrary bytes. The first byte picks the
// surface: 0 the LSP frame parser and the JSON-RPC message decoder behind it, 1 JSON
// parsing and decoding into method params, 2 the name and path rules. Any crash, trap
// or broken invariant is a finding.
//
// Built two ways. scripts/fuzz.sh builds it with libFuzzer (`-D FUZZING`, coverage
// instrumentation, ASan) and fuzzes for a bounded time; a normal build replays files
// (the corpus in fuzz/corpus and every finding), which the test suite does on each run.
import Foundation
import MesaProtocol
import Model
import RPC

enum Harness {
    static func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: input.dropFirst())
        switch selector % 3 {
        case 0: frames(rest)
        case 1: json(Array(rest))
        default: names(String(decoding: rest, as: UTF8.self))
        }
    }

    /// Frames as they arrive from a socket, in two pieces, then each body as a message.
    static func frames(_ bytes: UnsafeRawBufferPointer) {
        var parser = FrameParser(maximumFrameSize: 1 << 20, maximumHeaderSize: 8 << 10)
        let split = bytes.count / 2
        for piece in [UnsafeRawBufferPointer(rebasing: bytes[..<split]), UnsafeRawBufferPointer(rebasing: bytes[split...])] {
            parser.append(piece)
            while true {
                guard let body = try? parser.next() else { break }
                _ = MessageParser.parse(body)
            }
        }
    }

    /// Parsed JSON decodes (or refuses to decode) into typical params without trapping,
    /// and what parses serializes back to JSON that parses to the same value.
    static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONValue.parse(bytes) else { return }
        _ = try? value.decode(ListChanges.Params.self)
        _ = try? value.decode(CreateBookmark.Params.self)
        _ = try? value.decode(Checkpoint.Params.self)
        let again = try? JSONValue.parse(value.serialized)
        if again == nil { fatalError("serialized JSON does not parse again: \(value)") }
    }

    /// Whatever the rules accept is something git and the filesystem can hold.
    static func names(_ text: String) {
        if (try? Validation.bookmarkName(text)) != nil {
            let bad = text.hasPrefix("-") || text.contains("..") || text.hasPrefix("refs/")
                || text.unicodeScalars.contains { $0.value < 0x20 || $0.properties.generalCategory == .format }
                || text.split(separator: "/").contains { $0.utf8.count > Validation.maxRefComponentBytes || $0.hasSuffix(".lock") }
            if bad { fatalError("bookmark name accepted: \(text.debugDescription)") }
        }
        if let components = try? Validation.pathComponents(text) {
            for component in components where component.isEmpty || component == "." || component == ".."
                || Validation.isDotGit(component) || component.utf8.contains(0) {
                fatalError("path accepted with component \(component.debugDescription): \(text.debugDescription)")
            }
        }
        _ = try? Validation.repoName(text)
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main struct MesaFuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv) { data, size in
            Harness.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
    }
}
#else
/// Replays every file named (directories: every file in them) through the harness.
@main struct MesaFuzz {
    static func main() {
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("mesa-fuzz: no such file or directory: \(argument)\n".utf8))
                exit(2)
            }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []).sorted().map { argument + "/" + $0 }
                : [argument]
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                data.withUnsafeBytes { Harness.run($0) }
                count += 1
            }
        }
        print("mesa-fuzz: replayed \(count) inputs, no crash")
    }
}
#endif
