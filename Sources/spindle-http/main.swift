// An HTTP/1.1 server on SpindleHTTP: `GET /` answered with `Hello, World!`, other paths 404,
// other methods 405; keep-alive, pipelining, and SpindleHTTP's limits and timeouts (the
// W8 plaintext workload's route; docs/http.md).
//
//     swift run -c release spindle-http --port 8080 --workers 2     # or --event-loop
//     wrk -t1 -c64 -d10s http://127.0.0.1:8080/
//
// Stops cleanly on SIGINT or SIGTERM; SIGUSR1 prints the live tasks to standard error.

import ExampleSupport
import Glibc
import HTTPTypes
import Spindle
import SpindleHTTP

let hello = Array("Hello, World!".utf8)
let notFound = Array("Not Found".utf8)
let notAllowed = Array("Method Not Allowed".utf8)

let server = HTTPServer { request, _, response in
    var head = HTTPResponse(status: .ok)
    head.headerFields[.contentType] = "text/plain"
    if request.method != .get && request.method != .head {
        head.status = .methodNotAllowed
        try await response.respond(head, body: notAllowed)
    } else if request.path != "/" {
        head.status = .notFound
        try await response.respond(head, body: notFound)
    } else {
        try await response.respond(head, body: hello)
    }
}

let taskDump = TaskDumpSignal(SIGUSR1)
runServer(name: "spindle-http", defaultPort: 8080) { listener in
    taskDump.start()
    await server.serve(listener)
}
