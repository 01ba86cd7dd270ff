import Glibc
import HTTPTypes
import Spindle
import Synchronization
import Testing
@testable import SpindleHTTP

/// Server tests on real sockets on 127.0.0.1; each runs on a 2-worker Runtime and on a SpindleEventLoop.
@Suite(.serialized) struct ServerTests {
    @Test(arguments: TestHost.allCases)
    func keepAliveAndPipelinedRequestsAnswerInOrder(host: TestHost) async throws {
        try await withServer(host) { port, _ in
            let client = try await Client(port: port)
            try await client.send(
                "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = try await client.response()
            let second = try await client.response()
            let third = try await client.response()
            #expect(first.status == 200 && first.body == "GET /one\n")
            #expect(second.body == "POST /two\nabc")
            #expect(third.body == "GET /three\n")
            #expect(first.field("date")?.hasSuffix(" GMT") == true)
            #expect(first.field("connection") == nil)
            // The same connection serves more later.
            try await client.send("GET /four HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await client.response().body == "GET /four\n")
        }
    }

    @Test(arguments: TestHost.allCases)
    func pipeliningBeyondTheBoundIsAnsweredCompletely(host: TestHost) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.maxPipelinedRequests = 4
        try await withServer(host, configuration: configuration) { port, _ in
            let client = try await Client(port: port)
            let requests = (0..<100).map { "GET /\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
            try await client.send(requests)
            for index in 0..<100 {
                #expect(try await client.response().body == "GET /\(index)\n")
            }
        }
    }

    @Test(arguments: TestHost.allCases)
    func chunkedBodiesInAndOutWithTrailers(host: TestHost) async throws {
        let handler: HTTPServer.Handler = { _, body, response in
            var received: [UInt8] = []
            for try await bytes in body { received += bytes }
            let trailers = try body.trailers
            try await response.writeHead(HTTPResponse(status: .ok))
            for piece in stride(from: 0, to: received.count, by: 3) {
                try await response.write(received[piece..<min(piece + 3, received.count)])
            }
            var out = HTTPFields()
            out[HTTPField.Name("X-Echo")!] = trailers?[HTTPField.Name("X-Sum")!] ?? "none"
            try await response.finish(trailers: out)
        }
        try await withServer(host, handler: handler) { port, _ in
            let client = try await Client(port: port)
            try await client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            try await client.send("6;ext=1\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n")
            let response = try await client.response()
            #expect(response.field("transfer-encoding") == "chunked")
            #expect(response.body == "hello world")
            #expect(response.trailers.first { $0.0 == "x-echo" }?.1 == "11")
            // Keep-alive after a chunked exchange.
            try await client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            #expect(try await client.response().trailers.first { $0.0 == "x-echo" }?.1 == "none")
        }
    }

    @Test(arguments: TestHost.allCases)
    func largeBodiesStreamBothWays(host: TestHost) async throws {
        let size = 300_000
        let handler: HTTPServer.Handler = { _, body, response in
            var response2 = HTTPResponse(status: .ok)
            response2.headerFields[.contentLength] = String(body.expectedLength ?? 0)
            try await response.writeHead(response2)
            var buffer: [UInt8] = []
            while try await body.read(into: &buffer, maxBytes: 7_000) > 0 {
                #expect(buffer.count <= 7_000)
                try await response.write(buffer)
            }
            try await response.finish()
        }
        try await withServer(host, handler: handler) { port, _ in
            let client = try await Client(port: port)
            let payload = String((0..<size).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
            try await client.send("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: \(size)\r\n\r\n" + payload)
            let response = try await client.response()
            #expect(response.body.count == size)
            #expect(response.body == payload)
        }
    }

    @Test(arguments: TestHost.allCases)
    func expectContinueIsAnsweredWhenTheHandlerReads(host: TestHost) async throws {
        try await withServer(host) { port, _ in
            let client = try await Client(port: port)
            try await client.send("POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            let interim = try await client.response()
            #expect(interim.status == 100)
            try await client.send("data")
            let final = try await client.response()
            #expect(final.status == 200 && final.body == "POST /up\ndata")
        }
    }

    @Test(arguments: TestHost.allCases)
    func expectContinueRefusedWithoutReadingClosesTheConnection(host: TestHost) async throws {
        let handler: HTTPServer.Handler = { _, _, response in
            try await response.respond(HTTPResponse(status: .forbidden), body: Array("no".utf8))
        }
        try await withServer(host, handler: handler) { port, _ in
            let client = try await Client(port: port)
            try await client.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            let response = try await client.response()
            #expect(response.status == 403)
            #expect(response.field("connection") == "close")
            #expect(try await client.isClosed())
        }
    }

    @Test(arguments: TestHost.allCases)
    func headResponsesHaveNoBody(host: TestHost) async throws {
        try await withServer(host) { port, _ in
            let client = try await Client(port: port)
            try await client.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
            let head = try await client.response(toHead: true)
            #expect(head.status == 200)
            #expect(head.field("content-length") == "8")  // "HEAD /h\n"
            // The next bytes are the GET's response: no body was sent for HEAD.
            let get = try await client.response()
            #expect(get.body == "GET /g\n")
        }
    }

    @Test(arguments: TestHost.allCases)
    func http10ClosesAfterItsResponseUnlessKeepAlive(host: TestHost) async throws {
        let streaming: HTTPServer.Handler = { request, _, response in
            try await response.writeHead(HTTPResponse(status: .ok))
            try await response.write(Array("streamed \(request.path!)".utf8))
            try await response.finish()
        }
        try await withServer(host, handler: streaming) { port, _ in
            let plain = try await Client(port: port)
            try await plain.send("GET /a HTTP/1.0\r\n\r\n")
            let response = try await plain.response()
            #expect(response.body == "streamed /a")  // delimited by the close: 1.0 has no chunked
            #expect(response.field("connection") == "close")
            #expect(try await plain.isClosed())
        }
        try await withServer(host) { port, _ in
            let kept = try await Client(port: port)
            try await kept.send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try await kept.response()
            #expect(response.field("connection") == "keep-alive")
            try await kept.send("GET /c HTTP/1.0\r\n\r\n")
            #expect(try await kept.response().body == "GET /c\n")
            #expect(try await kept.isClosed())
        }
    }

    @Test(arguments: TestHost.allCases)
    func limitsGetTheirStatusAndClose(host: TestHost) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.maxHeadBytes = 2048
        configuration.maxTargetLength = 256
        configuration.maxBodyBytes = 1000
        configuration.maxHeaderCount = 10
        let cases: [(String, Int)] = [
            ("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 3000) + "\r\n\r\n", 431),
            ("GET / HTTP/1.1\r\nHost: x\r\n" + (0..<11).map { "X-\($0): y\r\n" }.joined() + "\r\n", 431),
            ("GET /" + String(repeating: "a", count: 300) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", 413),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3E9\r\n", 413),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417),
        ]
        try await withServer(host, configuration: configuration) { port, _ in
            for (request, status) in cases {
                let client = try await Client(port: port)
                try await client.send(request)
                let response = try await client.response()
                #expect(response.status == status, "\(request.prefix(60))")
                #expect(response.field("connection") == "close")
                #expect(try await client.isClosed())
            }
        }
    }

    @Test(arguments: TestHost.allCases)
    func smugglingAttemptsGet400AndTheConnectionCloses(host: TestHost) async throws {
        let attempts = [
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nX: a\nContent-Length: 4\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: x\r\nX: a\rContent-Length: 4\r\n\r\nabcd",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdXX0\r\n\r\n",
        ]
        try await withServer(host) { port, _ in
            for attempt in attempts {
                let client = try await Client(port: port)
                // A smuggled request follows: it must never be answered.
                try await client.send(attempt + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try await client.response()
                #expect(response.status == 400, "\(attempt)")
                #expect(try await client.isClosed(), "\(attempt)")
                #expect(!String(decoding: client.buffer, as: UTF8.self).contains("smuggled"))
            }
        }
    }

    @Test(arguments: TestHost.allCases)
    func aThrowingHandlerGets500AndTheServerGoesOn(host: TestHost) async throws {
        struct Boom: Error {}
        let handler: HTTPServer.Handler = { request, body, response in
            if request.path == "/throw" { throw Boom() }
            try await echoHandler(request, body, response)
        }
        let logs = LogRecorder()
        try await withServer(host, logs: logs, handler: handler) { port, _ in
            let client = try await Client(port: port)
            try await client.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try await client.response()
            #expect(response.status == 500)
            #expect(try await client.isClosed())
            let next = try await Client(port: port)
            try await next.send("GET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await next.response().status == 200)
        }
        #expect(logs.contains("answering 500"))
    }

    @Test(arguments: TestHost.allCases)
    func slowHeadAndIdleConnectionsTimeOut(host: TestHost) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.headReadTimeout = .milliseconds(300)
        configuration.keepAliveIdleTimeout = .milliseconds(300)
        let logs = LogRecorder()
        try await withServer(host, configuration: configuration, logs: logs) { port, server in
            let slow = try await Client(port: port)
            let start = ContinuousClock.now
            try await slow.send("GET / HT")
            #expect(try await slow.isClosed())
            #expect(ContinuousClock.now - start >= .milliseconds(300))
            let idle = try await Client(port: port)
            try await idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await idle.response().status == 200)
            #expect(try await idle.isClosed())
            try await eventually("no connections left") { server.connectionCount == 0 }
        }
        #expect(logs.contains("request head timeout"))
        #expect(logs.contains("keep-alive idle timeout"))
    }

    @Test(arguments: TestHost.allCases)
    func aClientThatDoesNotReadIsDroppedAtTheWriteStallTimeout(host: TestHost) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.writeStallTimeout = .milliseconds(300)
        let logs = LogRecorder()
        let handler: HTTPServer.Handler = { _, _, response in
            try await response.writeHead(HTTPResponse(status: .ok))
            let chunk = [UInt8](repeating: 120, count: 64 * 1024)
            while true { try await response.write(chunk) }  // until the write fails
        }
        try await withServer(host, configuration: configuration, logs: logs, handler: handler) { port, server in
            let client = try await Client(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            // Never reads. The kernel's buffers fill, the write stalls, the watchdog closes it.
            try await eventually("the connection is accepted") { server.connectionCount == 1 }
            try await eventually("the stalled connection is dropped", seconds: 30) { server.connectionCount == 0 }
        }
        #expect(logs.contains("write stall timeout"), "\(logs.messages.withLock { $0 })")
    }

    @Test(arguments: TestHost.allCases)
    func gracefulShutdownFinishesRequestsInFlightAndClosesIdleOnes(host: TestHost) async throws {
        let started = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        let handler: HTTPServer.Handler = { request, body, response in
            if request.path == "/slow" {
                started.store(true, ordering: .releasing)
                while !release.load(ordering: .acquiring) { try await Spindle.sleep(for: .milliseconds(2)) }
            }
            try await echoHandler(request, body, response)
        }
        let logs = LogRecorder()
        try await withServer(host, logs: logs, handler: handler) { port, server in
            let idle = try await Client(port: port)
            try await idle.send("GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await idle.response().status == 200)
            let busy = try await Client(port: port)
            try await busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            try await eventually("the slow request started") { started.load(ordering: .acquiring) }
            server.shutdown(gracePeriod: .seconds(30))
            #expect(try await idle.isClosed())  // closed at once
            release.store(true, ordering: .releasing)
            let response = try await busy.response()
            #expect(response.status == 200 && response.body == "GET /slow\n")
            #expect(response.field("connection") == "close")
            #expect(try await busy.isClosed())
            // Not accepting any more.
            do {
                let late = try await Client(port: port)
                try await late.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await late.isClosed())
            } catch {}
        }
        #expect(logs.contains("shutting down"))
    }

    @Test(arguments: TestHost.allCases)
    func shutdownDeadlineClosesRequestsThatDoNotFinish(host: TestHost) async throws {
        let started = Atomic<Bool>(false)
        let handler: HTTPServer.Handler = { _, _, _ in
            started.store(true, ordering: .releasing)
            while true { try await Spindle.sleep(for: .milliseconds(5)) }
        }
        let logs = LogRecorder()
        try await withServer(host, logs: logs, handler: handler) { port, server in
            let client = try await Client(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try await eventually("the request started") { started.load(ordering: .acquiring) }
            server.shutdown(gracePeriod: .milliseconds(200))
            #expect(try await client.isClosed())
        }
        #expect(logs.contains("shutdown deadline passed"))
    }

    @Test(arguments: TestHost.allCases)
    func connectionsBeyondTheLimitAreClosed(host: TestHost) async throws {
        var configuration = HTTPServer.Configuration()
        configuration.maxConnections = 2
        let logs = LogRecorder()
        try await withServer(host, configuration: configuration, logs: logs) { port, server in
            let first = try await Client(port: port)
            let second = try await Client(port: port)
            try await eventually("two connections") { server.connectionCount == 2 }
            let third = try await Client(port: port)
            #expect(try await third.isClosed())
            try await first.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await first.response().status == 200)
            _ = second
        }
        #expect(logs.contains("connection limit"))
    }

    @Test(arguments: TestHost.allCases)
    func servesUnixDomainSockets(host: TestHost) async throws {
        try await host.run {
            let server = HTTPServer(handler: echoHandler)
            let path = "/tmp/spindle-http-test-\(getpid())-\(host).sock"
            let listener = try UnixListener.bind(path: path)
            async let serving: Void = server.serve(listener)
            let stream = try await UnixStream.connect(path: path, timeout: .seconds(5))
            defer { stream.close() }
            try await stream.write(Array("GET /unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
            var received: [UInt8] = []
            while let bytes = try await withTimeout(.seconds(20), operation: { try await stream.read() }) { received += bytes }
            let text = String(decoding: received, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(text.hasSuffix("\r\n\r\nGET /unix\n"))
            server.shutdown()
            await serving
        }
    }

    /// Connections opened and dropped in every state leave no descriptor behind.
    /// SPINDLE_HTTP_CONNECTIONS sets the count (default 1,000; the bar is 10,000).
    @Test(arguments: TestHost.allCases)
    func connectionsOpenedAndDroppedLeakNoDescriptors(host: TestHost) async throws {
        let count = getenv("SPINDLE_HTTP_CONNECTIONS").flatMap { Int(String(cString: $0)) } ?? 1_000
        var configuration = HTTPServer.Configuration()
        configuration.headReadTimeout = .seconds(2)
        let (before, after) = try await withServer(host, configuration: configuration) { port, server in
            // Warm up (the runtime's rings, the listener) before the baseline.
            let warm = try await Client(port: port)
            try await warm.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            _ = try await warm.response()
            try await eventually("warm-up connection ended") { server.connectionCount == 0 }
            let before = fdCount()
            for batch in stride(from: 0, to: count, by: 50) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in batch..<min(batch + 50, count) {
                        group.addTask {
                            let stream = try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(10))
                            defer { stream.close() }
                            switch index % 4 {
                            case 0: break  // dropped at once
                            case 1: try await stream.write("GET / HTTP/1.1\r\nHo")  // mid-head
                            case 2:  // a full request, response unread
                                try await stream.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789")
                            default:  // mid-body
                                try await stream.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await eventually("all connections ended", seconds: 30) { server.connectionCount == 0 }
            try await eventually("descriptors back to \(before)", seconds: 10) { fdCount() <= before }
            return (before, fdCount())
        }
        #expect(after <= before)
    }
}
