import Foundation
import MesaAPI
import Model

/// What the last look at the mount's key found.
struct KeyCheck: Sendable {
    var checkedAt: ContinuousClock.Instant?
    /// Set once the backend refused the key (revoked, expired, unknown): every call on
    /// the mount then fails with EACCES, and status says why.
    var refusal: MesaError?
}

extension RepoFileSystem {
    /// How stale the key check may be before a call asks the backend again.
    static let keyRecheckInterval: Duration = .seconds(1)

    /// Every call on the mount passes here: a key the backend refused means EACCES
    /// (with the backend's KEY_REVOKED / KEY_EXPIRED error as the cause), and a check
    /// older than `keyRecheckInterval` is renewed first. Renewing asks the backend, so
    /// without `mayBlock` the call is retried off the libfuse thread; calls that never
    /// block (write, read of an open file) use the last answer. An unreachable backend
    /// refuses nothing: the journal keeps working offline.
    func guardKey(mayBlock: Bool) throws(FSError) {
        if journal.isMuted { return }  // replaying the journal at mount time
        let (refusal, due) = keyCheck.withLock { check in
            (check.refusal, check.checkedAt.map { ContinuousClock.now - $0 >= Self.keyRecheckInterval } ?? true)
        }
        if let refusal { throw FSError(refusal) }
        guard due else { return }
        guard mayBlock else { throw FSError.wouldBlock }
        recheckKey()
        if let refusal = keyCheck.withLock({ $0.refusal }) { throw FSError(refusal) }
    }

    /// The last answer only (for calls that must not wait).
    func guardKeyCached() throws(FSError) {
        if let refusal = keyCheck.withLock({ $0.refusal }) { throw FSError(refusal) }
    }

    /// Asks the backend whether the key still holds (the daemon also calls this
    /// periodically, so an idle mount learns of a revocation too).
    public func recheckKey() {
        do {
            _ = try backend.whoami()
            keyCheck.withLock { $0 = KeyCheck(checkedAt: .now, refusal: nil) }
        } catch {
            noteBackendFailure(MesaError.from(error))
            keyCheck.withLock { $0.checkedAt = .now }
        }
    }

    /// Remembers a refusal of the key from any backend call (uploads included).
    func noteBackendFailure(_ error: MesaError) {
        guard [.keyRevoked, .keyExpired, .unauthenticated].contains(error.code) else { return }
        keyCheck.withLock { $0.refusal = error }
        revision.noteFailure("\(error.name): \(error.message)")
        logger.error("the mount's key was refused; every call on the mount now fails with EACCES",
                     metadata: ["repo": "\(org)/\(repo)", "error": "\(error.name): \(error.message)"])
    }

    /// The key's refusal, if the backend refused it (for status).
    public var keyRefusal: MesaError? { keyCheck.withLock { $0.refusal } }
}
