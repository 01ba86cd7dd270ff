// The code samples of README.md, compiled so they cannot rot. Keep the two in sync.
// Run: swift run spindle-readme-examples

import HTTPTypes
import Spindle
import SpindleHTTP

// README: "Run a program on Spindle"
let sum = try await Runtime.run(workers: 2) {
    await withTaskGroup(of: Int.self) { group in
        for i in 0..<10_000 { group.addTask { i } }
        return await group.reduce(0, +)
    }
}
print("sum:", sum)

// README: "Keep a runtime and spawn onto it"
let runtime = try Runtime()
let task = try runtime.spawn(name: "worker") { () async -> String in
    try? await Task.sleep(for: .milliseconds(10))
    return "ran on worker \(Runtime.currentWorkerIndex ?? -1)"
}
print(await task.value)
print("jobs run:", runtime.metrics().jobsRun)
await runtime.shutdown(gracePeriod: .seconds(5))

// README: "The single-threaded event loop"
let answer = try await SpindleEventLoop.run {
    try await Task.sleep(for: .milliseconds(5))
    return 42
}
print("answer:", answer)

// README: "Spawn on whichever host you are on"
func startHeartbeat() throws(SpindleError) -> Task<Int, Never> {
    try spawn(name: "heartbeat") { 1 }
}
let beats = try await SpindleEventLoop.run { try await startHeartbeat().value }
print("beats:", beats)

// README: "Virtual time for tests"
let elapsed = try await SpindleEventLoop.run(clock: .virtual) { () async throws -> Duration in
    let clock = SpindleEventLoop.current!.clock          // the loop's time, a Swift Clock
    let start = clock.now
    var delay = Duration.seconds(1)
    for _ in 0..<12 {                                    // back-off: 1 s, 2 s, 4 s ... 2048 s
        try await clock.sleep(for: delay)                // or Spindle.sleep, or Task.sleep
        delay = delay * 2
    }
    _ = try? await withTimeout(.seconds(3600)) { try await Spindle.sleep(for: .seconds(7200)) }
    return start.duration(to: clock.now)
}
print("virtual time:", elapsed)                          // 7695.0 seconds, in a few milliseconds

// README: "Blocking work: toThread and runInExecutor"
// (stand-ins for the README's `readWholeFile` and `sha256`, so the snippet compiles as written)
import Glibc
func readWholeFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "r") else { throw SpindleError.systemCallFailed(call: "fopen", errno: errno) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n == 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}
func sha256(_ bytes: [UInt8]) -> UInt64 {  // not SHA-256: a stand-in digest (FNV-1a)
    bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
}
let path = "/proc/self/status"
let offloaded = try await Runtime.run(workers: 2) { () async throws -> UInt64 in
    let data = try await toThread { try readWholeFile(path) }       // the runtime's pool
    let cpuPool = try BlockingPool(name: "cpu", maxThreads: 2)      // or a pool you size
    let bytes = data
    let digest = try await runInExecutor(cpuPool) { sha256(bytes) }
    await cpuPool.shutdown()
    return digest
}
print("digest computed:", offloaded != 0)

// README: "Channels"
let echoed = try await Runtime.run(workers: 2) { () async throws -> [Int] in
    let channel = SpindleChannel<Int>(capacity: 1)
    Task(executorPreference: Runtime.current!) {
        for i in 0..<3 { try await channel.send(i) }
        channel.close()
    }
    var received: [Int] = []
    for try await value in channel { received.append(value) }
    return received
}
print("channel:", echoed)

// README: "Sockets, files and timeouts (io_uring)"
let echoedBytes = try await Runtime.run(workers: 2) {
    let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
    let port = try listener.localAddress.port
    let server = Task(executorPreference: Runtime.current!) {
        for try await connection in listener.connections {     // multishot accept
            Task(executorPreference: Runtime.current!) {
                defer { connection.close() }
                while let bytes = try await connection.read() {  // nil at end of stream
                    try await connection.write(bytes)
                }
            }
        }
    }
    let client = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
    try await client.write(Array("hello".utf8))
    let echoed = try await withTimeout(.seconds(1)) { try await client.readExactly(5) }
    client.close()
    listener.close()
    _ = await server.result
    return echoed
}
print("echoed:", String(decoding: echoedBytes, as: UTF8.self))

// README: "ServiceLifecycle: a server, its runtime and its metrics in a ServiceGroup"
import Logging
import Metrics
import ServiceLifecycle
import SpindleMetrics
import SpindleServiceLifecycle

/// Runs the exporter until graceful shutdown (then it reports once more and returns).
struct MetricsService: Service {
    let exporter: RuntimeMetricsExporter
    func run() async throws {
        await cancelWhenGracefulShutdown { await exporter.run() }
    }
}

let logger = Logger(label: "echo")
let serverRuntime = try Runtime()
let serverListener = try TCPListener.bind(host: "127.0.0.1", port: 0)   // README: port 7000
let echoServer = TCPServerService(listener: serverListener, on: serverRuntime, drainTimeout: .seconds(10), logger: logger) {
    connection in
    while let bytes = try await connection.read() { try await connection.write(bytes) }
}
let exporter = try RuntimeMetricsExporter(runtime: serverRuntime, interval: .seconds(10))
let group = ServiceGroup(
    services: [
        RuntimeService(serverRuntime, gracePeriod: .seconds(5), logger: logger),  // first: stops last
        MetricsService(exporter: exporter),
        echoServer,
    ],
    gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger)
// (Not in the README: a client, then the graceful shutdown SIGTERM would start.)
let serverPort = try serverListener.localAddress.port
let client = Task {
    let stream = try await TCPStream.connect(host: "127.0.0.1", port: serverPort, timeout: .seconds(5))
    defer { stream.close() }
    try await stream.write("hi")
    let echo = try await withTimeout(.seconds(5)) { try await stream.readExactly(2) }
    await group.triggerGracefulShutdown()
    return String(decoding: echo, as: UTF8.self)
}
try await group.run()
print("service group echoed: \(try await client.value), runtime shut down: \(serverRuntime.isShutDown)")

// README: "HTTP server (SpindleHTTP)"
let reply = try await Runtime.run(workers: 2) {
    let server = HTTPServer { request, body, response in
        let bytes = try await body.collect(upTo: 1 << 20)   // or `for try await chunk in body`
        var head = HTTPResponse(status: .ok)
        head.headerFields[.contentType] = "text/plain"
        try await response.respond(head, body: Array("\(request.path ?? "") got \(bytes.count) bytes".utf8))
    }
    let listener = try TCPListener.bind(host: "127.0.0.1", port: 0)
    let port = try listener.localAddress.port
    async let serving: Void = server.serve(listener)
    let client = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(2))
    try await client.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    var received: [UInt8] = []
    while let bytes = try await withTimeout(.seconds(5), operation: { try await client.read() }) { received += bytes }
    client.close()
    server.shutdown(gracePeriod: .seconds(5))   // stop accepting, finish requests in flight
    await serving
    return String(decoding: received, as: UTF8.self)
}
print("http:", reply.hasPrefix("HTTP/1.1 200 OK") && reply.hasSuffix("/upload got 3 bytes"))

// README: "What is running: task dumps and unobserved failures"
let observed = try Runtime(workers: 2)
let inbox = SpindleChannel<String>(capacity: 1)
let consumer = try observed.spawn(name: "consumer") { try await inbox.receive() }
let napper = try observed.spawn(name: "napper") { try await Spindle.sleep(for: .seconds(30)) }
try await Spindle.sleep(for: .milliseconds(50))   // (let them reach their waits)
print(observed.formattedTaskDump())
// runtime (2 workers): 2 spawned tasks
//   task 0 'consumer', age 50.0 ms: suspended in channel receive (channel 0x7f3a1c0042d0)
//   task 1 'napper', age 50.0 ms: suspended in sleep (29950.0 ms left)
let waiting = observed.taskDump().filter { if case .suspended = $0.state { true } else { false } }

struct Lost: Error {}
let go = SpindleChannel<Void>(capacity: 1)
_ = try observed.spawn(name: "forgotten") {   // the handle is dropped: nobody can await it
    _ = try await go.receive()
    throw Lost()
}
try await go.send(())
// logged: error: spawned task 'forgotten' failed and nobody can await its error (every handle
// to it was dropped): Lost()
// (Not in the README: what the test checks, and the end.)
// The failure is reported only while no handle exists, and a shutdown holds one to every task
// it cancels: let 'forgotten' end first (it leaves the dump when its registry entry goes).
for _ in 0..<5_000 where observed.taskDump().contains(where: { $0.name == "forgotten" }) {
    try await Spindle.sleep(for: .milliseconds(1))
}
print("waiting: \(waiting.count)")
_ = (consumer, napper)
await observed.shutdown()
