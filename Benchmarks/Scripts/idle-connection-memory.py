#!/usr/bin/env python3
"""Memory per idle keep-alive HTTP connection (issue 14's bar "memory per idle keep-alive
connection reported"): starts a server command, opens N connections that each make one
keep-alive request and then stay idle, and reports the server's resident and anonymous memory
growth per connection (/proc/PID/status VmRSS, RssAnon), before and after.

usage: idle-connection-memory.py N PORT CMD...   (CMD is run with PORT substituted)
"""
import os, socket, subprocess, sys, time

n, port, cmd = int(sys.argv[1]), int(sys.argv[2]), [a.replace("PORT", sys.argv[2]) for a in sys.argv[3:]]
server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    def memory():
        fields = {}
        with open(f"/proc/{server.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    fields[key] = int(value.split()[0])
        return fields
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    def open_connections(count):
        held = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise SystemExit("server closed a keep-alive connection")
                data += chunk
            held.append(s)
        return held
    warm = open_connections(100)  # let the first buffers and threads come into being
    for s in warm:
        s.close()
    time.sleep(0.5)
    before = memory()
    held = open_connections(n)
    time.sleep(0.5)
    after = memory()
    for key in ("VmRSS", "RssAnon"):
        grown = after[key] - before[key]
        print(f"{key}: {before[key]} kB -> {after[key]} kB with {n} idle connections: {grown * 1024 / n:.0f} bytes per connection")
    for s in held:
        s.close()
finally:
    server.terminate()
    server.wait()
