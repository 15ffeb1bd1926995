import Dispatch
import Foundation
import Synchronization

/// One background thread that runs `work` every `interval`, sooner when woken, until
/// stopped. Waiting is a timed semaphore wait (no polling); `work` itself may choose
/// the next wait (`.after`) or end the thread (`.stop`).
///
/// Guarantees callers rely on: runs never overlap (one thread); `wake()` during a wait
/// starts the next run at once, and many wakes while one is pending make one run; once
/// `stop()` returns, no run is in progress and none starts.
public final class PeriodicWorker: Sendable {
    public enum Next: Sendable, Equatable {
        /// Wait `interval` (or a wake) before the next run.
        case interval
        /// Wait this long (or a wake) before the next run; `.zero` = at once.
        case after(Duration)
        /// End the thread: no more runs.
        case stop
    }

    private struct State {
        var started = false
        var stopping = false
        var wakePending = false
        var thread: pthread_t?
    }

    public let name: String
    public let interval: Duration
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)
    /// Signalled once when the thread ends; each joiner passes the signal on.
    private let finished = DispatchSemaphore(value: 0)

    public init(name: String, interval: Duration) {
        self.name = name
        self.interval = interval
    }

    /// Starts the thread; its first run comes after `interval` (or a wake). Only the
    /// first call starts anything, and none after `stop()`.
    public func start(_ work: @escaping @Sendable () -> Next) {
        let first = state.withLock { state in
            defer { state.started = true }
            return !state.started && !state.stopping
        }
        guard first else { return }
        let thread = Thread { [self] in run(work) }
        thread.name = name
        thread.start()
    }

    /// Runs `work` now (once the current run, if any, is done) instead of at the end of the wait.
    public func wake() {
        let signal = state.withLock { state in
            defer { state.wakePending = true }
            return !state.wakePending && !state.stopping
        }
        if signal { wakeup.signal() }
    }

    /// True once `stop()` was called or `work` returned `.stop`: long runs check it to end early.
    public var isStopping: Bool { state.withLock { $0.stopping } }

    /// Stops the thread and waits for a run in progress to finish (at most `timeout`,
    /// when given). Returns false only when the timeout passed first. Called from
    /// inside `work` it does not wait (that would wait for itself): the thread ends
    /// when `work` returns. Safe to call more than once, from several threads.
    @discardableResult
    public func stop(timeout: Duration? = nil) -> Bool {
        let (first, started, thread) = state.withLock { state in
            defer { state.stopping = true }
            return (!state.stopping, state.started, state.thread)
        }
        guard started else { return true }
        if first { wakeup.signal() }
        if let thread, pthread_equal(thread, pthread_self()) != 0 { return true }
        if let timeout {
            guard finished.wait(timeout: .now() + Self.dispatchInterval(timeout)) == .success else { return false }
        } else {
            finished.wait()
        }
        finished.signal()
        return true
    }

    private func run(_ work: @Sendable () -> Next) {
        state.withLock { $0.thread = pthread_self() }
        defer { finished.signal() }
        var wait = interval
        while true {
            // A zero wait still consumes a pending wake, so it does not cause a second run.
            _ = wakeup.wait(timeout: .now() + Self.dispatchInterval(wait))
            let stopping = state.withLock { state in
                state.wakePending = false
                return state.stopping
            }
            if stopping { return }
            switch work() {
            case .interval: wait = interval
            case .after(let duration): wait = max(duration, .zero)
            case .stop:
                state.withLock { $0.stopping = true }
                return
            }
        }
    }

    static func dispatchInterval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .never }
        return .nanoseconds(Int(clamping: scaled + attoseconds / 1_000_000_000))
    }
}
