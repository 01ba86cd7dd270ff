// Plain OS threads for workers and event loops. Swift has no thread type outside Foundation;
// this is the smallest wrapper over pthreads that lets a closure run on a named thread.

internal import CSpindle
import Glibc

struct OSThread: @unchecked Sendable {
    // @unchecked Sendable: pthread_t is an integer handle; joining is done once by the owner.
    let handle: pthread_t

    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts a thread running `body`. The name is truncated to 15 bytes by the kernel.
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(SpindleError) -> OSThread {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            start.name.withCString { spindle_set_thread_name($0) }
            start.body()
            return nil
        }, start)
        if result != 0 {
            Unmanaged<Start>.fromOpaque(start).release()
            throw SpindleError.threadCreationFailed(errno: result)
        }
        return OSThread(handle: handle)
    }

    func join() {
        pthread_join(handle, nil)
    }
}
