import Infra
import Synchronization
import Testing

@Suite struct BackoffTests {
    struct Failure: Error, Equatable { let attempt: Int }

    @Test func delaysGrowByTheFactorUntilTheCap() {
        let backoff = Backoff(initial: .milliseconds(100), factor: 2, cap: .milliseconds(1000))
        let delays = (1...7).map { backoff.delay(for: $0) }
        #expect(delays == [100, 200, 400, 800, 1000, 1000, 1000].map { Duration.milliseconds($0) })
    }

    @Test func aHugeAttemptNumberIsTheCapNotAnOverflow() {
        let backoff = Backoff(initial: .milliseconds(250), cap: .seconds(60))
        #expect(backoff.delay(for: 10_000) == .seconds(60))
        #expect(backoff.delay(for: Int.max) == .seconds(60))
    }

    @Test func jitterShortensEachDelayByAtMostItsFraction() {
        let backoff = Backoff(initial: .seconds(1), factor: 2, cap: .seconds(8), jitter: 0.5)
        var generator = SystemRandomNumberGenerator()
        var seen = Set<Duration>()
        for attempt in 1...5 {
            let base = backoff.baseDelay(for: attempt)
            for _ in 0..<200 {
                let delay = backoff.delay(for: attempt, using: &generator)
                #expect(delay >= base / 2 && delay <= base, "attempt \(attempt): \(delay) outside [\(base / 2), \(base)]")
                seen.insert(delay)
            }
        }
        #expect(seen.count > 100, "jitter should spread the delays")
    }

    @Test func retryStopsAtMaxAttemptsAndThrowsTheLastFailure() {
        let backoff = Backoff(initial: .milliseconds(10), cap: .milliseconds(40), maxAttempts: 4)
        var slept: [Duration] = []
        var attempts: [Int] = []
        #expect(throws: Failure(attempt: 4)) {
            try backoff.retry(shouldRetry: { (_: Failure, _) in .retry }, sleep: { slept.append($0) }) { attempt throws(Failure) in
                attempts.append(attempt)
                throw Failure(attempt: attempt)
            }
        }
        #expect(attempts == [1, 2, 3, 4])
        #expect(slept == [.milliseconds(10), .milliseconds(20), .milliseconds(40)])
    }

    @Test func retryReturnsTheFirstSuccess() throws {
        let backoff = Backoff(initial: .milliseconds(1), cap: .milliseconds(1), maxAttempts: 10)
        var slept = 0
        let value = try backoff.retry(shouldRetry: { (_: Failure, _) in .retry }, sleep: { _ in slept += 1 }) { attempt throws(Failure) in
            guard attempt == 3 else { throw Failure(attempt: attempt) }
            return "third"
        }
        #expect(value == "third")
        #expect(slept == 2)
    }

    @Test func retryGivesUpAtOnceWhenThePredicateSaysStop() {
        let backoff = Backoff(initial: .milliseconds(1), cap: .milliseconds(1), maxAttempts: 10)
        var attempts = 0
        var slept = 0
        #expect(throws: Failure(attempt: 2)) {
            try backoff.retry(shouldRetry: { (failure: Failure, _) in failure.attempt < 2 ? .retry : .stop },
                              sleep: { _ in slept += 1 }) { attempt throws(Failure) in
                attempts += 1
                throw Failure(attempt: attempt)
            }
        }
        #expect(attempts == 2)
        #expect(slept == 1)
    }

    @Test func retryWaitsAtLeastWhatTheFailureAsks() {
        let backoff = Backoff(initial: .milliseconds(10), cap: .milliseconds(10), maxAttempts: 2)
        var slept: [Duration] = []
        _ = try? backoff.retry(shouldRetry: { (_: Failure, _) in .retry(atLeast: .seconds(3)) },
                               sleep: { slept.append($0) }) { attempt throws(Failure) -> Int in throw Failure(attempt: attempt) }
        #expect(slept == [.seconds(3)])
    }

    @Test func noRetryStartsPastTheBudget() {
        let backoff = Backoff(initial: .seconds(5), cap: .seconds(5), budget: .seconds(12))
        #expect(backoff.nextDelay(after: 1, elapsed: .seconds(1)) == .seconds(5))
        #expect(backoff.nextDelay(after: 2, elapsed: .seconds(8)) == nil)
        #expect(backoff.nextDelay(after: 1, atLeast: .seconds(20)) == nil, "a Retry-After past the budget ends the retries")
    }
}
