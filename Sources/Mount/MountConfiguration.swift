import Foundation
import Model

public enum MountMode: String, Sendable, Codable {
    case rw, ro
}

/// `branchedFrom`: fork an empty change on the parent when the mount first opens.
public struct BranchSpec: Sendable, Equatable {
    /// The parent: a bookmark, else a change; neither = the repo's default bookmark.
    public var bookmark: String?
    public var change: ChangeID?
    /// Bookmark to put on the forked change (`as.bookmark`); checkpoints then move it.
    public var newBookmark: String?
    /// Description of the forked change (`as.describe`).
    public var describe: String?

    public init(bookmark: String? = nil, change: ChangeID? = nil, newBookmark: String? = nil, describe: String? = nil) {
        self.bookmark = bookmark
        self.change = change
        self.newBookmark = newBookmark
        self.describe = describe
    }
}

/// When written bytes become durable, as local filesystems define it.
public enum Durability: String, Sendable, Codable, CaseIterable {
    /// `close` journals the file (written to the kernel, not synced): a kill -9 of mesad
    /// loses nothing. `fsync`/`fdatasync` syncs it: a power loss loses nothing. The default.
    case fsync
    /// Every `close` also syncs (one journal fdatasync, more for large files): stricter
    /// than any local filesystem, several times slower on workloads of many small files.
    case close
}

/// Which revision a mount shows and writes on top of.
public enum MountTarget: Sendable, Equatable {
    /// A bookmark (nil = the repo's default); checkpoints move it.
    case bookmark(String?)
    /// A change; checkpoints save the working change but move no bookmark.
    case change(ChangeID)
    case branchedFrom(BranchSpec)
}

/// Everything a repository mount needs besides its backend and caches.
public struct MountConfiguration: Sendable {
    public var org: String
    public var repo: String
    public var target: MountTarget
    public var mode: MountMode
    /// Per-mount journal directory (dirty data and namespace manifest). Reusing the
    /// directory of a previous (crashed) run replays what it holds.
    public var journalDirectory: String
    /// Quiet time after the last change before the flusher uploads.
    public var debounce: Duration
    /// Longest wait between upload retries while the backend fails.
    public var maxRetryDelay: Duration
    /// Upper bound of inline file bytes per backend call; larger edits go in several
    /// amends. 16 MiB keeps a change request (base64 in JSON) under mesa-server's
    /// 32 MiB body limit.
    public var maxBatchBytes: Int
    /// Files larger than this upload on their own, streamed from the journal's data
    /// file (`Backend.uploadBlob`), and the change references the blob by id: no size
    /// limit, and memory stays flat.
    public var streamThreshold: Int
    /// Owner reported for every file (the daemon's user by default).
    public var uid: UInt32
    public var gid: UInt32
    /// Run the background flusher (tests drive `flush()` themselves when false).
    public var backgroundFlush: Bool
    /// What `close` promises (see `Durability`).
    public var durability: Durability
    /// What to fetch in the background once the mount opens (see `Prefetcher`).
    public var prefetch: PrefetchMode = .off
    /// Backend calls the prefetch runs at once.
    public var prefetchConcurrency = 4
    /// Content prefetch stops once the blob cache holds this share of its size cap,
    /// leaving the rest to what is actually read.
    public var prefetchCacheFillRatio = 0.5
    /// Content prefetch skips files larger than this.
    public var prefetchMaxFileBytes = 256 << 10

    public init(org: String, repo: String, target: MountTarget = .bookmark(nil), mode: MountMode = .rw,
                journalDirectory: String, debounce: Duration = .seconds(1), maxRetryDelay: Duration = .seconds(30),
                maxBatchBytes: Int = 16 << 20, streamThreshold: Int = 1 << 20, uid: UInt32 = getuid(), gid: UInt32 = getgid(),
                backgroundFlush: Bool = true, durability: Durability = .fsync) {
        self.org = org
        self.repo = repo
        self.target = target
        self.mode = mode
        self.journalDirectory = journalDirectory
        self.debounce = debounce
        self.maxRetryDelay = maxRetryDelay
        self.maxBatchBytes = maxBatchBytes
        self.streamThreshold = streamThreshold
        self.uid = uid
        self.gid = gid
        self.backgroundFlush = backgroundFlush
        self.durability = durability
    }
}

/// What `status` reports about a mount.
public struct MountStatus: Sendable, Equatable {
    public var org: String
    public var repo: String
    public var mode: MountMode
    /// The bookmark checkpoints move, if any.
    public var bookmark: String?
    /// The change the next working change is created on.
    public var baseChange: ChangeID
    /// The change flushes amend; nil until the first flush after a checkpoint.
    public var workingChange: ChangeID?
    /// Paths changed locally and not uploaded yet (sorted, at most 1000).
    public var dirtyPaths: [String]
    /// How many paths wait for upload.
    public var pendingUploads: Int
    /// The last upload failure since the last success, if any.
    public var lastError: String?
    public var lastFlush: Date?
    /// The background prefetch, nil when it is off.
    public var prefetch: PrefetchProgress?
}

/// What a checkpoint saved.
public struct CheckpointResult: Sendable, Equatable {
    /// The change holding the saved work (the bookmark now points here).
    public var savedChange: ChangeID
    /// Whether there was anything new to save.
    public var created: Bool
    public var bookmark: String?
}
