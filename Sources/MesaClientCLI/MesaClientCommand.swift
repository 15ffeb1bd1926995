// mesa-client: one subcommand per mesad method, JSON in and out; for scripts and hooks.
// Run by the `mesa-client` executable and by the multi-call binary through
// `MesaClientProgram`.
import ArgumentParser
import Client
import Foundation
import MesaProtocol

/// The mesa-client command's one entry point.
public enum MesaClientProgram {
    /// Parses `arguments` (without the program name), runs the command and exits.
    public static func main(arguments: [String]) async -> Never {
        // Hooks parse their own command line: see `HookCLI` (never exit 2 on a typo).
        if arguments.first == "hook", !arguments.contains("--help"), !arguments.contains("-h") {
            await HookCLI.main(Array(arguments.dropFirst()))
        }
        await CLIRunner.main(MesaClientCommand.self, arguments: arguments)
    }
}

struct MesaClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesa-client",
        abstract: "Call mesad's JSON-RPC methods from scripts.",
        discussion: "Exit status: 0 success, 1 method error (message on stderr), 2 usage, 3 daemon unreachable.",
        subcommands: [Whoami_.self, ListOrgs_.self, ListRepos_.self, GetRepo_.self, CreateRepo_.self, DeleteRepo_.self,
                      CreateEphemeralKey_.self, ListKeys_.self, RevokeKey_.self, Mount_.self, Unmount_.self, ListMounts_.self,
                      Status_.self, Checkpoint_.self, ListChanges_.self, Diff_.self, ListBookmarks_.self, CreateBookmark_.self,
                      MoveBookmark_.self, MergeBookmark_.self, SetUpstream_.self, Sync_.self, Watch_.self, Hook_.self, Stats_.self,
                      Shutdown_.self, Call.self])
}

struct Whoami_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show the org and key mesad acts as.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization (default: the only configured one).") var org: String?
    func run() async throws {
        try await options.run(Whoami.self, .init(org: org)) { result in
            "org \(result.org.slug), key \(result.keyName ?? result.keyId ?? "-"), scopes \(result.scopes.joined(separator: ",")), backend \(result.backend)"
                + (result.repoIds.map { ", repos \($0.joined(separator: ","))" } ?? "")
        }
    }
}

struct ListOrgs_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-orgs", abstract: "List the configured organizations.")
    @OptionGroup var options: ClientOptions
    func run() async throws {
        try await options.run(ListOrgs.self, .init()) { result in
            Output.table(["org", "mount", "backend"], result.orgs.map { [$0.name, $0.mount, $0.backend] })
        }
    }
}

struct ListRepos_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-repos", abstract: "List repositories.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization.") var org: String?
    @OptionGroup var page: PageOptions
    func run() async throws {
        try await options.run(ListRepos.self, .init(.init(org: org), page.page)) { result in
            Output.table(["name", "id", "bookmark", "head"], result.repos.map { [$0.name, $0.id, $0.defaultBookmark, String($0.headChangeID.rawValue.prefix(12))] })
                + (result.nextCursor.map { "\nmore: --cursor \($0)" } ?? "")
        }
    }
}

struct GetRepo_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-repo", abstract: "Show one repository.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    func run() async throws {
        try await options.run(GetRepo.self, repo.params) { Output.json($0.repo) }
    }
}

struct CreateRepo_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-repo", abstract: "Create a repository.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization.") var org: String?
    @Option(name: .customLong("default-bookmark"), help: "Default bookmark (main).") var defaultBookmark: String?
    @OptionGroup var upstream: UpstreamOptions
    @Argument(help: "Repository name.") var name: String
    func run() async throws {
        try await options.run(CreateRepo.self, .init(org: org, name: name, defaultBookmark: defaultBookmark,
                                                     upstream: try upstream.params())) {
            "created \($0.repo.org)/\($0.repo.name) (\($0.repo.id))"
        }
    }
}

struct DeleteRepo_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete-repo", abstract: "Delete a repository permanently.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var repo: RepoArguments
    func run() async throws {
        try await options.run(DeleteRepo.self, repo.params) { _ in "deleted \(repo.repo)" }
    }
}

struct CreateEphemeralKey_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-ephemeral-key",
        abstract: "Create a short-lived API key (printed once).",
        discussion: "Example: mesa-client create-ephemeral-key --scopes read,write --expires-in 3600 --repo agent-workspace")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization.") var org: String?
    @Option(help: "Key name.") var name: String?
    @Option(help: "Comma-separated scopes: read, write, admin (default read,write).") var scopes: String?
    @Option(name: .customLong("expires-in"), help: "Lifetime in seconds, 100 to 31536000 (default 3600).") var expiresIn: Int?
    @Option(name: .customLong("repo"), help: "Limit the key to this repo (name or id); repeatable.") var repos: [String] = []
    func run() async throws {
        let scopeList = scopes.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let params = CreateEphemeralKey.Params(org: org, name: name, scopes: scopeList, expiresInSeconds: expiresIn,
                                               repos: repos.isEmpty ? nil : repos)
        try await options.run(CreateEphemeralKey.self, params) { $0.key }
    }
}

struct ListKeys_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-keys", abstract: "List API keys (never their secrets).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization.") var org: String?
    @Option(help: "active, revoked or expired.") var status: String?
    @OptionGroup var page: PageOptions
    func run() async throws {
        try await options.run(ListKeys.self, .init(.init(org: org, status: status), page.page)) { result in
            Output.table(["id", "name", "scopes", "status", "expires"],
                         result.keys.map { [$0.id, $0.name ?? "-", $0.scopes.joined(separator: ","), $0.status, $0.expiresAt ?? "never"] })
        }
    }
}

struct RevokeKey_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke-key", abstract: "Revoke an API key.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization.") var org: String?
    @Argument(help: "Key id.") var id: String
    func run() async throws {
        try await options.run(RevokeKey.self, .init(org: org, id: id)) { _ in "revoked \(id)" }
    }
}

struct Stats_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "What mesad holds: mounts, blob cache, pending uploads (JSON).")
    @OptionGroup var options: ClientOptions
    func run() async throws {
        var options = options
        options.noStart = true
        try await options.run(DaemonStats.self, .init()) { Output.json($0) }
    }
}

struct Shutdown_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shutdown", abstract: "Stop mesad gracefully.")
    @OptionGroup var options: ClientOptions
    func run() async throws {
        var options = options
        options.noStart = true
        try await options.run(Shutdown.self, .init()) { _ in "mesad is stopping" }
    }
}

struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call", abstract: "Call any method with JSON parameters; prints the JSON result.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Method name, e.g. listRepos.") var method: String
    @Argument(help: "Parameters as a JSON object (default {}).") var params: String = "{}"
    func run() async throws {
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(Array(params.utf8)) } catch {
            throw ValidationError("parameters are not valid JSON: \(error)")
        }
        let client = try await options.connect()
        defer { client.close() }
        do {
            let result = try await client.call(method: method, params: parsed)
            print(Output.json(result))
        } catch {
            throw CLIFailure(error)
        }
    }
}

