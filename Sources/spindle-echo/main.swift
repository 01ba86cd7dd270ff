// An echo server on Spindle: every byte a client sends comes back.
//
//     swift run -c release spindle-echo --port 7000 --workers 2     # or --event-loop
//
// Stops cleanly on SIGINT or SIGTERM.

import ExampleSupport
import Spindle

runServer(name: "spindle-echo", defaultPort: 7000) { listener in
    await acceptLoop(listener) { connection in
        try? connection.setNoDelay()
        while let bytes = try? await connection.read() {
            do { try await connection.write(bytes) } catch { return }
        }
    }
}
