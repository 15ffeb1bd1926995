import Foundation
import MesaAPI
import Model
@testable import Mount
import Store
import Testing

/// `.mesaignore` and the default ephemeral set in the core: what is ignored stays in
/// the mount's local layer (never uploaded), survives a restart, and the rules follow
/// edits of `.mesaignore` made through the mount.
@Suite struct EphemeralPathTests {
    @Test func ignoredPathsAreNeverUploaded() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["src/a.py": "a"])
        let fs = try fx.mount()
        try fs.mkdirPath("node_modules")
        try fs.mkdirPath("node_modules/left-pad")
        try fs.writeText("node_modules/left-pad/index.js", "module.exports = 1")
        try fs.writeText("src/a.pyc", "bytecode")  // in a repository directory
        try fs.flush()
        // Nothing but ephemeral work: no change is created, nothing is pending.
        #expect(fs.status().workingChange == nil)
        #expect(fs.status().pendingUploads == 0)
        #expect(try fx.paths(at: .change(seed.id)).keys.sorted() == ["src/a.py"])

        try fs.writeText("src/b.py", "b")
        try fs.mkdirPath("build")
        try fs.writeText("build/out.txt", "build/ is content by default")
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working)) == ["src/a.py": "a", "src/b.py": "b", "build/out.txt": "build/ is content by default"])
        // Still readable locally.
        #expect(try fs.readText("node_modules/left-pad/index.js") == "module.exports = 1")
        #expect(try fs.readText("src/a.pyc") == "bytecode")
    }

    @Test func ignoredPathsSurviveARestart() throws {
        let fx = try MountFixture()
        try fx.seed(["src/a.py": "a"])
        var fs: RepoFileSystem? = try fx.mount()
        try fs?.mkdirPath("node_modules")
        try fs?.writeText("node_modules/x.js", "x")
        try fs?.writeText("src/a.pyc", "pyc")
        try fs?.writeText("top.pyc", "top")
        try fs?.writeText("content.txt", "c")
        try fs?.flush()
        // A second quiet round re-records local-only files from the tree.
        try fs?.writeText("src/a.pyc", "pyc2")
        try fs?.flush()
        try fs?.flush()
        fs = nil  // a daemon restart
        let recovered = try fx.mount()
        #expect(try recovered.readText("node_modules/x.js") == "x")
        #expect(try recovered.readText("src/a.pyc") == "pyc2")
        #expect(try recovered.readText("top.pyc") == "top")
        try recovered.flush()
        #expect(try fx.tree(at: .change(#require(recovered.status().workingChange))) == ["src/a.py": "a", "content.txt": "c"])
    }

    @Test func editingMesaignoreTakesEffectAtOnce() throws {
        let fx = try MountFixture()
        let seed = try fx.seed(["cache.tmp": "v1"])
        let fs = try fx.mount()
        try fs.writeText(".mesaignore", "# scratch\nlogs/\n*.tmp\n!dist/\n")
        try fs.mkdirPath("logs")
        try fs.writeText("logs/run.log", "log")
        try fs.mkdirPath("dist")
        try fs.writeText("dist/app.js", "app")  // a default, re-included
        try fs.writeText("cache.tmp", "v2")  // versioned before it became ignored
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working)) == [
            ".mesaignore": "# scratch\nlogs/\n*.tmp\n!dist/\n", "dist/app.js": "app", "cache.tmp": "v1",
        ], "the store keeps what it held of a newly ignored path")
        #expect(try fx.tree(at: .change(seed.id)) == ["cache.tmp": "v1"])
        #expect(try fs.readText("cache.tmp") == "v2")

        // Dropping a rule makes the local content it covered pending at once.
        try fs.writeText(".mesaignore", "*.tmp\n")
        try fs.flush()
        #expect(try fx.tree(at: .change(working))["logs/run.log"] == "log")
        #expect(try fx.tree(at: .change(working))["dist/app.js"] == "app", "ignored again: the store keeps it")
        #expect(fs.status().pendingUploads == 0)
    }

    /// With `durability = close` (every close syncs), ephemeral files are the exception.
    @Test func closingAnEphemeralFileSyncsNothingButADurableCloseStillDoes() throws {
        let fx = try MountFixture()
        var fs: RepoFileSystem? = try fx.mount(durability: .close)
        try fs?.mkdirPath("node_modules")
        try fs?.fsyncdir()
        try fs?.writeText("node_modules/big.js", String(repeating: "n", count: 10_000))
        try fs?.writeText("node_modules/small.js", "s")
        #expect(fs?.journal.hasUnsyncedRecords == true, "the ephemeral closes appended records without a sync")
        try fs?.writeText("notes.md", "durable")
        #expect(fs?.journal.hasUnsyncedRecords == false, "a normal close syncs the journal")
        fs = nil  // a daemon crash: the page cache still holds what was appended
        let recovered = try fx.mount(durability: .close)
        #expect(try recovered.readText("node_modules/big.js") == String(repeating: "n", count: 10_000))
        #expect(try recovered.readText("node_modules/small.js") == "s")
        #expect(try recovered.readText("notes.md") == "durable")
    }

    @Test func removingAnIgnoredDirectoryUploadsNothing() throws {
        let fx = try MountFixture()
        try fx.seed(["keep": "k"])
        let fs = try fx.mount()
        try fs.mkdirPath(".venv")
        try fs.writeText(".venv/pyvenv.cfg", "home = /usr")
        try fs.flush()
        try fs.unlink(parent: fs.ino(".venv"), name: "pyvenv.cfg")
        try fs.rmdir(parent: InodeTable.rootIno, name: ".venv")
        try fs.flush()
        #expect(fs.status().workingChange == nil, "no upload traffic for ephemeral paths")
    }
}

@Suite(.enabled(if: fuseAvailable, "needs /dev/fuse"), .timeLimit(.minutes(2)))
struct EphemeralRealMountTests {
    @Test func nodeModulesWrittenThroughTheKernelNeverReachesTheStore() throws {
        let fx = try MountFixture()
        try fx.seed(["package.json": "{}\n"])
        let fs = try fx.mount()
        try fx.withMount(fs) { path in
            try mustRun("""
                mkdir -p node_modules/left-pad && echo 'module.exports = 1' > node_modules/left-pad/index.js \
                && echo 'console.log(1)' > app.js && printf 'logs/\\n' > .mesaignore && mkdir logs && echo l > logs/a.log \
                && mkdir -p src/__pycache__ && echo c > src/__pycache__/m.pyc && echo 'print(1)' > src/m.py
                """, in: path)
            #expect(try String(contentsOfFile: path + "/node_modules/left-pad/index.js", encoding: .utf8) == "module.exports = 1\n")
            #expect(Set(fs.status().dirtyPaths).isDisjoint(with: ["node_modules/left-pad/index.js", "logs/a.log", "src/__pycache__/m.pyc"]))
        }
        try fs.flush()
        let working = try #require(fs.status().workingChange)
        #expect(try fx.tree(at: .change(working)) == [
            "package.json": "{}\n", "app.js": "console.log(1)\n", ".mesaignore": "logs/\n", "src/m.py": "print(1)\n",
        ])
    }
}
