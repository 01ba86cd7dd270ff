#!/usr/bin/env python3
"""Differential check of SpindleHTTP's request parser against h11 (pip install h11).

Generates valid requests and invalid variants (each variant named for the rule it breaks),
runs every one through h11 and through `spindle-http-parse` (SpindleHTTP's parser, one
verdict per line), and reports where they disagree, grouped by variant:

    swift build --product spindle-http-parse
    python3 Fuzz/differential.py [--count N] [--seed S] [--parser PATH]

A verdict is "ok" (with method, target, version, keep-alive and the decoded body), "error"
(with the status), or "incomplete". Exits 0; the report is the output (docs/http.md says which
side is right for each class of disagreement).
"""
import argparse
import random
import subprocess
import sys
from collections import defaultdict

import h11

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
VALUE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 ,;=/\"()<>@[]{}?:\t"


def token(rng, low=1, high=10):
    return "".join(rng.choice(TOKEN_CHARS) for _ in range(rng.randint(low, high)))


def value(rng):
    text = "".join(rng.choice(VALUE_CHARS) for _ in range(rng.randint(0, 20)))
    return text.strip(" \t")


def chunked(rng, body):
    out = b""
    i = 0
    while i < len(body):
        n = rng.randint(1, 7)
        piece = body[i:i + n]
        size = "%x" % len(piece)
        if rng.random() < 0.3:
            size = size.upper()
        ext = ";" + token(rng) + ("=" + token(rng) if rng.random() < 0.5 else "") if rng.random() < 0.2 else ""
        out += size.encode() + ext.encode() + b"\r\n" + piece + b"\r\n"
        i += n
    out += b"0\r\n"
    if rng.random() < 0.3:
        out += ("X-" + token(rng) + ": " + value(rng) + "\r\n").encode()
    return out + b"\r\n"


def valid_request(rng):
    """(head lines, body framing, body bytes) of a valid request."""
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", token(rng, 3, 7).upper()])
    if rng.random() < 0.15:
        target = "http://example.com/" + token(rng)
    else:
        target = "/" + "/".join(token(rng, 1, 5) for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.3:
            target += "?" + token(rng) + "=" + token(rng)
    version = "HTTP/1.1" if rng.random() < 0.85 else "HTTP/1.0"
    fields = []
    if version == "HTTP/1.1" or rng.random() < 0.5:
        fields.append(("Host", "example.com"))
    for _ in range(rng.randint(0, 5)):
        fields.append(("X-" + token(rng), value(rng)))
    if rng.random() < 0.2:
        fields.append(("Connection", rng.choice(["close", "keep-alive", "Keep-Alive", "upgrade"])))
    body = b""
    framing = "none"
    if method in ("POST", "PUT", "PATCH") or rng.random() < 0.1:
        body = bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(0, 30)))
        framing = "chunked" if version == "HTTP/1.1" and rng.random() < 0.5 else "length"
    rng.shuffle(fields)
    return method, target, version, fields, framing, body


def render(method, target, version, fields, framing, body, rng):
    head = f"{method} {target} {version}\r\n".encode()
    for name, val in fields:
        head += f"{name}: {val}\r\n".encode()
    if framing == "length":
        head += f"Content-Length: {len(body)}\r\n".encode()
        payload = body
    elif framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n"
        payload = chunked(rng, body)
    else:
        payload = b""
    return head + b"\r\n" + payload


def insert_field(data, line):
    i = data.index(b"\r\n") + 2
    return data[:i] + line + data[i:]


def with_body(data, headers, body):
    head = data[: data.index(b"\r\n\r\n") + 2]
    if b"Content-Length" in head or b"Transfer-Encoding" in head:
        head = b"\r\n".join(l for l in head.split(b"\r\n") if not l.startswith((b"Content-Length", b"Transfer-Encoding"))) + b""
    return head + headers + b"\r\n" + body


# Each mutation: name -> function(valid request bytes, rng) -> bytes.
MUTATIONS = {
    "bare-cr-in-value": lambda d, r: insert_field(d, b"X-A: a\rb\r\n"),
    "bare-lf-in-field-line": lambda d, r: insert_field(d, b"X-A: a\nX-B: b\r\n"),
    "bare-lf-line-ending": lambda d, r: d.replace(b"\r\n", b"\n", 1),
    "all-bare-lf": lambda d, r: d.replace(b"\r\n", b"\n"),
    "space-before-colon": lambda d, r: insert_field(d, b"X-A : b\r\n"),
    "tab-before-colon": lambda d, r: insert_field(d, b"X-A\t: b\r\n"),
    "obs-fold": lambda d, r: insert_field(d, b"X-A: a\r\n b\r\n"),
    "nul-in-value": lambda d, r: insert_field(d, b"X-A: a\x00b\r\n"),
    "control-in-value": lambda d, r: insert_field(d, b"X-A: a\x01b\r\n"),
    "del-in-value": lambda d, r: insert_field(d, b"X-A: a\x7fb\r\n"),
    "obs-text-in-value": lambda d, r: insert_field(d, b"X-A: caf\xe9\r\n"),
    "invalid-name-char": lambda d, r: insert_field(d, b"X(A): b\r\n"),
    "empty-name": lambda d, r: insert_field(d, b": b\r\n"),
    "no-colon": lambda d, r: insert_field(d, b"NoColon\r\n"),
    "duplicate-cl-same": lambda d, r: with_body(d, b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"),
    "duplicate-cl-differ": lambda d, r: with_body(d, b"Content-Length: 3\r\nContent-Length: 4\r\n", b"abcd"),
    "cl-list-same": lambda d, r: with_body(d, b"Content-Length: 3, 3\r\n", b"abc"),
    "cl-plus": lambda d, r: with_body(d, b"Content-Length: +3\r\n", b"abc"),
    "cl-negative": lambda d, r: with_body(d, b"Content-Length: -3\r\n", b"abc"),
    "cl-hex": lambda d, r: with_body(d, b"Content-Length: 0x3\r\n", b"abc"),
    "cl-spaces-inside": lambda d, r: with_body(d, b"Content-Length: 1 2\r\n", b"a" * 12),
    "cl-huge": lambda d, r: with_body(d, b"Content-Length: 99999999999999999999\r\n", b""),
    "te-and-cl": lambda d, r: with_body(d, b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-gzip-chunked": lambda d, r: with_body(d, b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"),
    "te-chunked-gzip": lambda d, r: with_body(d, b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"),
    "te-identity": lambda d, r: with_body(d, b"Transfer-Encoding: identity\r\n", b""),
    "te-chunked-twice": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-uppercase": lambda d, r: with_body(d, b"Transfer-Encoding: CHUNKED\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "te-empty-element": lambda d, r: with_body(d, b"Transfer-Encoding: , chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "te-http10": lambda d, r: with_body(d.replace(b"HTTP/1.1", b"HTTP/1.0", 1), b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "chunk-size-space": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"3 \r\nabc\r\n0\r\n\r\n"),
    "chunk-size-leading-space": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b" 3\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-plus": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"+3\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-0x": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"0x3\r\nabc\r\n0\r\n\r\n"),
    "chunk-ext-bws": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"3 ;a=b\r\nabc\r\n0\r\n\r\n"),
    "chunk-ext-quoted": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b'3;a="b c"\r\nabc\r\n0\r\n\r\n'),
    "chunk-data-no-crlf": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"3\r\nabcX\r\n0\r\n\r\n"),
    "chunk-data-bare-lf": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\n0\r\n\r\n"),
    "chunk-size-bare-lf": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"3\nabc\r\n0\r\n\r\n"),
    "trailer-bad-name": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"0\r\nX(A): b\r\n\r\n"),
    "trailer-obs-fold": lambda d, r: with_body(d, b"Transfer-Encoding: chunked\r\n", b"0\r\nX-A: b\r\n c\r\n\r\n"),
    "missing-host": lambda d, r: b"\r\n".join(l for l in d.split(b"\r\n") if not l.startswith(b"Host:")) if b"HTTP/1.1\r\n" in d[:200] else d,
    "duplicate-host": lambda d, r: insert_field(d, b"Host: other.example\r\n") if b"Host:" in d else insert_field(d, b"Host: a\r\nHost: b\r\n"),
    "host-with-slash": lambda d, r: d.replace(b"Host: example.com", b"Host: a/b") if b"Host:" in d else d,
    "version-2": lambda d, r: d.replace(b"HTTP/1.1\r\n", b"HTTP/2.0\r\n", 1).replace(b"HTTP/1.0\r\n", b"HTTP/2.0\r\n", 1),
    "version-1.2": lambda d, r: d.replace(b"HTTP/1.1\r\n", b"HTTP/1.2\r\n", 1),
    "version-lowercase": lambda d, r: d.replace(b"HTTP/1.", b"http/1.", 1),
    "version-two-digit": lambda d, r: d.replace(b"HTTP/1.1\r\n", b"HTTP/1.10\r\n", 1),
    "version-missing": lambda d, r: d.replace(b" HTTP/1.1\r\n", b"\r\n", 1).replace(b" HTTP/1.0\r\n", b"\r\n", 1),
    "double-space-request-line": lambda d, r: d.replace(b" ", b"  ", 1),
    "tab-request-line": lambda d, r: d.replace(b" ", b"\t", 1),
    "space-in-target": lambda d, r: d.replace(b" /", b" /a b", 1),
    "non-ascii-target": lambda d, r: d.replace(b" /", b" /caf\xe9", 1),
    "leading-crlf": lambda d, r: b"\r\n" + d,
    "leading-lf": lambda d, r: b"\n" + d,
    "whitespace-first-field": lambda d, r: d.replace(b"\r\n", b"\r\n X-A: b\r\n", 1),
    "expect-unknown": lambda d, r: insert_field(d, b"Expect: fancy\r\n"),
    "expect-continue": lambda d, r: with_body(d, b"Expect: 100-continue\r\nContent-Length: 2\r\n", b"ab"),
    "asterisk-get": lambda d, r: d.replace(b" /", b" *", 1) if d.startswith(b"GET /") else d,
    "lowercase-method": lambda d, r: d[:1].lower() + d[1:],
    "invalid-method": lambda d, r: b"G(T" + d[d.index(b" "):],
    "connection-close": lambda d, r: insert_field(d, b"Connection: close\r\n"),
    "http10-keep-alive": lambda d, r: insert_field(d.replace(b"HTTP/1.1", b"HTTP/1.0", 1), b"Connection: keep-alive\r\n"),
}


def h11_verdict(data):
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
    try:
        conn.receive_data(data)
        event = conn.next_event()
        if event is h11.NEED_DATA:
            return ("incomplete",)
        request = event
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return ("incomplete",)
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        keep_alive = 1 if h11._connection._keep_alive(request) else 0
        return ("ok", request.method.decode("latin-1"), request.target.decode("latin-1"),
                request.http_version.decode(), keep_alive, body.hex())
    except h11.RemoteProtocolError as error:
        return ("error", str(error.error_status_hint))


def spindle_verdicts(parser, requests):
    out = subprocess.run([parser], input="".join(r.hex() + "\n" for r in requests),
                         capture_output=True, text=True, check=True).stdout.splitlines()
    verdicts = []
    for line in out:
        parts = line.split(" ")
        if parts[0] == "ok":
            _, method, target, version, _framing, keep_alive, _count, body = parts
            verdicts.append(("ok", method, target, version, int(keep_alive), body))
        elif parts[0] == "error":
            verdicts.append(("error", parts[1], parts[2]))
        else:
            verdicts.append(("incomplete",))
    return verdicts


def same(ours, theirs):
    if ours[0] != theirs[0]:
        return False
    if ours[0] == "ok":
        return ours[1:] == theirs[1:]
    return True  # both refused (statuses compared separately) or both incomplete


def main():
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--count", type=int, default=3000, help="valid requests generated (each also mutated)")
    arguments.add_argument("--seed", type=int, default=1)
    arguments.add_argument("--parser", default=".build/debug/spindle-http-parse")
    options = arguments.parse_args()
    rng = random.Random(options.seed)
    cases = []  # (class, bytes)
    for _ in range(options.count):
        parts = valid_request(rng)
        data = render(*parts, rng)
        cases.append(("valid", data))
        name = rng.choice(list(MUTATIONS))
        mutated = MUTATIONS[name](data, rng)
        if mutated != data:
            cases.append((name, mutated))
    ours = spindle_verdicts(options.parser, [data for _, data in cases])
    totals = defaultdict(int)
    agree = defaultdict(int)
    status_differs = defaultdict(int)
    examples = {}
    for (kind, data), mine in zip(cases, ours):
        theirs = h11_verdict(data)
        totals[kind] += 1
        if same(mine, theirs):
            agree[kind] += 1
            if mine[0] == "error" and mine[1] != theirs[1]:
                status_differs[kind] += 1
                examples.setdefault(("status", kind), (data, mine, theirs))
        else:
            examples.setdefault(("verdict", kind), (data, mine, theirs))
    print(f"{'class':28} {'cases':>6} {'agree':>6} {'differ':>6}  status differs (both refuse)")
    for kind in sorted(totals, key=lambda k: (k != "valid", k)):
        print(f"{kind:28} {totals[kind]:6} {agree[kind]:6} {totals[kind] - agree[kind]:6}  {status_differs[kind]}")
    print(f"\ntotal {sum(totals.values())} cases, {sum(agree.values())} agree")
    print("\nfirst example of each disagreement (bytes / spindle / h11):")
    for (what, kind), (data, mine, theirs) in sorted(examples.items(), key=lambda item: item[0][1]):
        print(f"- {kind} ({what}): {data[:120]!r}\n    spindle: {' '.join(map(str, mine))[:120]}\n    h11:     {' '.join(map(str, theirs))[:120]}")


if __name__ == "__main__":
    main()
