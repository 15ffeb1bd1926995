import Foundation
import Model
import Synchronization

/// Hands out libgit2 handles per repository. A handle serves one thread at a time
/// (libgit2 objects are not thread-safe); idle handles are kept for reuse so hot
/// paths (content reads) do not reopen the repository.
final class RepositoryPool: Sendable {
    let root: String
    private let idle = Mutex<[String: [GitRepository]]>([:])
    private static let maxIdlePerRepo = 8

    /// Settings for the packs upload batches are written as, or nil when the file
    /// cannot be written (packs are then built with libgit2's defaults).
    ///
    /// Why: an upload batch is new file contents, rarely a good delta of each other,
    /// and libgit2's delta search over a batch held ~100 MiB at its peak (mesad
    /// VmHWM 190 → 94 MiB for an untar of /usr/include without it). libgit2 1.5 reads
    /// its big-file threshold (objects above it are stored whole) from
    /// `pack.deltaCacheSize`; `pack.bigFileThreshold` is the key git and later libgit2
    /// versions use. A later `git gc` / `git repack` of the store computes deltas.
    let packConfig: String?

    init(root: String) {
        self.root = root
        let file = (root as NSString).deletingLastPathComponent + "/pack-without-deltas.gitconfig"
        let text = "# Written by mesad: how upload batches are packed (no delta search).\n[pack]\n\tbigFileThreshold = 1\n\tdeltaCacheSize = 1\n"
        if (try? String(contentsOfFile: file, encoding: .utf8)) == text {
            packConfig = file
        } else {
            packConfig = (try? text.write(toFile: file, atomically: true, encoding: .utf8)) != nil ? file : nil
        }
    }

    func path(for repoID: String) -> String { root + "/" + repoID + ".git" }

    func with<T>(_ repoID: String, _ body: (GitRepository) throws -> T) throws -> T {
        let cached = idle.withLock { $0[repoID]?.popLast() }
        let repository = try cached ?? GitRepository.open(at: path(for: repoID))
        defer {
            idle.withLock { handles in
                if handles[repoID, default: []].count < Self.maxIdlePerRepo {
                    handles[repoID, default: []].append(repository)
                }
            }
        }
        return try body(repository)
    }

    /// Drops cached handles, e.g. before a repository directory is deleted.
    func evict(_ repoID: String) {
        _ = idle.withLock { $0.removeValue(forKey: repoID) }
    }
}
