// An echo server on Spindle: every byte a client sends comes back.
//
//     swift run -c release spindle-echo --port 7000 --workers 2     # or --event-loop
//
// Stops cleanly on SIGINT or SIGTERM; SIGUSR1 prints the live tasks to standard error.

import ExampleSupport
import Glibc
import Spindle

let taskDump = TaskDumpSignal(SIGUSR1)
runServer(name: "spindle-echo", defaultPort: 7000) { listener in
    taskDump.start()
    await acceptLoop(listener) { connection in
        try? connection.setNoDelay()
        var buffer: [UInt8] = []  // reused by every read: no allocation per message
        do {
            while try await connection.read(into: &buffer) > 0 {
                try await connection.write(buffer)
            }
        } catch {
            return
        }
    }
}
