import CSpindle
import Glibc
import Synchronization
import Testing
@testable import Spindle

/// Every test that starts runtimes runs inside this serialized suite, so that thread and
/// descriptor counts are meaningful and the 2-core machine is not oversubscribed.
@Suite(.serialized) enum SpindleTests {}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    let seconds: Double
    /// The process's threads when the time ran out (see `threadDump`), for a hang's diagnosis.
    var threads: String = ""
    var description: String {
        "timed out after \(seconds) s: \(what)" + (threads.isEmpty ? "" : "\nthreads:\n\(threads)")
    }
}

/// Runs `operation` but gives up after `seconds`, failing with a diagnostic instead of hanging
/// the test run. (A task group would wait for a hung child; an unstructured task does not.)
func bounded<T: Sendable>(
    _ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = Atomic<Bool>(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let resume: @Sendable (Result<T, any Error>) -> Void = { result in
            if !once.exchange(true, ordering: .acquiringAndReleasing) { continuation.resume(with: result) }
        }
        let work = Task {
            do { resume(.success(try await operation())) } catch { resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            let dump = threadDump()  // before the cancellation disturbs whatever hung
            work.cancel()
            resume(.failure(TimedOut(what: what, seconds: seconds, threads: dump)))
        }
    }
}

/// Counts entries in a /proc/self directory (threads or descriptors).
func procEntries(_ directory: String) -> Int {
    guard let dir = opendir(directory) else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count
}

/// The process's TCP sockets accepted on local `port` (their local port is `port` and they have
/// a peer; the listener itself has none). Unlike a count of /proc/self/fd, this is not moved by
/// descriptors other tests running at the same time open (suites of other test targets run in
/// parallel with the serialized `SpindleTests`).
func acceptedSockets(onPort port: Int) -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let fd = Int32(name) else { continue }
        var local = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let isOnPort = withUnsafeMutablePointer(to: &local) { pointer -> Bool in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } == 0
                && pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    Int(pointer.pointee.ss_family) == Int(AF_INET) && Int(UInt16(bigEndian: $0.pointee.sin_port)) == port
                }
        }
        guard isOnPort else { continue }
        var peer = sockaddr_storage()
        var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let hasPeer = withUnsafeMutablePointer(to: &peer) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) } == 0
        }
        if hasPeer { count += 1 }
    }
    return count
}

/// A thread that is not a Spindle worker, for resuming continuations from outside.
func onForeignThread(_ body: @escaping @Sendable () -> Void) {
    var thread = pthread_t()
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        // Threads inherit their creator's name; don't pass for a Spindle worker.
        spindle_set_thread_name("test-foreign")
        box.body()
        return nil
    }, box)
    pthread_detach(thread)
}

/// Fake jobs for queue tests: distinct non-null pointers that are stored and moved but never run.
func token(_ i: Int) -> UnownedJob { unsafeBitCast(UInt(i + 1) << 4, to: UnownedJob.self) }
func tokenIndex(_ job: UnownedJob) -> Int { Int(unsafeBitCast(job, to: UInt.self) >> 4) - 1 }

/// The kernel thread id of the caller.
func spindle_test_tid() -> Int32 { spindle_gettid() }

/// Polls `condition` until it holds, failing with `what` after `seconds`.
func eventually(_ what: String, seconds: Double = 5, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while !condition() {
        if ContinuousClock.now > deadline { throw TimedOut(what: what, seconds: seconds) }
        try await Task.sleep(for: .milliseconds(1))
    }
}

/// The names of this process's threads (from /proc/self/task/*/comm).
func threadNames() -> [String] {
    guard let dir = opendir("/proc/self/task") else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name != ".", name != "..", let file = fopen("/proc/self/task/\(name)/comm", "r") else { continue }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = fgets(&buffer, 64, file)
        fclose(file)
        names.append(String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return names
}

/// The kernel ids of this process's threads with their names.
func threadsByID() -> [Int32: String] {
    guard let dir = opendir("/proc/self/task") else { return [:] }
    defer { closedir(dir) }
    var threads: [Int32: String] = [:]
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard let id = Int32(name) else { continue }
        threads[id] = procLine("/proc/self/task/\(name)/comm")
    }
    return threads
}

/// The first line of a small /proc file, without its newline ("" when unreadable).
func procLine(_ path: String) -> String {
    guard let file = fopen(path, "r") else { return "" }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 512)
    guard fgets(&buffer, 512, file) != nil else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// One line per thread: id, name, scheduler state, the kernel function it sleeps in and the
/// system call it is in (number first), so a hang's report shows who waits for what.
func threadDump() -> String {
    threadsByID().sorted { $0.key < $1.key }.map { id, name in
        let stat = procLine("/proc/self/task/\(id)/stat")
        let state = stat.lastIndex(of: ")").map { stat[stat.index($0, offsetBy: 2)...].prefix(1) } ?? "?"
        let wchan = procLine("/proc/self/task/\(id)/wchan")
        let syscall = procLine("/proc/self/task/\(id)/syscall").split(separator: " ").first ?? "?"
        return "  \(id) \(name) \(state) wchan=\(wchan.isEmpty ? "-" : wchan) syscall=\(syscall)"
    }.joined(separator: "\n")
}

/// The threads alive when a test began, so that the test's leak checks count only the threads
/// it created: a thread another test left behind (after its own failure) is not this test's.
struct ThreadBaseline {
    let ids: Set<Int32>

    init() { ids = Set(threadsByID().keys) }

    /// Names of the threads created since the baseline, still alive, whose name starts with
    /// `prefix` (and, if `poolThreadsOnly`, that are not a pool's growth monitor).
    func newThreads(prefix: String = "spindle", poolThreadsOnly: Bool = false) -> [String] {
        threadsByID().filter { id, name in
            !ids.contains(id) && name.hasPrefix(prefix) && !(poolThreadsOnly && name.hasSuffix("-mon"))
        }.map(\.value).sorted()
    }

    /// How many of those there are.
    func count(prefix: String, poolThreadsOnly: Bool = false) -> Int {
        newThreads(prefix: prefix, poolThreadsOnly: poolThreadsOnly).count
    }
}

/// Threads of this process whose name starts with `prefix` (and, if `poolThreadsOnly`, that
/// are not a pool's growth monitor, `<name>-mon`).
func threadCount(prefix: String, poolThreadsOnly: Bool = false) -> Int {
    threadNames().filter { $0.hasPrefix(prefix) && !(poolThreadsOnly && $0.hasSuffix("-mon")) }.count
}

extension TimerAction {
    /// The job of a `.job` timer (the wheel tests use fake job tokens).
    var job: UnownedJob {
        guard case .job(let job) = self else { preconditionFailure("not a job timer") }
        return job
    }
}

/// Starts `path` with `arguments` and `actions` (the caller's redirections), its signal mask
/// empty and every signal at its default disposition: a child must not inherit this process's
/// blocked signals (SIGTERM would never arrive) or ignored ones. Returns posix_spawn's result
/// and the child's pid.
func spawnWithDefaultSignals(
    _ path: String, _ arguments: [String], _ actions: inout posix_spawn_file_actions_t
) -> (result: Int32, child: pid_t) {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var child: pid_t = 0
    let result = posix_spawn(&child, path, &actions, &attributes, argv, environ)
    return (result, child)
}

/// The repository's root: the nearest folder above this source file that holds Package.swift.
func packageRoot(from file: String = #filePath) -> String {
    var path = file
    while let slash = path.lastIndex(of: "/") {
        path = String(path[..<slash])
        if access(path + "/Package.swift", F_OK) == 0 { return path }
    }
    return "."
}

/// Waits up to `seconds` for child `pid` to exit (polling `waitpid` every 10 ms), then kills
/// it, so that a test never hangs on its child. Returns the wait status and whether the child
/// exited by itself.
func reapChild(_ pid: pid_t, within seconds: Int) -> (status: Int32, exited: Bool) {
    var status: Int32 = 0
    for _ in 0..<(seconds * 100) {
        if waitpid(pid, &status, WNOHANG) == pid { return (status, true) }
        usleep(10_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
    return (status, false)
}
