import ArgumentParser
import Client
import Foundation
import MesaProtocol

/// `mesa hooks install|uninstall`: mesa's Claude Code hooks in a settings.json.
struct HooksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hooks", abstract: "Install or remove mesa's Claude Code hooks (checkpoint per prompt).",
        subcommands: [Install.self, Uninstall.self])

    struct Target: ParsableArguments {
        @Option(help: "Project directory: writes DIR/.claude/settings.json (default: the current directory).")
        var project: String?
        @Flag(help: "Write ~/.claude/settings.json (every project of this user).") var user = false

        func settingsPath() throws -> String {
            if user && project != nil { throw ValidationError("pass either --project DIR or --user, not both") }
            let home = Paths().home
            if user { return ClaudeSettings.path(project: nil, home: home) }
            let directory = project ?? FileManager.default.currentDirectoryPath
            return ClaudeSettings.path(project: directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory,
                                       home: home)
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge the hooks into .claude/settings.json, keeping everything else there (safe to run again).",
            discussion: """
            Adds SessionStart, UserPromptSubmit, PreToolUse (Write|Edit|MultiEdit|NotebookEdit), PostToolUse \
            (…|Bash) and Stop hooks running `mesa-client hook <Event>`.
            """)
        @OptionGroup var target: Target
        @Flag(name: .customLong("session-bookmarks"), help: "Checkpoint each session onto bookmark session/<session_id>, leaving main alone.")
        var sessionBookmarks = false
        @Option(name: .customLong("client"), help: "The mesa-client the hooks run (default: the one next to mesa, else on PATH).")
        var client: String?

        func run() async throws {
            let path = try target.settingsPath()
            let program = client ?? Self.siblingClient()
            do {
                let updated = try ClaudeSettings.install(into: try ClaudeSettings.load(path),
                                                         entries: ClaudeSettings.entries(client: program, sessionBookmarks: sessionBookmarks))
                try ClaudeSettings.save(updated, to: path)
            } catch {
                throw CLIFailure(message: error.message, status: CLIExit.methodError)
            }
            print("installed mesa hooks (SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, Stop) into \(path)")
        }

        static func siblingClient() -> String { MesaClient.executable(named: "mesa-client") ?? "mesa-client" }
    }

    struct Uninstall: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove exactly mesa's hooks from .claude/settings.json.")
        @OptionGroup var target: Target

        func run() async throws {
            let path = try target.settingsPath()
            do {
                guard let settings = try ClaudeSettings.load(path) else {
                    print("no \(path); nothing to remove")
                    return
                }
                try ClaudeSettings.save(try ClaudeSettings.uninstall(from: settings), to: path)
            } catch {
                throw CLIFailure(message: error.message, status: CLIExit.methodError)
            }
            print("removed mesa hooks from \(path)")
        }
    }
}
