// W9's load client, in C on epoll so that it runs on none of the runtimes it loads (the
// servers of Spindle, SwiftNIO, Tokio and Go alike): see echo_load.c.
#ifndef ECHO_LOAD_H
#define ECHO_LOAD_H

/// What one run of the client did.
typedef struct {
    /// Completed round trips, all connections together.
    long round_trips;
    /// From the first request to the last reply.
    double seconds;
    /// User plus system CPU seconds of this process over the same time.
    double cpu_seconds;
    /// Empty on success; otherwise why the run failed.
    char error[160];
} echo_load_report;

/// Opens `connections` TCP connections to 127.0.0.1:`port` (Nagle off), then on each does
/// `message_bytes`-byte request/response round trips, checking every reply, until `seconds`
/// have passed. Returns 0, or -1 with `report->error` set.
int echo_load_run(int port, int connections, int message_bytes, int seconds, echo_load_report *report);

#endif
