// mesa: the command line of Mesa's guides (`mesa mount -d -y`, `mesa repo list`, …),
// driving mesad through the same client library as mesa-client. Run by the `mesa`
// executable and by the multi-call binary through `MesaProgram`.
import ArgumentParser
import Client
import Foundation
import MesaIgnore
import MesaProtocol
import Model

/// The mesa command's one entry point.
public enum MesaProgram {
    /// Parses `arguments` (without the program name), runs the command and exits.
    public static func main(arguments: [String]) async -> Never { await CLIRunner.main(MesaCommand.self, arguments: arguments) }
}

struct MesaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesa",
        abstract: "Mesa: versioned repositories mounted as plain directories.", version: ClientVersion.current,
        subcommands: [MountCommand.self, UnmountCommand.self, Status.self, RepoCommand.self, NewCommand.self, EditCommand.self,
                      ShowCommand.self, LogCommand.self, CheckpointCommand.self, StatsCommand.self, HooksCommand.self, DumpDefaultMesaignore.self,
                      Version.self])
}

struct DumpDefaultMesaignore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-default-mesaignore",
        abstract: "Print the built-in ephemeral paths every mount applies before the repo's .mesaignore.",
        discussion: """
            Paths matching these rules (gitignore syntax) or the repository root's .mesaignore stay in \
            the mount's local layer: never uploaded or checkpointed, kept across daemon restarts. A \
            .mesaignore rule can re-include a default with "!" (e.g. "!dist/"). Paths inside .git are \
            always local-only.
            """)
    func run() { print(IgnoreRules.defaultText, terminator: "") }
}

struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version of mesa (and of mesad if it runs).")
    func run() async throws {
        print("mesa \(ClientVersion.current)")
        if let client = try? MesaClient.connect(autostart: false),
           let info = try? await client.call(Initialize.self, .init(clientInfo: .init(name: "mesa", version: ClientVersion.current))) {
            print("mesad \(info.serverInfo.version) (protocol \(info.protocolVersion))")
            client.close()
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show whether mesad runs, and what it serves.")
    @OptionGroup var options: ClientOptions
    func run() async throws {
        let client: MesaClient
        do { client = try MesaClient.connect(autostart: false) } catch {
            throw CLIFailure(message: error.description, status: CLIExit.unreachable)
        }
        defer { client.close() }
        do {
            let info = try await client.call(Initialize.self, .init(clientInfo: .init(name: "mesa", version: ClientVersion.current)))
            let orgs = try await client.call(ListOrgs.self, .init())
            if options.json {
                print(Output.json(StatusReport(socket: client.socketPath, version: info.serverInfo.version, orgs: orgs.orgs)))
            } else {
                print("mesad \(info.serverInfo.version) running, socket \(client.socketPath)")
                print(Output.table(["org", "mount", "backend"], orgs.orgs.map { [$0.name, $0.mount, $0.backend] }))
                let mounts = try await client.call(MountStatusMethod.self, .init())
                for mount in mounts.mounts {
                    print("\n\(mount.org)/\(mount.repo) at \(mount.path) (\(mount.mode))")
                    print("  bookmark \(mount.bookmark ?? "-"), working change \(mount.workingChangeId ?? "none yet"), on \(mount.baseChangeId)")
                    print("  \(mount.dirtyPaths.count) dirty path(s), \(mount.pendingUploads) pending upload(s)"
                          + (mount.lastError.map { ", last error: \($0)" } ?? ""))
                    if let prefetch = mount.prefetch {
                        // The total is known only at the end: "~" while directories remain.
                        let total = prefetch.state == "running" ? "~\(prefetch.directoriesListed + prefetch.directoriesPending)" : "\(prefetch.directoriesListed)"
                        var line = "  prefetch \(prefetch.mode) \(prefetch.state): \(prefetch.directoriesListed)/\(total) dirs"
                        if prefetch.mode == "content" { line += ", content \(prefetch.filesFetched) files, \(prefetch.bytesFetched >> 20) MiB" }
                        if prefetch.failures > 0 { line += ", \(prefetch.failures) failed" }
                        if let note = prefetch.note { line += " (\(note))" }
                        print(line)
                    }
                }
            }
        } catch {
            throw CLIFailure(error)
        }
    }

    struct StatusReport: Encodable {
        let socket: String
        let version: String
        let orgs: [ListOrgs.Org]
    }
}

struct RepoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repo", abstract: "Repositories.",
                                                    subcommands: [List.self, RepoOpen.self, RepoClose.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the repos each configured org shows in the mount tree.",
            discussion: """
                MOUNTED is ● for a repo the tree shows and ○ for one it does not. An org in all mode shows every \
                repo its key can see (the first page is listed, --all lists every one); an org in explicit mode \
                shows the repos of config.toml and those opened with `mesa repo open` (--all adds the others, ○).
                """)
        @OptionGroup var options: ClientOptions
        @Flag(help: "List every repo the key can see, across all pages.") var all = false
        func run() async throws {
            let client = try await options.connect()
            defer { client.close() }
            do {
                var rows: [[String]] = []
                var repos: [Repo] = []
                var notes: [String] = []
                for org in try await client.call(ListOrgs.self, .init()).orgs {
                    let shown = org.repos.map(Set.init)
                    var cursor: String?
                    var more = false
                    var seen: Set<String> = []
                    repeat {
                        let page = try await client.call(ListRepos.self, .init(.init(org: org.name), .init(cursor: cursor, limit: 100)))
                        let listed = page.repos.filter { all || shown?.contains($0.name) ?? true }
                        repos += listed
                        seen.formUnion(page.repos.map(\.name))
                        rows += listed.map { [org.name, $0.name, $0.defaultBookmark, $0.id, shown?.contains($0.name) ?? true ? "●" : "○"] }
                        // Explicit mode walks every page to find its repos; all mode only with --all.
                        cursor = all || shown != nil ? page.nextCursor : nil
                        more = page.nextCursor != nil && cursor == nil
                    } while cursor != nil
                    if shown == nil {
                        notes.append("org '\(org.name)' mounts all repos" + (more ? "; more than listed here: run `mesa repo list --all`" : ""))
                    } else if org.repos?.isEmpty == true {
                        notes.append("org '\(org.name)' is in explicit mode and shows no repo: `mesa repo open REPO` adds one")
                    } else if let missing = org.repos?.filter({ !seen.contains($0) }), !missing.isEmpty {
                        notes.append("org '\(org.name)' lists repos its key cannot see: \(missing.joined(separator: ", "))")
                    }
                }
                if options.json {
                    print(Output.json(repos))
                } else {
                    print(([Output.table(["org", "repo", "bookmark", "id", "mounted"], rows)] + notes).joined(separator: "\n"))
                }
            } catch {
                throw CLIFailure(error)
            }
        }
    }
}

