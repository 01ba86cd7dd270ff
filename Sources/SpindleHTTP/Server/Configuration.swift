import Logging

extension HTTPServer {
    /// The limits and timeouts of a server. The defaults are safe for a server facing the
    /// internet; each is a bound on what one client can make the server hold or wait for.
    public struct Configuration: Sendable {
        /// The most bytes a request head may take, request line and fields together (431).
        public var maxHeadBytes = 16 * 1024
        /// The most header fields a request may have, and trailer fields a chunked body (431).
        public var maxHeaderCount = 100
        /// The longest request target (414).
        public var maxTargetLength = 8 * 1024
        /// The longest request body, declared or chunked (413).
        public var maxBodyBytes = 8 * 1024 * 1024
        /// How many requests of a connection may be answered before their responses are sent:
        /// pipelined requests beyond it wait until the earlier responses are written.
        public var maxPipelinedRequests = 16
        /// The most connections served at once; a connection accepted beyond it is closed
        /// at once (and logged).
        public var maxConnections = 4096
        /// How long a request head may take to arrive, from its first byte (or from the
        /// connection's start for the first request).
        public var headReadTimeout: Duration = .seconds(10)
        /// How long a read of the request body may wait for bytes.
        public var bodyIdleTimeout: Duration = .seconds(30)
        /// How long a connection may sit idle between requests.
        public var keepAliveIdleTimeout: Duration = .seconds(30)
        /// How long one write may wait for the client to take bytes (a client that does not
        /// read its responses).
        public var writeStallTimeout: Duration = .seconds(30)
        /// How many bytes of a request body the handler did not read are read and discarded
        /// to keep the connection; past it the connection is closed after the response.
        public var maxDiscardedBodyBytes = 64 * 1024

        /// The defaults given with each setting; change them by assigning the properties.
        public init() {}

        var parserLimits: RequestHeadParser.Limits {
            RequestHeadParser.Limits(
                maxHeadBytes: maxHeadBytes, maxFieldCount: maxHeaderCount, maxTargetLength: maxTargetLength,
                maxBodyBytes: maxBodyBytes)
        }

        /// How often the watchdog checks deadlines: a quarter of the shortest timeout, from 10 ms
        /// to 100 ms. A timeout fires between its duration and that plus this period.
        var watchdogPeriod: Duration {
            let shortest = min(headReadTimeout, bodyIdleTimeout, keepAliveIdleTimeout, writeStallTimeout)
            return min(max(shortest / 4, .milliseconds(10)), .milliseconds(100))
        }
    }
}
