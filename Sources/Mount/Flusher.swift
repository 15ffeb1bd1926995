import Foundation
import Infra
import Logging
import Synchronization

/// The background uploader of one mount: a thread that runs a flush round once the
/// mount has been quiet for `debounce` after a change, and retries with exponential
/// backoff (capped at `maxDelay`) while the backend fails. It never drops work: the
/// round itself decides what is pending, from the core's state.
final class Flusher: Sendable {
    enum Outcome: Sendable {
        case idle, more, failed
    }

    private struct State {
        var lastActivity: ContinuousClock.Instant?
        var failures = 0
    }

    private let debounce: Duration
    /// After `n` failed rounds in a row the next waits `backoff.delay(for: n)`: 0.5 s, 1 s, 2 s … `maxDelay`.
    private let backoff: Backoff
    private let round: @Sendable () -> Outcome
    private let state = Mutex(State())
    /// Idle, the thread waits for `notify()` (the 60 s interval only re-checks).
    private let worker = PeriodicWorker(name: "mesa-flusher", interval: .seconds(60))

    init(debounce: Duration, maxDelay: Duration, logger: Logger, round: @escaping @Sendable () -> Outcome) {
        self.debounce = debounce
        backoff = Backoff(initial: .milliseconds(500), cap: maxDelay)
        self.round = round
        worker.start { [weak self] in self?.step() ?? .stop }
    }

    /// Something changed: upload after the mount has been quiet for `debounce`.
    func notify() {
        // Only an idle flusher needs waking: a waiting one wakes at its deadline, sees the
        // newer activity and waits on. (A wakeup per FUSE request cost a context switch each.)
        let idle = state.withLock { state in
            defer { state.lastActivity = .now }
            return state.lastActivity == nil
        }
        if idle { worker.wake() }
    }

    /// Stops the thread and waits for it (a running round completes first). The last
    /// reference to the mount may drop inside a round, on the worker's own thread:
    /// the worker does not wait for itself then, and the loop ends on its own.
    func stop() { worker.stop() }

    /// Runs a round when one is due; says how long to wait for the next look.
    private func step() -> PeriodicWorker.Next {
        let (activity, failures) = state.withLock { ($0.lastActivity, $0.failures) }
        guard let activity else { return .interval }
        var due = activity + debounce
        if failures > 0 { due = max(due, activity + backoff.delay(for: failures)) }
        let wait = ContinuousClock.now.duration(to: due)
        if wait > .zero { return .after(wait) }
        let outcome = round()
        state.withLock { state in
            switch outcome {
            case .idle:
                state.failures = 0
                if state.lastActivity == activity { state.lastActivity = nil }
            case .more:
                // Still pending (a file open for writing keeps changing): wait for
                // the next quiet period rather than re-uploading in a loop.
                state.failures = 0
                state.lastActivity = .now
            case .failed:
                state.failures += 1
                state.lastActivity = .now
            }
        }
        return .after(.zero)
    }
}
