import CFuse
import Foundation
import MesaAPI
import MesaIgnore
import Model

extension RepoFileSystem {
    /// Uploads every local change now and returns when the working change holds them
    /// (or throws the backend's error; nothing is dropped, a later flush retries).
    /// Checkpoint, unmount and shutdown call this.
    public func flush() throws(MesaError) {
        try flushLock.withLock { _ throws(MesaError) in try flushUnlocked() }
    }

    /// Flush rounds until nothing is pending (bounded: a writer that never stops must
    /// not starve the caller). Callers hold `flushLock`.
    func flushUnlocked() throws(MesaError) {
        for _ in 0..<16 {
            do {
                guard try flushRound(compactAlways: true) else { break }
                revision.noteUploaded()
            } catch {
                revision.noteFailure(error.message)
                noteBackendFailure(error)
                throw error
            }
        }
    }

    /// Called by the flusher thread.
    func backgroundRound() -> Flusher.Outcome {
        flushLock.withLock { _ in
            do {
                let worked = try flushRound(compactAlways: false)
                if worked {
                    revision.noteUploaded()
                    // An upload held a batch of file contents: give the freed pages back.
                    cfuse_malloc_trim()
                }
                return uploader.hasPending(rules: cachedIgnoreRules) ? .more : .idle
            } catch {
                let failure = MesaError.from(error)
                revision.noteFailure(failure.message)
                noteBackendFailure(failure)
                logger.warning("upload failed; will retry", metadata: ["repo": "\(org)/\(repo)", "error": "\(failure.message)"])
                return .failed
            }
        }
    }

    /// One upload round (`Uploader.round`), unless nothing changed: then not even the
    /// rules are read (a backend call for an unlisted root).
    private func flushRound(compactAlways: Bool) throws(MesaError) -> Bool {
        if state.withLock({ $0.table.touched.isEmpty }) { return false }
        return try uploader.round(rules: ignoreRules(mayBlock: true), compactAlways: compactAlways)
    }
}
