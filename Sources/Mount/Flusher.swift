import Dispatch
import Foundation
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
        var stopping = false
        var failures = 0
        var thread: pthread_t?
    }

    private let debounce: Duration
    private let maxDelay: Duration
    private let round: @Sendable () -> Outcome
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(debounce: Duration, maxDelay: Duration, logger: Logger, round: @escaping @Sendable () -> Outcome) {
        self.debounce = debounce
        self.maxDelay = maxDelay
        self.round = round
        let thread = Thread { [self] in run() }
        thread.name = "mesa-flusher"
        thread.start()
    }

    /// Something changed: upload after the mount has been quiet for `debounce`.
    func notify() {
        // Only an idle flusher needs waking: a waiting one wakes at its deadline, sees the
        // newer activity and waits on. (A wakeup per FUSE request cost a context switch each.)
        let idle = state.withLock { state in
            defer { state.lastActivity = .now }
            return state.lastActivity == nil
        }
        if idle { wakeup.signal() }
    }

    /// Stops the thread and waits for it (a running round completes first).
    func stop() {
        let (already, thread) = state.withLock { state in
            defer { state.stopping = true }
            return (state.stopping, state.thread)
        }
        guard !already else { return }
        wakeup.signal()
        // The last reference to the mount may drop inside a round, on this very thread:
        // waiting for ourselves would deadlock, and the loop ends on its own anyway.
        if let thread, pthread_equal(thread, pthread_self()) != 0 { return }
        finished.wait()
    }

    private func run() {
        state.withLock { $0.thread = pthread_self() }
        defer { finished.signal() }
        while true {
            let (stopping, activity, failures) = state.withLock { ($0.stopping, $0.lastActivity, $0.failures) }
            if stopping { return }
            guard let activity else {
                _ = wakeup.wait(timeout: .now() + .seconds(60))
                continue
            }
            var due = activity + debounce
            if failures > 0 {
                let backoff = min(Duration.milliseconds(250) * (1 << min(failures, 10)), maxDelay)
                due = max(due, activity + backoff)
            }
            let wait = ContinuousClock.now.duration(to: due)
            if wait > .zero {
                _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(wait.components.seconds * 1_000_000_000
                                                                  + wait.components.attoseconds / 1_000_000_000)))
                continue
            }
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
        }
    }
}
