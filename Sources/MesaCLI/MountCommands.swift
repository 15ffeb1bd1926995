import ArgumentParser
import Client
import Foundation
import MesaProtocol

/// `mesa mount [-d] [-y] [--layout F]`: make sure mesad runs and the tree (or a layout) is mounted.
struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Mount repositories under ~/.local/share/mesa/mnt/<org>/<repo> (or as a layout.json says).",
        discussion: "Without -d, mesad runs in the foreground until Ctrl+C; with -d this returns once the mount answers.")

    @Flag(name: .shortAndLong, help: "Run mesad in the background; return once the mount answers.") var daemonize = false
    @Flag(name: [.customShort("y"), .customLong("non-interactive")], help: "Never prompt; write a first-boot config from the environment.")
    var nonInteractive = false
    @Option(name: [.customShort("c"), .customLong("config-path")], help: "Use this config.toml.") var configPath: String?
    @Option(help: "Mount exactly the paths declared in this layout.json.") var layout: String?
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let layoutMounts = try layout.map { try Layout.load($0) }
        guard daemonize || layoutMounts != nil else {
            // Foreground: become mesad, mounting the tree; Ctrl+C unmounts and exits.
            var arguments = ["--mount"]
            if nonInteractive { arguments.append("-y") }
            if let configPath { arguments += ["--config-path", configPath] }
            try exec(mesad: arguments)
        }
        if MesaClient.isRunning() == false {
            var arguments = ["-d"] + (layoutMounts == nil ? ["--mount"] : [])
            if nonInteractive { arguments.append("-y") }
            if let configPath { arguments += ["--config-path", configPath] }
            do { try MesaClient.runDaemon(arguments) } catch {
                throw CLIFailure(message: error.description, status: CLIExit.unreachable)
            }
        }
        let client = try await options.connect()
        defer { client.close() }
        do {
            if let layoutMounts {
                for params in layoutMounts {
                    let info = try await client.call(MountMethod.self, params)
                    print("mounted \(info.org ?? "")/\(info.repo ?? "") (\(info.mode)) at \(info.path)")
                }
            } else {
                let info = try await client.call(MountMethod.self, .init())
                print("mounted at \(info.path)")
            }
        } catch {
            throw CLIFailure(error)
        }
    }

    private func exec(mesad arguments: [String]) throws -> Never {
        guard let path = MesaClient.mesadExecutable() else {
            throw CLIFailure(message: "no mesad executable next to mesa or on PATH", status: CLIExit.unreachable)
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        throw CLIFailure(message: "cannot run \(path): \(String(cString: strerror(errno)))", status: CLIExit.unreachable)
    }
}

struct UnmountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount", abstract: "Unmount a mount (default: the daemon tree), uploading pending writes first.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "A mount path, or a path inside a mounted repo.") var path: String?
    func run() async throws {
        var options = options
        options.noStart = true
        try await options.run(UnmountMethod.self, .init(path: path.map(absolutePath))) { result in
            result.unmounted.map { "unmounted \($0)" }.joined(separator: "\n")
        }
    }
}

/// Commands run from inside a mounted repo send their working directory as the selector.
func currentDirectory() -> String { FileManager.default.currentDirectoryPath }

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : currentDirectory() + "/" + path
}

struct NewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Start a new change: the next write builds on top of the current one (run inside a mounted repo).")
    @OptionGroup var options: ClientOptions
    func run() async throws {
        try await options.run(NewChange.self, .init(path: currentDirectory())) { "new work goes on top of \($0.changeId)" }
    }
}

struct EditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Switch this mounted repo to a bookmark or a change (run inside a mounted repo).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "A bookmark name or a 32-character change id.") var rev: String
    func run() async throws {
        let isChange = rev.count == 32 && rev.allSatisfy { ("k"..."z").contains($0) }
        let params = EditChange.Params(.path(currentDirectory()), .init(bookmark: isChange ? nil : rev, changeId: isChange ? rev : nil))
        try await options.run(EditChange.self, params) { status in
            "now on \(status.bookmark.map { "bookmark \($0), " } ?? "")change \(status.workingChangeId ?? status.baseChangeId)"
        }
    }
}

struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Save the working change and move the bookmark onto it (run inside a mounted repo).")
    @OptionGroup var options: ClientOptions
    @Option(name: .shortAndLong, help: "Description of the saved change.") var message: String?
    func run() async throws {
        try await options.run(Checkpoint.self, .init(.path(currentDirectory()), .init(message: message))) { result in
            result.created ? "saved \(result.savedChangeId)\(result.bookmark.map { "; \($0) moved onto it" } ?? "")" : "nothing to save"
        }
    }
}

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "List changes, newest first (run inside a mounted repo).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Reachable from this bookmark (default: the mount's bookmark).") var bookmark: String?
    @Option(help: "How many changes.") var limit: Int = 20
    func run() async throws {
        try await options.run(ListChanges.self, .init(.path(currentDirectory()), .init(.init(bookmark: bookmark), .init(limit: limit)))) { result in
            result.changes.map { change in
                let title = change.message.split(separator: "\n").first.map(String.init) ?? "(no description)"
                return "\(change.id.prefix(12))  \(change.updatedAt)  \(change.author)\n    \(title)"
            }.joined(separator: "\n")
        }
    }
}

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a change's description and its diff against its parent (default: the current change).",
        discussion: """
            The diff is a git patch: `mesa show REV | git apply` (in a checkout of the parent) reproduces the change, \
            new, deleted and renamed files, exec-bit changes and binary files included.
            """)
    @OptionGroup var options: ClientOptions
    @OptionGroup var daemon: DaemonChoice
    @Argument(help: "A bookmark or change id (default: @, the current change).") var rev: String?
    @Flag(name: .customLong("name-only"), help: "List the changed paths instead of the patch.") var nameOnly = false
    @Flag(name: .customLong("no-patch"), help: "Only the description.") var noPatch = false
    @Flag(name: .customLong("git"), help: "The patch in git's format (always the case; accepted for jj compatibility).") var git = false

    func validate() throws {
        if nameOnly && noPatch { throw ValidationError("--name-only and --no-patch cannot be used together") }
    }

    func run() async throws {
        try daemon.check()
        let params = ShowChange.Params(.path(currentDirectory()), .init(rev: rev, patch: !(nameOnly || noPatch)))
        try await options.run(ShowChange.self, params) { result in
            // git show's layout: `git apply` skips everything before the first "diff --git".
            var lines = ["change \(result.change.id)", "commit \(result.change.commitOid)", "Author: \(result.change.author)", ""]
            lines += result.change.message.isEmpty ? ["    (no description)"]
                : result.change.message.split(separator: "\n", omittingEmptySubsequences: false).map { "    \($0)" }
            if nameOnly { lines += [""] + result.diff.entries.map(\.path) }
            // The patch ends with its own newline; print adds one more.
            if let patch = result.patch, !patch.isEmpty { lines += ["", String(patch.dropLast())] }
            return lines.joined(separator: "\n")
        }
    }
}

struct RepoOpen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "open", abstract: "Show a repo in an org mounted in explicit mode.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    func run() async throws {
        try await options.run(OpenRepo.self, repo.params) { _ in "opened \(repo.repo)" }
    }
}

struct RepoClose: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "close", abstract: "Hide a repo again (explicit mode), uploading its writes.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    func run() async throws {
        try await options.run(CloseRepo.self, repo.params) { _ in "closed \(repo.repo)" }
    }
}
