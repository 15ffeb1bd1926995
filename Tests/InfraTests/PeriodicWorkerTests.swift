import Dispatch
import Foundation
import Infra
import Synchronization
import Testing

@Suite struct PeriodicWorkerTests {
    /// Counts runs and the instants they started at.
    final class Runs: Sendable {
        let times = Mutex<[ContinuousClock.Instant]>([])
        var count: Int { times.withLock { $0.count } }
        func record() { times.withLock { $0.append(.now) } }

        /// Blocks until `count` runs happened or `timeout` passed.
        func wait(for count: Int, timeout: Duration) -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if self.count >= count { return true }
                usleep(2_000)
            }
            return self.count >= count
        }
    }

    @Test func runsEveryInterval() {
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.interval", interval: .milliseconds(30))
        worker.start { runs.record(); return .interval }
        defer { worker.stop() }
        #expect(runs.wait(for: 4, timeout: .seconds(10)))
    }

    @Test func wakeRunsPromptlyInsteadOfAtTheEndOfTheInterval() {
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.wake", interval: .seconds(3600))
        worker.start { runs.record(); return .interval }
        defer { worker.stop() }
        usleep(50_000)
        #expect(runs.count == 0, "nothing runs before the interval or a wake")
        let woken = ContinuousClock.now
        worker.wake()
        #expect(runs.wait(for: 1, timeout: .seconds(5)))
        let started = runs.times.withLock { $0.first } ?? .now
        #expect(woken.duration(to: started) < .seconds(1))
    }

    @Test func manyWakesDuringARunMakeOneMoreRun() {
        let runs = Runs()
        let release = DispatchSemaphore(value: 0)
        let worker = PeriodicWorker(name: "test.coalesce", interval: .seconds(3600))
        worker.start {
            runs.record()
            if runs.count == 1 { release.wait() }
            return .interval
        }
        defer { worker.stop() }
        worker.wake()
        #expect(runs.wait(for: 1, timeout: .seconds(5)))
        for _ in 0..<50 { worker.wake() }
        release.signal()
        #expect(runs.wait(for: 2, timeout: .seconds(5)))
        usleep(200_000)
        #expect(runs.count == 2, "50 wakes while busy coalesce into one run")
    }

    @Test func workChoosesTheNextWait() {
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.after", interval: .seconds(3600))
        worker.start {
            runs.record()
            return runs.count < 3 ? .after(.zero) : .interval
        }
        defer { worker.stop() }
        worker.wake()
        #expect(runs.wait(for: 3, timeout: .seconds(5)))
        usleep(100_000)
        #expect(runs.count == 3)
    }

    @Test func stopWaitsForTheRunInProgressAndNoRunFollows() {
        let runs = Runs()
        let finished = Mutex(0)
        let worker = PeriodicWorker(name: "test.stop", interval: .milliseconds(1))
        worker.start {
            runs.record()
            usleep(100_000)
            finished.withLock { $0 += 1 }
            return .after(.zero)
        }
        #expect(runs.wait(for: 1, timeout: .seconds(5)))
        let stopStarted = ContinuousClock.now
        #expect(worker.stop())
        #expect(stopStarted.duration(to: .now) < .seconds(5))
        let (started, done) = (runs.count, finished.withLock { $0 })
        #expect(started == done, "stop returned while a run was still in progress")
        worker.wake()
        usleep(150_000)
        #expect(runs.count == started, "a run started after stop()")
        #expect(worker.stop(), "a second stop returns too")
    }

    @Test func stopWithATimeoutReturnsFalseWhileARunIsStuck() {
        let release = DispatchSemaphore(value: 0)
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.stuck", interval: .seconds(3600))
        worker.start { runs.record(); release.wait(); return .interval }
        worker.wake()
        #expect(runs.wait(for: 1, timeout: .seconds(5)))
        #expect(!worker.stop(timeout: .milliseconds(50)))
        release.signal()
        #expect(worker.stop(timeout: .seconds(5)))
        #expect(runs.count == 1)
    }

    @Test func stopFromInsideWorkDoesNotDeadlock() {
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.self-stop", interval: .milliseconds(1))
        worker.start { [worker] in
            runs.record()
            worker.stop()
            return .interval
        }
        #expect(runs.wait(for: 1, timeout: .seconds(5)))
        #expect(worker.stop(timeout: .seconds(5)))
        usleep(50_000)
        #expect(runs.count == 1)
    }

    @Test func returningStopEndsTheThread() {
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.return-stop", interval: .milliseconds(1))
        worker.start { runs.record(); return .stop }
        #expect(runs.wait(for: 1, timeout: .seconds(5)))
        #expect(worker.stop(timeout: .seconds(5)))
        #expect(worker.isStopping)
        worker.wake()
        usleep(50_000)
        #expect(runs.count == 1)
    }

    @Test func stopBeforeStartPreventsAnyRun() {
        let runs = Runs()
        let worker = PeriodicWorker(name: "test.never", interval: .milliseconds(1))
        #expect(worker.stop())
        worker.start { runs.record(); return .interval }
        usleep(50_000)
        #expect(runs.count == 0)
    }
}
