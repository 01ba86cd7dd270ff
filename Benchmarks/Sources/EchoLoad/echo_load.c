// W9's load: `connections` TCP connections to the echo server, each doing request/response
// round trips of `message_bytes` bytes (write the message, read until as many bytes are back,
// compare) until the time is up. One thread and one level-triggered epoll drive every
// connection, with plain non-blocking send/recv: the client runs on no runtime under test,
// so a change in Spindle (or SwiftNIO, Tokio, Go) cannot speed it up or slow it down, and its
// cost per round trip (a send, a recv and a share of an epoll_wait) is the same whichever
// server it loads. Connections are all opened before the clock starts; a connection sends
// its next request only while the deadline has not passed, and the time runs to the last
// reply.
#define _GNU_SOURCE
#include "echo_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int received;
    long trips;
    unsigned char *message;
    unsigned char *reply;
} connection;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6
        + (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

static int fail(echo_load_report *report, const char *what, int index) {
    snprintf(report->error, sizeof report->error, "W9 client: connection %d: %s (errno %d: %s)",
             index, what, errno, strerror(errno));
    return -1;
}

/// Sends the whole message (a 64-byte write into an idle socket is never partial; a partial
/// one is an error rather than a case to resume).
static int send_message(connection *c, int bytes) {
    c->message[1] = (unsigned char)c->trips;
    return send(c->fd, c->message, (size_t)bytes, MSG_NOSIGNAL) == bytes ? 0 : -1;
}

int echo_load_run(int port, int connections, int message_bytes, int seconds, echo_load_report *report) {
    memset(report, 0, sizeof *report);
    if (connections < 1 || message_bytes < 2 || seconds < 1) {
        snprintf(report->error, sizeof report->error, "W9 client: bad arguments");
        return -1;
    }
    int result = -1;
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    connection *all = calloc((size_t)connections, sizeof *all);
    unsigned char *buffers = calloc((size_t)connections * 2, (size_t)message_bytes);
    struct epoll_event *events = calloc((size_t)connections, sizeof *events);
    if (epoll < 0 || !all || !buffers || !events) { fail(report, "setup", -1); goto done; }
    for (int i = 0; i < connections; i++) all[i].fd = -1;

    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < connections; i++) {
        connection *c = &all[i];
        c->message = buffers + (size_t)i * 2 * (size_t)message_bytes;
        c->reply = c->message + message_bytes;
        memset(c->message, i & 0xff, (size_t)message_bytes);
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) { fail(report, "socket", i); goto done; }
        if (connect(c->fd, (struct sockaddr *)&address, sizeof address) != 0) { fail(report, "connect", i); goto done; }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event interest = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, c->fd, &interest) != 0) { fail(report, "epoll_ctl", i); goto done; }
    }

    double start = now_seconds();
    double cpu_at_start = cpu_seconds();
    double deadline = start + seconds;
    int active = connections;
    for (int i = 0; i < connections; i++) {
        if (send_message(&all[i], message_bytes) != 0) { fail(report, "send", i); goto done; }
    }
    while (active > 0) {
        int ready = epoll_wait(epoll, events, connections, 1000);
        if (ready < 0) {
            if (errno == EINTR) continue;
            fail(report, "epoll_wait", -1);
            goto done;
        }
        if (ready == 0 && now_seconds() > deadline + 10) {
            errno = ETIMEDOUT;
            fail(report, "no reply for 10 s past the deadline", -1);
            goto done;
        }
        double now = ready > 0 ? now_seconds() : 0;
        for (int e = 0; e < ready; e++) {
            int i = (int)events[e].data.u32;
            connection *c = &all[i];
            ssize_t count = recv(c->fd, c->reply + c->received, (size_t)(message_bytes - c->received), 0);
            if (count < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (count <= 0) {
                if (count == 0) errno = ECONNRESET;
                fail(report, "recv (the server closed or reset the connection)", i);
                goto done;
            }
            c->received += (int)count;
            if (c->received < message_bytes) continue;
            c->received = 0;
            if (memcmp(c->reply, c->message, (size_t)message_bytes) != 0) {
                errno = EPROTO;
                fail(report, "got back different bytes", i);
                goto done;
            }
            c->trips++;
            if (now < deadline) {
                if (send_message(c, message_bytes) != 0) { fail(report, "send", i); goto done; }
            } else {
                epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, NULL);
                active--;
            }
        }
    }
    report->seconds = now_seconds() - start;
    report->cpu_seconds = cpu_seconds() - cpu_at_start;
    for (int i = 0; i < connections; i++) report->round_trips += all[i].trips;
    result = 0;

done:
    if (all) {
        for (int i = 0; i < connections; i++) if (all[i].fd >= 0) close(all[i].fd);
    }
    if (epoll >= 0) close(epoll);
    free(events);
    free(buffers);
    free(all);
    return result;
}
