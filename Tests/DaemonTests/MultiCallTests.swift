import Foundation
import MesaDaemon
import Testing
import TestSupport

/// The release bundle's one executable (`mesa-multicall`) under the names the bundle gives
/// it (links called mesad, mesa, mesa-client, mesa-server in one directory, as in its
/// bin/): each name runs its command, a client starts the daemon through the mesad link,
/// and any other name is refused with exit 2 and changes nothing.
@Suite(.timeLimit(.minutes(3))) struct MultiCallTests {
    static let commands = ["mesad", "mesa", "mesa-client", "mesa-server"]

    /// A directory of links to the multi-call binary named `names`, in the sandbox.
    private func links(_ sandbox: Sandbox, _ names: [String] = commands) throws -> String {
        let binary = try Executables.path("mesa-multicall")
        let directory = sandbox.root + "/bin"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in names {
            try FileManager.default.createSymbolicLink(atPath: directory + "/" + name, withDestinationPath: binary)
        }
        return directory
    }

    @Test func eachNameRunsItsCommand() async throws {
        let sandbox = try Sandbox()
        let bin = try links(sandbox)
        for name in Self.commands {
            let run = try await Run.run(bin + "/" + name, ["--help"], sandbox: sandbox)
            #expect(run.code == 0, "\(name) --help: \(run.stderr)")
            #expect(run.stdout.contains("USAGE: \(name) "), "\(name) --help printed: \(run.stdout)")
        }
        let version = try await Run.run(bin + "/mesad", ["--version"], sandbox: sandbox)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == Daemon.version)
        // Run by its own name, the first argument picks the command.
        let named = try await Run.run(try Executables.path("mesa-multicall"), ["mesa-server", "init", "--help"], sandbox: sandbox)
        #expect(named.code == 0 && named.stdout.contains("USAGE: mesa-server init "), "\(named.stdout) \(named.stderr)")
    }

    @Test func anyOtherNameIsRefusedAndChangesNothing() async throws {
        let sandbox = try Sandbox()
        let bin = try links(sandbox, ["mesa-foo"])
        let before = try FileManager.default.contentsOfDirectory(atPath: sandbox.root).filter { !$0.hasSuffix(".out") && !$0.hasSuffix(".err") }
        let multicall = try Executables.path("mesa-multicall")
        for (path, arguments, reason) in [(bin + "/mesa-foo", ["mount", "-d", "-y"], "'mesa-foo' is not a mesa command"),
                                          (multicall, [], "no command given"),
                                          (multicall, ["mesa-foo", "-d"], "'mesa-foo' is not a mesa command")] {
            let run = try await Run.run(path, arguments, sandbox: sandbox)
            #expect(run.code == 2, "\(path) \(arguments): \(run.code)")
            #expect(run.stderr.contains(reason), "\(run.stderr)")
            #expect(run.stderr.contains("mesad, mesa, mesa-client and mesa-server"), "the error names the commands: \(run.stderr)")
            #expect(run.stdout.isEmpty)
        }
        let after = try FileManager.default.contentsOfDirectory(atPath: sandbox.root).filter { !$0.hasSuffix(".out") && !$0.hasSuffix(".err") }
        #expect(after.sorted() == before.sorted(), "no store, runtime directory or config was created")
        #expect(!Daemonizer.answers(sandbox.socketPath))
    }

    /// `mesa-client` finds the mesad link beside it, and `mesad -d` re-executes the
    /// multi-call binary as mesad: the daemon answers, its argv[0] is mesad (what the pid
    /// file checks and `ps` show), and the client's shutdown stops it.
    @Test func aClientStartsTheDaemonThroughItsLink() async throws {
        let sandbox = try Sandbox()
        let bin = try links(sandbox)
        defer { killRecordedDaemon(sandbox) }
        let environment = ["MESA_NO_CONFIG_FILE": "1", "PATH": "/usr/bin:/bin"]
        let listed = try await Run.run(bin + "/mesa-client", ["list-orgs"], sandbox: sandbox, environment: environment)
        #expect(listed.code == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("local"), "\(listed.stdout)")
        let daemon = try #require(recordedDaemon(sandbox), "no pid file at \(sandbox.pidFile)")
        #expect(daemon.isMesad, "argv[0] of the daemon is mesad")
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemon.pid)/exe")
        #expect(exe == (try Executables.path("mesa-multicall") as NSString).resolvingSymlinksInPath, "the daemon runs \(exe)")

        let stopped = try await Run.run(bin + "/mesa-client", ["shutdown"], sandbox: sandbox, environment: environment)
        #expect(stopped.code == 0, "\(stopped.stderr)")
        #expect(await eventually(timeout: .seconds(30)) { !daemon.isAlive })
    }
}
