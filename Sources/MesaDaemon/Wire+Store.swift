import Foundation
import MesaAPI
import MesaProtocol
import Model
import RPC
import Store

// Conversions from store and backend values to the JSON-RPC wire types.

extension KeyInfo {
    init(_ key: APIKey) {
        self.init(id: key.id, org: key.org, name: key.name, scopes: key.scopes.map(\.rawValue), repoIds: key.repoIDs,
                  status: key.status().rawValue, tags: key.tags, createdAt: Timestamp.string(key.createdAt),
                  expiresAt: Timestamp.string(key.expiresAt), revokedAt: Timestamp.string(key.revokedAt),
                  lastUsedAt: Timestamp.string(key.lastUsedAt))
    }
}

/// Runs blocking backend work (SQLite, libgit2, HTTP) on a dispatch queue, so it never
/// occupies one of the few threads of Swift's cooperative pool; errors become MesaErrors.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do { continuation.resume(returning: try body()) } catch {
                continuation.resume(throwing: MesaError.from(error))
            }
        }
    }
}
