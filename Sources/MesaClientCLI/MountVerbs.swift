import ArgumentParser
import Client
import Foundation
import MesaProtocol

// Mount and versioning verbs. Repo-level verbs take --mount (an id from list-mounts),
// --path (any path inside a mount; default: the working directory) or --org/--repo.

struct Selector: ParsableArguments {
    @Option(name: .customLong("mount"), help: "Mount id (see list-mounts).") var mountId: String?
    @Option(help: "A path inside a mounted repo (default: the working directory).") var path: String?
    @Option(help: "Organization (with --repo, instead of a mount).") var org: String?
    @Option(help: "Repository (instead of a mount).") var repo: String?

    /// The working directory stands in when nothing else selects the repo.
    var repoSelector: RepoSelector {
        let cwd = mountId != nil || repo != nil ? nil : FileManager.default.currentDirectoryPath
        return RepoSelector(mountId: mountId, path: path ?? cwd, org: org, repo: repo)
    }
}

struct Mount_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mount", abstract: "Mount the daemon tree, or one repo (at --at-path).")
    @OptionGroup var options: ClientOptions
    @Option(help: "Organization.") var org: String?
    @Argument(help: "Repository (omit to mount the daemon tree).") var repo: String?
    @Option(help: "rw or ro.") var mode: String?
    @Option(help: "Pin a bookmark.") var bookmark: String?
    @Option(name: .customLong("change"), help: "Pin a change id.") var changeId: String?
    @Option(name: .customLong("branched-from"), help: "Fork a new change from this bookmark on open.") var branchedFrom: String?
    @Option(name: .customLong("at-path"), help: "Mount the repo on its own at this directory.") var atPath: String?
    func run() async throws {
        let at = (bookmark != nil || changeId != nil) ? RevisionSpec(bookmark: bookmark, changeId: changeId) : nil
        let params = MountMethod.Params(org: org, repo: repo, at: at, branchedFrom: branchedFrom.map { BranchedFromSpec(bookmark: $0) },
                                        mode: mode, path: atPath.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 })
        try await options.run(MountMethod.self, params) { "\($0.mountId) mounted at \($0.path)" }
    }
}

struct Unmount_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unmount", abstract: "Unmount by id or path (default: the daemon tree).")
    @OptionGroup var options: ClientOptions
    @Option(name: .customLong("mount"), help: "Mount id.") var mountId: String?
    @Argument(help: "A mount path or a path inside one.") var path: String?
    func run() async throws {
        try await options.run(UnmountMethod.self, .init(mountId: mountId, path: path)) { $0.unmounted.joined(separator: "\n") }
    }
}

struct ListMounts_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-mounts", abstract: "List mounts.")
    @OptionGroup var options: ClientOptions
    func run() async throws {
        try await options.run(ListMounts.self, .init()) { result in
            Output.table(["id", "path", "mode", "bookmark", "change"],
                         result.mounts.map { [$0.mountId, $0.path, $0.mode, $0.bookmark ?? "-", String(($0.changeId ?? "-").prefix(12))] })
        }
    }
}

struct Status_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Working change, dirty paths and pending uploads of repo mounts.")
    @OptionGroup var options: ClientOptions
    @Option(name: .customLong("mount"), help: "Mount id (default: every repo mount).") var mountId: String?
    @Option(help: "A path inside a mounted repo.") var path: String?
    func run() async throws {
        try await options.run(MountStatusMethod.self, .init(mountId: mountId, path: path)) { Output.json($0) }
    }
}

struct Checkpoint_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "Save the working change and move the bookmark onto it.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    @Option(name: .shortAndLong, help: "Description.") var message: String?
    func run() async throws {
        try await options.run(Checkpoint.self, .init(selector.repoSelector.mount, .init(message: message))) { $0.savedChangeId }
    }
}

struct ListChanges_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-changes", abstract: "List changes, newest first.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    @Option(help: "Reachable from this bookmark.") var bookmark: String?
    @OptionGroup var page: PageOptions
    func run() async throws {
        let params = ListChanges.Params(selector.repoSelector, .init(.init(bookmark: bookmark), page.page))
        try await options.run(ListChanges.self, params) { result in
            Output.table(["change", "updated", "message"], result.changes.map { [$0.id, $0.updatedAt, String($0.message.prefix(60))] })
        }
    }
}

struct Diff_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Diff two changes (default: the current change against its parent).")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    @Option(help: "Base bookmark or change.") var base: String?
    @Option(help: "Head bookmark or change.") var head: String?
    func run() async throws {
        let params = DiffMethod.Params(selector.repoSelector, .init(base: base, head: head))
        try await options.run(DiffMethod.self, params) { result in
            result.entries.map { "\($0.status.prefix(1).uppercased()) \($0.path) +\($0.additions) -\($0.deletions)" }.joined(separator: "\n")
        }
    }
}

struct ListBookmarks_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-bookmarks", abstract: "List bookmarks.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    func run() async throws {
        let params = ListBookmarks.Params(selector.repoSelector)
        try await options.run(ListBookmarks.self, params) { result in
            Output.table(["bookmark", "change", "default"], result.bookmarks.map { [$0.name, $0.changeId, $0.isDefault ? "yes" : ""] })
        }
    }
}

struct CreateBookmark_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create-bookmark", abstract: "Create a bookmark (default: at the current change).")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    @Argument(help: "Bookmark name.") var name: String
    @Option(name: .customLong("change"), help: "Change id or bookmark.") var changeId: String?
    func run() async throws {
        let params = CreateBookmark.Params(selector.repoSelector, .init(name: name, changeId: changeId))
        try await options.run(CreateBookmark.self, params) { "\($0.bookmark.name) → \($0.bookmark.changeId)" }
    }
}

struct MoveBookmark_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "move-bookmark", abstract: "Move a bookmark (forward unless --allow-backwards).")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    @Argument(help: "Bookmark name.") var name: String
    @Argument(help: "Target change id or bookmark.") var changeId: String
    @Flag(name: .customLong("allow-backwards")) var allowBackwards = false
    func run() async throws {
        let params = MoveBookmark.Params(selector.repoSelector, .init(name: name, changeId: changeId, allowBackwards: allowBackwards))
        try await options.run(MoveBookmark.self, params) { "\($0.bookmark.name): \($0.fromChangeId) → \($0.bookmark.changeId)" }
    }
}

struct MergeBookmark_: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "merge-bookmark", abstract: "Merge bookmark SOURCE into TARGET.")
    @OptionGroup var options: ClientOptions
    @OptionGroup var selector: Selector
    @Argument(help: "Target bookmark (moves).") var target: String
    @Argument(help: "Source bookmark.") var source: String
    @Flag(name: .customLong("allow-conflicted")) var allowConflicted = false
    func run() async throws {
        let params = MergeBookmark.Params(selector.repoSelector, .init(target: target, source: source, allowConflicted: allowConflicted))
        try await options.run(MergeBookmark.self, params) { "\($0.mergeType) \($0.changeId)" }
    }
}
