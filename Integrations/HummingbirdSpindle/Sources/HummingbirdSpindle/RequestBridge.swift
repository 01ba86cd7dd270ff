// One request through a Hummingbird responder: the SpindleHTTP request head and body become
// a Hummingbird `Request`, the application's context is made from an
// `ApplicationRequestContextSource` (as Hummingbird's own server makes it), the responder
// (router and middleware) answers, and the `Response` goes out through SpindleHTTP's writer.
//
// What Hummingbird's `Application` does around its responder is done here too: a request id
// in the logger's metadata (`hb.request.id`, which `RequestContext.id` reads), errors the
// responder did not turn into a response (anything but `HTTPResponseError`) logged at debug
// and answered with an empty 500, and the configured `Server` header. `Date` is added by
// SpindleHTTP. One difference: SpindleHTTP's own body errors (malformed chunked framing, a
// body over `maxBodyBytes`) are rethrown, so the client gets their status (400, 413) instead
// of a 500, and the connection closes.
//
// The context's source needs a SwiftNIO `Channel`, which a Spindle connection is not: it gets
// a stand-in, one inert `NIOAsyncTestingChannel` per application (not connected, no
// addresses, never active; its event loop is a testing loop). `BasicRequestContext` and other
// contexts that keep only the logger never look at it.

import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SpindleHTTP

/// The body of a request that has none: one empty buffer shared by all of them.
private let emptyRequestBuffer = ByteBuffer()

struct RequestBridge<Responder: HTTPResponder>: Sendable
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let responder: Responder
    let logger: Logger
    let channel: any NIOCore.Channel
    let serverName: String?

    func respond(to head: HTTPRequest, body: HTTPRequestBody, writer: HTTPResponseWriter) async throws {
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        let request = Request(
            head: head,
            body: body.expectedLength == 0 ? RequestBody(buffer: emptyRequestBuffer) : RequestBody(asyncSequence: RequestBodyStream(body: body)))
        let context = Responder.Context(source: ApplicationRequestContextSource(channel: channel, logger: logger))
        var response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as HTTPServerError {
            throw error  // the request's own framing or size: SpindleHTTP answers with its status
        } catch {
            logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
            response = Response(status: .internalServerError, body: ResponseBody())
        }
        if let serverName { response.headers[.server] = serverName }
        try await writer.writeHead(response.head)
        try await response.body.write(ResponseBodyWriterAdapter(writer: writer))
    }
}
