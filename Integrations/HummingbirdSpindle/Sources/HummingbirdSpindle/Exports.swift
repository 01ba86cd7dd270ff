// What an application started by `SpindleApplication` needs besides Hummingbird: Spindle's
// `Runtime` (and `SpindleEventLoop`, `SpindleSocketAddress`) and SpindleHTTP's `HTTPServer.Configuration`.
@_exported import Spindle
@_exported import SpindleHTTP
