import Foundation
@testable import MesaIgnore
import Testing

/// `.mesaignore` matching: hand-picked cases, then a differential run against
/// `git check-ignore --no-index` on a real tree.
@Suite struct IgnoreRulesTests {
    private func ignored(_ text: String, _ path: String, dir: Bool = false) -> Bool {
        IgnoreRules(parsing: text).isIgnored(path, isDirectory: dir)
    }

    @Test func basenamePatternsMatchAtAnyDepth() {
        #expect(ignored("*.o", "a.o"))
        #expect(ignored("*.o", "src/deep/a.o"))
        #expect(!ignored("*.o", "a.oo"))
        #expect(ignored("foo", "x/foo", dir: true))
        #expect(ignored("foo", "x/foo/bar"))  // below an ignored directory
    }

    @Test func slashAnchorsAPattern() {
        #expect(ignored("/foo", "foo"))
        #expect(!ignored("/foo", "x/foo"))
        #expect(ignored("a/b", "a/b"))
        #expect(!ignored("a/b", "x/a/b"))
        #expect(!ignored("a/*.c", "a/x/y.c"))  // `*` never crosses `/`
    }

    @Test func trailingSlashMatchesDirectoriesOnly() {
        #expect(ignored("out/", "out", dir: true))
        #expect(!ignored("out/", "out", dir: false))
        #expect(ignored("out/", "x/out/file"))
    }

    @Test func lastMatchWinsAndNegationCannotReachBelowAnIgnoredDirectory() {
        #expect(!ignored("*.log\n!keep.log", "keep.log"))
        #expect(ignored("*.log\n!keep.log\nkeep.log", "keep.log"))
        #expect(ignored("logs/\n!logs/keep.log", "logs/keep.log"))
        #expect(!ignored("logs/*\n!logs/keep.log", "logs/keep.log"))
    }

    @Test func doubleStarCrossesDirectories() {
        #expect(ignored("**/foo", "foo"))
        #expect(ignored("**/foo", "a/b/foo"))
        #expect(ignored("a/**/b", "a/b"))
        #expect(ignored("a/**/b", "a/x/y/b"))
        #expect(ignored("a/**", "a/x/y"))
        #expect(!ignored("a/**", "a", dir: true))
        #expect(ignored("a**b", "axxb"))
        #expect(!ignored("/a**b", "ax/xb"))  // `**` not beside slashes is a plain `*`
    }

    @Test func escapesCommentsBlanksAndTrailingSpaces() {
        #expect(!ignored("# comment", "# comment"))
        #expect(ignored("\\#hash", "#hash"))
        #expect(ignored("\\!bang", "!bang"))
        #expect(ignored("trail   ", "trail"))
        #expect(ignored("space\\ ", "space "))
        #expect(!ignored("space\\ ", "space"))
        #expect(!ignored("\n\n  \n", "anything"))
        #expect(ignored("crlf\r\n", "crlf"))
    }

    @Test func bracketExpressions() {
        #expect(ignored("file[0-9].txt", "file7.txt"))
        #expect(!ignored("file[0-9].txt", "filex.txt"))
        #expect(ignored("file[!0-9].txt", "filex.txt"))
        #expect(ignored("file[^0-9].txt", "filex.txt"))
        #expect(ignored("[[:upper:]]*", "Readme"))
        #expect(!ignored("[[:upper:]]*", "readme"))
        #expect(ignored("a[]]b", "a]b"))
    }

    @Test func defaultsIgnoreToolOutputButNotAmbiguousNames() {
        let rules = IgnoreRules(mesaignore: nil)
        #expect(rules.isIgnored("node_modules", isDirectory: true))
        #expect(rules.isIgnored("web/node_modules/react/index.js", isDirectory: false))
        #expect(rules.isIgnored("pkg/__pycache__/m.cpython-312.pyc", isDirectory: false))
        #expect(rules.isIgnored("m.pyc", isDirectory: false))
        #expect(rules.isIgnored(".venv/bin/python", isDirectory: false))
        #expect(rules.isIgnored("target/debug/app", isDirectory: false))
        #expect(!rules.isIgnored("build/Makefile", isDirectory: false))
        #expect(!rules.isIgnored("src/main.rs", isDirectory: false))
        // A file named like an ignored directory is content.
        #expect(!rules.isIgnored("dist", isDirectory: false))
    }

    @Test func mesaignoreAddsToAndOverridesTheDefaults() {
        let rules = IgnoreRules(mesaignore: "!dist/\n/build/\n")
        #expect(!rules.isIgnored("dist/app.js", isDirectory: false))
        #expect(rules.isIgnored("build/out.o", isDirectory: false))
        #expect(!rules.isIgnored("src/build/x", isDirectory: false))
        #expect(rules.isIgnored("node_modules/x", isDirectory: false))
    }

    /// Random patterns and paths from a small alphabet (so they collide often), checked
    /// against git on a real tree. Fixed seed: a failure names the rules and the path.
    @Test(.timeLimit(.minutes(2))) func agreesWithGitCheckIgnore() throws {
        var rng = SeededGenerator(state: 0x6d657361)
        let names = ["a", "b", "ab", "a.c", "b.o", "x y", "#h", "!n", "[", "ba"]
        let patternPieces = ["a", "b", "*", "?", "**", "a*", "*.c", "[ab]", "[!a]", "[a-b]*", "\\#h", "\\!n", "x\\ y", "\\[", "*.o", "b?"]
        var ignoredSeen = 0, keptSeen = 0
        for round in 0..<40 {
            // A tree of up to three levels.
            var dirs: Set<String> = [""]
            var files: Set<String> = []
            for _ in 0..<40 {
                let parent = dirs.sorted().randomElement(using: &rng) ?? ""  // sorted: Set order varies per process
                let name = names.randomElement(using: &rng) ?? "a"
                let path = parent.isEmpty ? name : parent + "/" + name
                if dirs.contains(path) || files.contains(path) { continue }
                if path.split(separator: "/").count < 3 && Bool.random(using: &rng) { dirs.insert(path) } else { files.insert(path) }
            }
            dirs.remove("")
            var lines: [String] = []
            for _ in 0..<Int.random(in: 2...6, using: &rng) {
                var pattern = (0..<Int.random(in: 1...3, using: &rng)).map { _ in patternPieces.randomElement(using: &rng) ?? "a" }
                    .joined(separator: "/")
                if Int.random(in: 0..<4, using: &rng) == 0 { pattern = "/" + pattern }
                if Int.random(in: 0..<4, using: &rng) == 0 { pattern += "/" }
                if Int.random(in: 0..<4, using: &rng) == 0 { pattern = "!" + pattern }
                if Int.random(in: 0..<6, using: &rng) == 0 { pattern += "  " }
                if Int.random(in: 0..<8, using: &rng) == 0 { pattern = "# " + pattern }
                lines.append(pattern)
            }
            let text = lines.joined(separator: "\n") + "\n"
            let git = try gitIgnored(text: text, dirs: dirs, files: files)
            let rules = IgnoreRules(parsing: text)
            for path in (dirs.union(files)).sorted() {
                let ours = rules.isIgnored(path, isDirectory: dirs.contains(path))
                #expect(ours == git.contains(path), "round \(round): rules \(lines) path '\(path)': git says \(git.contains(path))")
                if git.contains(path) { ignoredSeen += 1 } else { keptSeen += 1 }
            }
        }
        // The oracle was exercised both ways, not vacuously.
        #expect(ignoredSeen > 30 && keptSeen > 30, "ignored \(ignoredSeen), kept \(keptSeen)")
    }

    /// What `git check-ignore --no-index` reports ignored among the tree's paths.
    private func gitIgnored(text: String, dirs: Set<String>, files: Set<String>) throws -> Set<String> {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mesaignore-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for dir in dirs { try FileManager.default.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true) }
        for file in files { try Data().write(to: root.appendingPathComponent(file)) }
        try Data(text.utf8).write(to: root.appendingPathComponent(".gitignore"))
        _ = try run(["git", "init", "-q"], in: root, input: nil)
        let output = try run(["git", "-c", "core.quotePath=false", "check-ignore", "--no-index", "-z", "--stdin"], in: root,
                             input: (dirs.union(files)).sorted().joined(separator: "\0") + "\0")
        return Set(output.split(separator: "\0").map(String.init))
    }

    private func run(_ arguments: [String], in directory: URL, input: String?) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let output = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // check-ignore exits 1 when nothing is ignored.
        guard process.terminationStatus <= 1 else { throw CocoaError(.executableLoad) }
        return String(decoding: data, as: UTF8.self)
    }
}

