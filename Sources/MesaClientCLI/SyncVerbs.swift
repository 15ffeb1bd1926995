import ArgumentParser
import Client
import Foundation
import MesaProtocol
import Model

/// `--upstream URL` and its credential, read from environment variables so a secret
/// never shows in the process list or shell history.
struct UpstreamOptions: ParsableArguments {
    @Option(help: "Git upstream to sync with: https://, http://, git://, ssh://, file:// or a path.") var upstream: String?
    @Option(name: .customLong("token-env"), help: "Environment variable holding the upstream's token.") var tokenEnv: String?
    @Option(name: .customLong("token-username"), help: "User name sent with the token (default x-access-token).") var tokenUsername: String?
    @Option(help: "Upstream user name (with --password-env).") var username: String?
    @Option(name: .customLong("password-env"), help: "Environment variable holding the upstream's password.") var passwordEnv: String?

    func secret(_ variable: String?) throws -> String? {
        guard let variable else { return nil }
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw CLIFailure(message: "environment variable \(variable) is not set or empty", status: CLIExit.usage)
        }
        return value
    }

    func params() throws -> UpstreamParams? {
        guard let upstream else {
            if tokenEnv != nil || username != nil || passwordEnv != nil {
                throw CLIFailure(message: "a credential needs --upstream", status: CLIExit.usage)
            }
            return nil
        }
        return UpstreamParams(url: upstream, token: try secret(tokenEnv), tokenUsername: tokenUsername, username: username,
                              password: try secret(passwordEnv))
    }
}

struct SetUpstream_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-upstream", abstract: "Set, change or remove a repository's git upstream.",
        discussion: "Without a credential option the stored one is kept (use --clear-auth to drop it); --remove forgets the upstream.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    @OptionGroup var upstream: UpstreamOptions
    @Flag(name: .customLong("clear-auth"), help: "Drop the stored credential.") var clearAuth = false
    @Flag(help: "Remove the upstream.") var remove = false
    func run() async throws {
        let given = try upstream.params()
        guard remove != (given != nil) else {
            throw CLIFailure(message: "pass either --upstream URL or --remove", status: CLIExit.usage)
        }
        try await options.run(SetUpstream.self, .init(org: repo.org, repo: repo.repo, upstream: given, clearAuth: clearAuth)) {
            $0.repo.upstream.map { "\($0.url) (auth: \($0.authKind?.rawValue ?? "none"))" } ?? "no upstream"
        }
    }
}

struct Sync_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Pull from or push to a repository's git upstream; list and show syncs.",
        subcommands: [SyncRun.self, SyncList.self, SyncShow.self])
}

/// One line per sync, then its refs.
func describe(_ sync: Sync) -> String {
    var lines = ["\(sync.id) \(sync.direction.rawValue) \(sync.status.rawValue) (attempt \(sync.attempt))"]
    if let error = sync.error { lines.append("error: \(error)") }
    for ref in sync.refs ?? [] {
        lines.append("  \(ref.outcome.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(ref.name) \(ref.before.map { String($0.prefix(12)) } ?? "-") -> \(ref.after.prefix(12))")
    }
    return lines.joined(separator: "\n")
}

struct SyncRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Queue a pull or push (fast-forward only); --wait follows it to the end.",
        discussion: "Example: mesa-client sync run --direction pull agent-workspace --wait")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    @Option(help: "pull or push.") var direction: String
    @Option(help: "Glob of branch names to sync (default: all).") var branches: String?
    @Option(help: "Glob of tag names to sync (default: all).") var tags: String?
    @Flag(help: "Wait until the sync completes or fails; exit 1 if it failed.") var wait = false
    @Option(help: "Seconds to wait at most with --wait.") var timeout: Int = 600

    func run() async throws {
        guard let direction = SyncDirection(rawValue: direction) else {
            throw CLIFailure(message: "--direction must be pull or push", status: CLIExit.usage)
        }
        let client = try await options.connect()
        defer { client.close() }
        var sync: Sync
        do {
            sync = try await client.call(CreateSync.self, .init(org: repo.org, repo: repo.repo, direction: direction,
                                                                branches: branches, tags: tags)).sync
            let deadline = ContinuousClock.now + .seconds(timeout)
            while wait && !sync.status.isFinished && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                sync = try await client.call(GetSync.self, .init(org: repo.org, repo: repo.repo, id: sync.id)).sync
            }
        } catch let error as MesaClient.Failure {
            throw CLIFailure(error)
        }
        print(options.json ? Output.json(sync) : describe(sync))
        if wait && sync.status != .completed {
            throw CLIFailure(message: sync.status == .failed ? "sync failed" : "sync still \(sync.status.rawValue) after \(timeout) s",
                             status: CLIExit.methodError)
        }
    }
}

struct SyncList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a repository's syncs, newest first.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    @OptionGroup var page: PageOptions
    func run() async throws {
        try await options.run(ListSyncs.self, .init(repo.params, page.page)) { result in
            Output.table(["id", "direction", "status", "attempt", "created"],
                         result.syncs.map { [$0.id, $0.direction.rawValue, $0.status.rawValue, "\($0.attempt)", WireTime.string($0.createdAt)] })
                + (result.nextCursor.map { "\nmore: --cursor \($0)" } ?? "")
        }
    }
}

struct SyncShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one sync and its refs.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    @Argument(help: "Sync id.") var id: String
    func run() async throws {
        try await options.run(GetSync.self, .init(org: repo.org, repo: repo.repo, id: id)) { describe($0.sync) }
    }
}
