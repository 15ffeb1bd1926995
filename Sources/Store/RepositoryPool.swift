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

    init(root: String) { self.root = root }

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
