import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Measurements behind the blocking pool's lock-free submission (BlockingPool.swift's file
/// comment). Not run by default: timing is noise on a shared machine, so they print figures
/// and assert only that the work was done.
///
///     SPINDLE_MEASURE=1 swift test -c release --filter BlockingSubmissionMeasurement
extension SpindleTests {
    @Suite(.enabled(if: getenv("SPINDLE_MEASURE") != nil))
    struct BlockingSubmissionMeasurement {
        /// The queue alone: N threads push jobs while one thread takes them. JobQueue (one
        /// atomic exchange per push) against a pthread-mutex-guarded array (one lock shared by
        /// every producer and the consumer).
        @Test func queuePushUnderContention() {
            let total = 2_000_000
            print("queue push, \(total) jobs, 1 consumer; ns per push (median of 3)")
            print("producers  JobQueue  mutex+array")
            for producers in [1, 2, 4, 8] {
                let lockFree = median3 { Self.pushLockFree(producers: producers, total: total) }
                let mutex = median3 { Self.pushMutex(producers: producers, total: total) }
                print(String(repeating: " ", count: 9 - String(producers).count) + "\(producers)"
                      + pad(lockFree, 10) + pad(mutex, 13))
            }
        }

        /// The whole path: N tasks on a 2-worker runtime, each awaiting `run { }` (an empty
        /// job) in a loop, through BlockingPool and through a pool of Tokio's shape (one mutex
        /// around the queue and the idle count, a condition variable to wake threads).
        @Test func roundTripsFromManySubmitters() async throws {
            let perSubmitter = 20_000
            print("empty job round trips from N tasks on 2 workers; ns per job (median of 3)")
            print("submitters  BlockingPool  mutex pool")
            for submitters in [1, 2, 4, 8, 16] {
                var ours: [Double] = [], theirs: [Double] = []
                for _ in 0..<3 {
                    let pool = try BlockingPool(name: "spindle-meas", maxThreads: 64)
                    ours.append(try await Self.roundTrips(submitters: submitters, each: perSubmitter) { try await pool.run($0) })
                    await pool.shutdown()
                    let mutexPool = MutexPool(maxThreads: 64)
                    theirs.append(try await Self.roundTrips(submitters: submitters, each: perSubmitter) { try await mutexPool.run($0) })
                    mutexPool.shutdown()
                }
                print(String(repeating: " ", count: 10 - String(submitters).count) + "\(submitters)"
                      + pad(ours.sorted()[1], 14) + pad(theirs.sorted()[1], 12))
            }
        }

        static func roundTrips(
            submitters: Int, each: Int,
            _ run: @escaping @Sendable (@escaping @Sendable () throws -> Int) async throws -> Int
        ) async throws -> Double {
            try await Runtime.run(workers: 2) {
                let start = ContinuousClock.now
                let sum = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<submitters {
                        group.addTask {
                            var sum = 0
                            for _ in 0..<each { sum += try await run { 1 } }
                            return sum
                        }
                    }
                    return try await group.reduce(0, +)
                }
                precondition(sum == submitters * each)
                let elapsed = ContinuousClock.now - start
                return Double(elapsed.components.attoseconds / 1_000_000_000 + elapsed.components.seconds * 1_000_000_000)
                    / Double(submitters * each)
            }
        }

        static func pushLockFree(producers: Int, total: Int) -> Double {
            let queue = JobQueue()
            // A node cannot be in the queue twice: every push gets a fresh job.
            let perProducer = total / producers
            let jobs = (0..<producers).map { _ in (0..<perProducer).map { _ in BlockingJob() } }
            return timeProducers(producers: producers, produce: { p in
                for job in jobs[p] { queue.push(job) }
            }, consume: {
                queue.pop() != nil
            }, total: perProducer * producers)
        }

        static func pushMutex(producers: Int, total: Int) -> Double {
            let queue = Lock<[BlockingJob]>([])
            let perProducer = total / producers
            let jobs = (0..<producers).map { _ in (0..<perProducer).map { _ in BlockingJob() } }
            return timeProducers(producers: producers, produce: { p in
                for job in jobs[p] { queue.withLock { $0.append(job) } }
            }, consume: {
                // The consumer takes one job per lock, as a pool thread does.
                queue.withLock { $0.popLast() } != nil
            }, total: perProducer * producers)
        }

        /// Starts the producers together, times them until every push is done; a consumer
        /// thread drains meanwhile. Returns ns per push.
        static func timeProducers(
            producers: Int, produce: @escaping @Sendable (Int) -> Void, consume: @escaping @Sendable () -> Bool,
            total: Int
        ) -> Double {
            let go = Gate()
            let finished = Atomic<Int>(0)
            let allDone = Gate()
            let stopConsumer = Atomic<Bool>(false)
            let consumerDone = Gate()
            onForeignThread {
                go.wait()
                while !stopConsumer.load(ordering: .acquiring) { _ = consume() }
                while consume() {}
                consumerDone.open()
            }
            for p in 0..<producers {
                onForeignThread {
                    go.wait()
                    produce(p)
                    if finished.add(1, ordering: .acquiringAndReleasing).newValue == producers { allDone.open() }
                }
            }
            usleep(10_000)
            let start = monotonicNanos()
            go.open()
            allDone.wait()
            let elapsed = monotonicNanos() - start
            stopConsumer.store(true, ordering: .releasing)
            consumerDone.wait()
            return Double(elapsed) / Double(total)
        }
    }
}

private func median3(_ measure: () -> Double) -> Double {
    [measure(), measure(), measure()].sorted()[1]
}

private func pad(_ value: Double, _ width: Int) -> String {
    let text = String(Int(value.rounded()))
    return String(repeating: " ", count: max(1, width - text.count)) + text
}

/// A blocking pool of Tokio's shape, for comparison: one mutex around the queue and the thread
/// counts, one condition variable; threads live until shutdown.
final class MutexPool: @unchecked Sendable {
    // @unchecked Sendable: every var is only touched with `mutex` held.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var idle = 0
    private var notified = 0
    private var live = 0
    private var closed = false
    private let maxThreads: Int
    private var threads: [pthread_t] = []

    init(maxThreads: Int) {
        self.maxThreads = maxThreads
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try body() }) }
        }
    }

    private func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        queue.append(job)
        if idle > notified {
            notified += 1
            pthread_cond_signal(&condition)
        } else if live < maxThreads {
            live += 1
            let thread = try! OSThread.spawn(name: "mutex-pool") { [self] in work() }
            threads.append(thread.handle)
        }
        pthread_mutex_unlock(&mutex)
    }

    private func work() {
        pthread_mutex_lock(&mutex)
        while true {
            if head < queue.count {
                let job = queue[head]
                head += 1
                if head > 1024 && head * 2 > queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                pthread_mutex_unlock(&mutex)
                job()
                pthread_mutex_lock(&mutex)
                continue
            }
            if closed { break }
            idle += 1
            pthread_cond_wait(&condition, &mutex)
            idle -= 1
            if notified > 0 { notified -= 1 }
        }
        pthread_mutex_unlock(&mutex)
    }

    func shutdown() {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&condition)
        let handles = threads
        pthread_mutex_unlock(&mutex)
        for handle in handles { pthread_join(handle, nil) }
    }
}
