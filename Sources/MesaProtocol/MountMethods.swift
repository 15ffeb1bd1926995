import Foundation

/// Which repo a method acts on: a mount (by id, or any path inside it — the CLI sends
/// its working directory), or an org/repo pair.
public struct RepoSelector: Codable, Sendable {
    public var mountId: String?
    public var path: String?
    public var org: String?
    public var repo: String?
    public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil) {
        self.mountId = mountId
        self.path = path
        self.org = org
        self.repo = repo
    }
}

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
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public init(mountId: String? = nil, path: String? = nil) {
            self.mountId = mountId
            self.path = path
        }
    }
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
    public typealias Params = RepoSelector
    public struct Result: Codable, Sendable {
        public var mounts: [MountStatusInfo]
        public init(mounts: [MountStatusInfo]) {
            self.mounts = mounts
        }
    }
}

public enum Checkpoint: MesaMethod {
    public static let name = "checkpoint"
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        /// Describes the saved change; omitted keeps its description, "" clears it.
        public var message: String?
        public init(mountId: String? = nil, path: String? = nil, message: String? = nil) {
            self.mountId = mountId
            self.path = path
            self.message = message
        }
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
    public typealias Params = RepoSelector
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
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var bookmark: String?
        public var changeId: String?
        public init(mountId: String? = nil, path: String? = nil, bookmark: String? = nil, changeId: String? = nil) {
            self.mountId = mountId
            self.path = path
            self.bookmark = bookmark
            self.changeId = changeId
        }
    }
    public typealias Result = MountStatusInfo
}

public enum ListChanges: MesaMethod {
    public static let name = "listChanges"
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        /// Reachable from this bookmark; omitted = the mount's bookmark, else every change.
        public var bookmark: String?
        public var cursor: String?
        public var limit: Int?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, bookmark: String? = nil, cursor: String? = nil, limit: Int? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
            self.bookmark = bookmark
            self.cursor = cursor
            self.limit = limit
        }
    }
    public struct Result: Codable, Sendable {
        public var changes: [ChangeInfo]
        public var nextCursor: String?
        public var hasMore: Bool
        public init(changes: [ChangeInfo], nextCursor: String? = nil, hasMore: Bool) {
            self.changes = changes
            self.nextCursor = nextCursor
            self.hasMore = hasMore
        }
    }
}

public enum ShowChange: MesaMethod {
    public static let name = "show"
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        /// A bookmark or change id; omitted = the mount's current change (`@`).
        public var rev: String?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, rev: String? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
            self.rev = rev
        }
    }
    public struct Result: Codable, Sendable {
        public var change: ChangeInfo
        /// Against the change's first parent.
        public var diff: DiffInfo
        public init(change: ChangeInfo, diff: DiffInfo) {
            self.change = change
            self.diff = diff
        }
    }
}

public enum DiffMethod: MesaMethod {
    public static let name = "diff"
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        /// Defaults: head = the mount's current change, base = head's first parent.
        public var base: String?
        public var head: String?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, base: String? = nil, head: String? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
            self.base = base
            self.head = head
        }
    }
    public typealias Result = DiffInfo
}

public enum ListBookmarks: MesaMethod {
    public static let name = "listBookmarks"
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        public var cursor: String?
        public var limit: Int?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, cursor: String? = nil, limit: Int? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
            self.cursor = cursor
            self.limit = limit
        }
    }
    public struct Result: Codable, Sendable {
        public var bookmarks: [BookmarkInfo]
        public var nextCursor: String?
        public var hasMore: Bool
        public init(bookmarks: [BookmarkInfo], nextCursor: String? = nil, hasMore: Bool) {
            self.bookmarks = bookmarks
            self.nextCursor = nextCursor
            self.hasMore = hasMore
        }
    }
}

public enum CreateBookmark: MesaMethod {
    public static let name = "createBookmark"
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        public var name: String
        /// Omitted: the mount's current change.
        public var changeId: String?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, name: String, changeId: String? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
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
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        public var name: String
        public var changeId: String
        public var allowBackwards: Bool?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, name: String, changeId: String, allowBackwards: Bool? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
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
    public struct Params: Codable, Sendable {
        public var mountId: String?
        public var path: String?
        public var org: String?
        public var repo: String?
        public var target: String
        public var source: String
        public var message: String?
        public var allowConflicted: Bool?
        public init(mountId: String? = nil, path: String? = nil, org: String? = nil, repo: String? = nil, target: String, source: String, message: String? = nil, allowConflicted: Bool? = nil) {
            self.mountId = mountId
            self.path = path
            self.org = org
            self.repo = repo
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

public enum OpenRepo: MesaMethod {
    public static let name = "openRepo"
    public struct Params: Codable, Sendable {
        public var org: String?
        public var repo: String
        public init(org: String? = nil, repo: String) {
            self.org = org
            self.repo = repo
        }
    }
    public typealias Result = OK
}

public enum CloseRepo: MesaMethod {
    public static let name = "closeRepo"
    public typealias Params = OpenRepo.Params
    public typealias Result = OK
}
