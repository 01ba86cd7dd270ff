#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import HummingbirdSpindle
import Spindle
import Testing

/// A Hummingbird application served by SpindleHTTP, over real sockets on 127.0.0.1.
@Suite(.serialized) struct ApplicationTests {
    @Test(arguments: TestHost.allCases)
    func parameterisedRoutesAndMiddleware(host: TestHost) async throws {
        try await withApplication(host) { port, test, _ in
            let client = try await Client(port: port)
            let hello = try await client.request("GET", "/hello/Ada")
            #expect(hello.status == 200)
            #expect(hello.body == "Hello, Ada!")
            #expect(hello.field("content-type") == "text/plain; charset=utf-8")
            #expect(hello.field("x-middleware") == "seen")
            #expect(hello.field("server") == "spindle-test")
            #expect(hello.field("date")?.hasSuffix(" GMT") == true)
            // The middleware refuses; the same keep-alive connection goes on.
            let blocked = try await client.request("GET", "/hello/Bob", fields: ["X-Block: 1"])
            #expect(blocked.status == 403)
            #expect(blocked.field("x-middleware") == nil)
            #expect(try await client.request("GET", "/hello/Bob").body == "Hello, Bob!")
            #expect(test.middlewareCalls.load(ordering: .relaxed) == 3)
        }
    }

    @Test(arguments: TestHost.allCases)
    func jsonInAndOut(host: TestHost) async throws {
        try await withApplication(host) { port, _, _ in
            let client = try await Client(port: port)
            let fetched = try await client.request("GET", "/users/1")
            #expect(fetched.status == 200)
            #expect(fetched.field("content-type") == "application/json; charset=utf-8")
            #expect(try JSONDecoder().decode(User.self, from: Data(fetched.body.utf8)) == User(id: 1, name: "Ada"))
            let created = try await client.request(
                "POST", "/users", body: #"{"id": 0, "name": "Grace"}"#, fields: ["Content-Type: application/json"])
            #expect(created.status == 201)
            #expect(try JSONDecoder().decode(User.self, from: Data(created.body.utf8)) == User(id: 42, name: "Grace"))
            let malformed = try await client.request(
                "POST", "/users", body: #"{"id": "#, fields: ["Content-Type: application/json"])
            #expect(malformed.status == 400)
        }
    }

    @Test func thrownErrorsMapToStatusCodes() async throws {
        try await withApplication { port, _, _ in
            let client = try await Client(port: port)
            let missing = try await client.request("GET", "/users/7")
            #expect(missing.status == 404)
            #expect(missing.body.contains("no user 7"))
            #expect(try await client.request("GET", "/no/such/route").status == 404)
            #expect(try await client.request("GET", "/teapot").status == 418)
            let failed = try await client.request("GET", "/fail")
            #expect(failed.status == 500)
            #expect(failed.body.isEmpty)
            #expect(try await client.request("GET", "/users/abc").status == 400)  // not an Int
            // Still serving on the same connection.
            #expect(try await client.request("GET", "/hello/again").body == "Hello, again!")
        }
    }

    @Test(arguments: TestHost.allCases)
    func streamedRequestBody(host: TestHost) async throws {
        try await withApplication(host) { port, _, _ in
            let client = try await Client(port: port)
            let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let sum = bytes.reduce(0) { ($0 &+ Int($1)) % 65_521 }
            // Chunked, in 64 pieces.
            try await client.send("POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in stride(from: 0, to: bytes.count, by: bytes.count / 64) {
                let piece = bytes[start..<min(start + bytes.count / 64, bytes.count)]
                try await client.send(Array(String(piece.count, radix: 16).utf8) + [13, 10] + piece + [13, 10])
            }
            try await client.send("0\r\n\r\n")
            let chunked = try await client.response()
            #expect(chunked.status == 200)
            #expect(chunked.body == "bytes=300000 sum=\(sum) pieces>1=true")
            // Content-Length.
            try await client.send("POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: \(bytes.count)\r\n\r\n")
            try await client.send(bytes)
            #expect(try await client.response().body == "bytes=300000 sum=\(sum) pieces>1=true")
        }
    }

    @Test func requestBodyStreamedBackAsTheResponse() async throws {
        try await withApplication { port, _, _ in
            let client = try await Client(port: port)
            let text = String(repeating: "0123456789abcdef", count: 12_500)  // 200 KB
            let echoed = try await client.request("POST", "/echo", body: text)
            #expect(echoed.status == 200)
            #expect(echoed.field("transfer-encoding") == "chunked")
            #expect(echoed.body == text)
        }
    }

    @Test(arguments: TestHost.allCases)
    func streamedResponseWithTrailers(host: TestHost) async throws {
        try await withApplication(host) { port, _, _ in
            let client = try await Client(port: port)
            let response = try await client.request("GET", "/stream/2000")
            #expect(response.status == 200)
            #expect(response.field("transfer-encoding") == "chunked")
            #expect(response.body == (0..<2000).map { "line \($0)\n" }.joined())
            #expect(response.chunks == 2000)
            #expect(response.trailer("x-lines") == "2000")
        }
    }

    @Test func spindleBodyErrorsKeepTheirStatus() async throws {
        var http = HTTPServer.Configuration()
        http.maxBodyBytes = 1024 * 1024
        try await withApplication(http: http) { port, _, _ in
            // A chunk larger than the limit is refused when its size line arrives, while the
            // route is reading the body: the client gets SpindleHTTP's 413, not a 500.
            let client = try await Client(port: port)
            try await client.send("POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n")
            let refused = try await client.response()
            #expect(refused.status == 413)
            #expect(try await client.isClosed())
        }
    }

    @Test func gracefulStopFinishesTheRequestInFlight() async throws {
        try await withApplication { port, test, group in
            let idle = try await Client(port: port)
            #expect(try await idle.request("GET", "/hello/idle").status == 200)
            let busy = try await Client(port: port)
            try await busy.send("GET /wait HTTP/1.1\r\nHost: test\r\n\r\n")
            try await eventually("the request reaches its route") { test.gate.arrived == 1 }
            await group.triggerGracefulShutdown()
            // The idle keep-alive connection is closed at once (shutdown closed the listener
            // before it), and no new connection is accepted.
            #expect(try await idle.isClosed())
            await #expect(throws: SpindleIOError.self) {
                try await TCPStream.connect(host: "127.0.0.1", port: port, timeout: .seconds(5)).close()
            }
            // The request in flight completes, and its connection closes after it.
            test.gate.open()
            let response = try await busy.response()
            #expect(response.status == 200)
            #expect(response.body == "waited")
            #expect(response.field("connection") == "close")
            #expect(try await busy.isClosed())
        }
    }
}
