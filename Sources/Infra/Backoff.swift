import Foundation

/// How long to wait between attempts of something that may fail for a while (a server
/// outage, an upload round): `initial`, multiplied by `factor` per attempt, never more
/// than `cap`, shortened at random by up to `jitter` so that many callers who failed
/// together do not all retry at the same instant.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var factor: Double
    public var cap: Duration
    /// 0 = exact delays; 0.5 = each delay is drawn from [delay / 2, delay].
    public var jitter: Double
    /// Attempts in all, the first included; nil = no limit.
    public var maxAttempts: Int?
    /// No retry starts once this much time has passed since the first attempt (the
    /// delay before it included); nil = no limit.
    public var budget: Duration?

    public init(initial: Duration, factor: Double = 2, cap: Duration, jitter: Double = 0, maxAttempts: Int? = nil,
                budget: Duration? = nil) {
        self.initial = initial
        self.factor = max(factor, 1)
        self.cap = cap
        self.jitter = min(max(jitter, 0), 1)
        self.maxAttempts = maxAttempts
        self.budget = budget
    }

    /// The wait after failed attempt `attempt` (1 = the first), before jitter:
    /// `initial * factor^(attempt-1)`, at most `cap`.
    public func baseDelay(for attempt: Int) -> Duration {
        let exponent = Double(max(attempt, 1) - 1)
        // Computed in seconds as a Double: factor^exponent overflows no integer, and a
        // huge value is cut to `cap` anyway.
        let seconds = Self.seconds(initial) * pow(factor, exponent)
        guard seconds.isFinite, seconds < Self.seconds(cap) else { return cap }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// The wait after failed attempt `attempt`, jitter applied.
    public func delay(for attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(for: attempt, using: &generator)
    }

    public func delay(for attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let base = baseDelay(for: attempt)
        guard jitter > 0 else { return base }
        return base * Double.random(in: (1 - jitter)...1, using: &generator)
    }

    /// What a failed attempt calls for.
    public enum Decision: Sendable, Equatable {
        /// Give up: the failure is thrown.
        case stop
        /// Try again after the backoff's delay, or after `atLeast` if that is longer
        /// (a server's Retry-After).
        case retry(atLeast: Duration)

        public static let retry = Decision.retry(atLeast: .zero)
    }

    /// Runs `body` (given the attempt number, from 1) until it returns, `shouldRetry`
    /// says stop, the attempts or the time budget are spent; then the last failure is
    /// thrown. `sleep` is how the caller waits (tests pass a recorder).
    public func retry<T, E: Error>(shouldRetry: (E, _ attempt: Int) -> Decision,
                                   sleep: (Duration) -> Void = Backoff.sleep,
                                   _ body: (_ attempt: Int) throws(E) -> T) throws(E) -> T {
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try body(attempt)
            } catch {
                guard case .retry(let atLeast) = shouldRetry(error, attempt),
                      let wait = nextDelay(after: attempt, atLeast: atLeast, elapsed: started.duration(to: .now)) else {
                    throw error
                }
                sleep(wait)
            }
        }
    }

    /// The wait before attempt `attempt + 1`, or nil when the attempts or the budget are spent.
    public func nextDelay(after attempt: Int, atLeast: Duration = .zero, elapsed: Duration = .zero) -> Duration? {
        if let maxAttempts, attempt >= maxAttempts { return nil }
        let wait = max(delay(for: attempt), atLeast)
        if let budget, elapsed + wait > budget { return nil }
        return wait
    }

    /// Blocks the calling thread (not a task: callers are worker threads).
    public static func sleep(_ duration: Duration) {
        guard duration > .zero else { return }
        Thread.sleep(forTimeInterval: seconds(duration))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}
