import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Spindle
import Synchronization

/// A user, as the JSON routes send and receive it.
struct User: ResponseCodable, Equatable {
    var id: Int
    var name: String
}

/// A small but real Hummingbird application: parameterised routes, JSON in and out, a
/// middleware, a streamed request body, a streamed response, errors mapped to statuses, and
/// a route that waits (for the graceful-stop test).
final class TestApplication: Sendable {
    let gate = Gate()
    let middlewareCalls = Atomic<Int>(0)

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: TagMiddleware(calls: self))
        router.get("hello/:name") { _, context in
            "Hello, \(try context.parameters.require("name"))!"
        }
        router.get("users/:id") { _, context -> User in
            let id = try context.parameters.require("id", as: Int.self)
            guard id == 1 else { throw HTTPError(.notFound, message: "no user \(id)") }
            return User(id: 1, name: "Ada")
        }
        router.post("users") { request, context -> EditedResponse<User> in
            var user = try await request.decode(as: User.self, context: context)
            user.id = 42
            return EditedResponse(status: .created, response: user)
        }
        router.post("upload") { request, _ -> String in
            var count = 0
            var sum = 0
            var pieces = 0
            for try await buffer in request.body {
                pieces += 1
                count += buffer.readableBytes
                sum = buffer.readableBytesView.reduce(sum) { ($0 &+ Int($1)) % 65_521 }
            }
            return "bytes=\(count) sum=\(sum) pieces>1=\(pieces > 1)"
        }
        router.post("echo") { request, _ -> Response in
            Response(status: .ok, body: ResponseBody(asyncSequence: request.body))
        }
        router.get("stream/:count") { _, context -> Response in
            let count = try context.parameters.require("count", as: Int.self)
            return Response(
                status: .ok,
                body: ResponseBody { writer in
                    for index in 0..<count {
                        try await writer.write(ByteBuffer(string: "line \(index)\n"))
                        await Task.yield()
                    }
                    var trailers = HTTPFields()
                    trailers[HTTPField.Name("X-Lines")!] = String(count)
                    try await writer.finish(trailers)
                })
        }
        router.get("fail") { _, _ -> String in throw Unexpected() }
        router.get("teapot") { _, _ -> String in throw HTTPError(.init(code: 418, reasonPhrase: "I'm a teapot")) }
        let gate = gate
        router.get("wait") { _, _ -> String in
            await gate.wait()
            return "waited"
        }
        return router
    }

    func callMiddleware() { middlewareCalls.add(1, ordering: .relaxed) }

    struct Unexpected: Error {}
}

/// Adds `X-Middleware: seen` to every response and refuses requests carrying `X-Block`.
struct TagMiddleware<Context: RequestContext>: RouterMiddleware {
    let calls: TestApplication

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        calls.callMiddleware()
        if request.headers[HTTPField.Name("X-Block")!] != nil { throw HTTPError(.forbidden) }
        var response = try await next(request, context)
        response.headers[HTTPField.Name("X-Middleware")!] = "seen"
        return response
    }
}

/// A gate the `wait` route waits at: records arrivals, opens once.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, arrived: Int, waiters: [CheckedContinuation<Void, Never>])>((false, 0, []))

    var arrived: Int { state.withLock { $0.arrived } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state in
                state.arrived += 1
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
