// A minimal HTTP/1.1 keep-alive server on Spindle (plaintext `GET /`).
//
//     swift run -c release spindle-http --port 8080 --workers 2     # or --event-loop
//     wrk -t1 -c64 -d10s http://127.0.0.1:8080/
//
// Stops cleanly on SIGINT or SIGTERM; SIGUSR1 prints the live tasks to standard error.

import ExampleSupport
import Glibc
import Spindle

let taskDump = TaskDumpSignal(SIGUSR1)
runServer(name: "spindle-http", defaultPort: 8080) { listener in
    taskDump.start()
    await acceptLoop(listener) { connection in
        await HTTPServer.serve(connection)
    }
}
