import Foundation

/// `{bookmark}` or `{changeId}`.
public struct RevisionSpec: Codable, Sendable {
    public var bookmark: String?
    public var changeId: String?
    public init(bookmark: String? = nil, changeId: String? = nil) {
        self.bookmark = bookmark
        self.changeId = changeId
    }
}

/// `branchedFrom`: fork an empty change on open, optionally naming it.
public struct BranchedFromSpec: Codable, Sendable {
    public var bookmark: String?
    public var changeId: String?
    public var `as`: As?

    public struct As: Codable, Sendable {
        public var bookmark: String?
        public var describe: String?
        public init(bookmark: String? = nil, describe: String? = nil) {
            self.bookmark = bookmark
            self.describe = describe
        }
    }
    public init(bookmark: String? = nil, changeId: String? = nil, as name: As? = nil) {
        self.bookmark = bookmark
        self.changeId = changeId
        self.as = name
    }
}

public enum MountMethod: MesaMethod {
    public static let name = "mount"
    public struct Params: Codable, Sendable {
        public var org: String?
        /// Omitted: mount the daemon tree `<mount-point>/<org>/<repo>`.
        public var repo: String?
        public var at: RevisionSpec?
        public var branchedFrom: BranchedFromSpec?
        /// "rw" (default) or "ro".
        public var mode: String?
        /// Mount the repo on its own at this path instead of inside the tree.
        public var path: String?
        public init(org: String? = nil, repo: String? = nil, at: RevisionSpec? = nil, branchedFrom: BranchedFromSpec? = nil, mode: String? = nil, path: String? = nil) {
            self.org = org
            self.repo = repo
            self.at = at
            self.branchedFrom = branchedFrom
            self.mode = mode
            self.path = path
        }
    }
    public typealias Result = MountInfo
}

public enum UnmountMethod: MesaMethod {
    public static let name = "unmount"
    /// Neither: the daemon tree.
    public typealias Params = MountSelector
    public struct Result: Codable, Sendable {
        public var unmounted: [String]
        public init(unmounted: [String]) {
            self.unmounted = unmounted
        }
    }
}

public enum ListMounts: MesaMethod {
    public static let name = "listMounts"
    public typealias Params = NoParams
    public struct Result: Codable, Sendable {
        public var mounts: [MountInfo]
        public init(mounts: [MountInfo]) {
            self.mounts = mounts
        }
    }
}

public enum MountStatusMethod: MesaMethod {
    public static let name = "status"
    /// Without a selector: every open repo mount.
    public typealias Params = MountSelector
    public struct Result: Codable, Sendable {
        public var mounts: [MountStatusInfo]
        public init(mounts: [MountStatusInfo]) {
            self.mounts = mounts
        }
    }
}

public enum Checkpoint: MesaMethod {
    public static let name = "checkpoint"
    public typealias Params = Flat<MountSelector, Message>
    public struct Message: Codable, Sendable, AllOptional {
        /// Describes the saved change; omitted keeps its description, "" clears it.
        public var message: String?
        public init(message: String? = nil) { self.message = message }
        public init() {}
    }
    public struct Result: Codable, Sendable {
        public var savedChangeId: String
        public var created: Bool
        public var bookmark: String?
        public init(savedChangeId: String, created: Bool, bookmark: String? = nil) {
            self.savedChangeId = savedChangeId
            self.created = created
            self.bookmark = bookmark
        }
    }
}

public enum NewChange: MesaMethod {
    public static let name = "newChange"
    public typealias Params = MountSelector
    public struct Result: Codable, Sendable {
        /// The change the next write builds on.
        public var changeId: String
        public init(changeId: String) {
            self.changeId = changeId
        }
    }
}

public enum EditChange: MesaMethod {
    public static let name = "editChange"
    /// Exactly one of `bookmark` and `changeId`.
    public typealias Params = Flat<MountSelector, RevisionSpec>
    public typealias Result = MountStatusInfo
}

public enum ListChanges: MesaMethod {
    public static let name = "listChanges"
    public typealias Params = Flat<RepoSelector, Paged<Filter>>
    public struct Filter: Codable, Sendable, AllOptional {
        /// Reachable from this bookmark; omitted = the mount's bookmark, else every change.
        public var bookmark: String?
        public init(bookmark: String? = nil) { self.bookmark = bookmark }
        public init() {}
    }
    public typealias Result = Listing<Changes>
    public struct Changes: Codable, Sendable {
        public var changes: [ChangeInfo]
        public init(changes: [ChangeInfo]) { self.changes = changes }
    }
}

public enum ShowChange: MesaMethod {
    public static let name = "show"
    public typealias Params = Flat<RepoSelector, Rev>
    public struct Rev: Codable, Sendable, AllOptional {
        /// A bookmark or change id; omitted = the mount's current change (`@`).
        public var rev: String?
        /// Also return the diff as a git patch (`Result.patch`).
        public var patch: Bool?
        public init(rev: String? = nil, patch: Bool? = nil) {
            self.rev = rev
            self.patch = patch
        }
        public init() {}
    }
    public struct Result: Codable, Sendable {
        public var change: ChangeInfo
        /// Against the change's first parent.
        public var diff: DiffInfo
        /// With `patch: true`: the same diff as `git diff --binary` prints it, which
        /// `git apply` accepts (modes, new/deleted/renamed files, binary literals).
        public var patch: String?
        public init(change: ChangeInfo, diff: DiffInfo, patch: String? = nil) {
            self.change = change
            self.diff = diff
            self.patch = patch
        }
    }
}

public enum DiffMethod: MesaMethod {
    public static let name = "diff"
    public typealias Params = Flat<RepoSelector, Range>
    public struct Range: Codable, Sendable, AllOptional {
        /// Defaults: head = the mount's current change, base = head's first parent.
        public var base: String?
        public var head: String?
        public init(base: String? = nil, head: String? = nil) {
            self.base = base
            self.head = head
        }
        public init() {}
    }
    public typealias Result = DiffInfo
}

public enum ListBookmarks: MesaMethod {
    public static let name = "listBookmarks"
    public typealias Params = Flat<RepoSelector, PageRequest>
    public typealias Result = Listing<Bookmarks>
    public struct Bookmarks: Codable, Sendable {
        public var bookmarks: [BookmarkInfo]
        public init(bookmarks: [BookmarkInfo]) { self.bookmarks = bookmarks }
    }
}

public enum CreateBookmark: MesaMethod {
    public static let name = "createBookmark"
    public typealias Params = Flat<RepoSelector, Fields>
    public struct Fields: Codable, Sendable {
        public var name: String
        /// Omitted: the mount's current change.
        public var changeId: String?
        public init(name: String, changeId: String? = nil) {
            self.name = name
            self.changeId = changeId
        }
    }
    public struct Result: Codable, Sendable {
        public var bookmark: BookmarkInfo
        public init(bookmark: BookmarkInfo) {
            self.bookmark = bookmark
        }
    }
}

public enum MoveBookmark: MesaMethod {
    public static let name = "moveBookmark"
    public typealias Params = Flat<RepoSelector, Fields>
    public struct Fields: Codable, Sendable {
        public var name: String
        public var changeId: String
        public var allowBackwards: Bool?
        public init(name: String, changeId: String, allowBackwards: Bool? = nil) {
            self.name = name
            self.changeId = changeId
            self.allowBackwards = allowBackwards
        }
    }
    public struct Result: Codable, Sendable {
        public var bookmark: BookmarkInfo
        public var fromChangeId: String
        public init(bookmark: BookmarkInfo, fromChangeId: String) {
            self.bookmark = bookmark
            self.fromChangeId = fromChangeId
        }
    }
}

public enum MergeBookmark: MesaMethod {
    public static let name = "mergeBookmark"
    public typealias Params = Flat<RepoSelector, Fields>
    public struct Fields: Codable, Sendable {
        public var target: String
        public var source: String
        public var message: String?
        public var allowConflicted: Bool?
        public init(target: String, source: String, message: String? = nil, allowConflicted: Bool? = nil) {
            self.target = target
            self.source = source
            self.message = message
            self.allowConflicted = allowConflicted
        }
    }
    public struct Result: Codable, Sendable {
        public var mergeType: String
        public var changeId: String
        public var conflicts: [String]
        public init(mergeType: String, changeId: String, conflicts: [String]) {
            self.mergeType = mergeType
            self.changeId = changeId
            self.conflicts = conflicts
        }
    }
}

/// Shows a repo in the daemon tree (explicit mode).
public enum OpenRepo: MesaMethod {
    public static let name = "openRepo"
    public typealias Params = GetRepo.Params
    public typealias Result = OK
}

public enum CloseRepo: MesaMethod {
    public static let name = "closeRepo"
    public typealias Params = GetRepo.Params
    public typealias Result = OK
}
