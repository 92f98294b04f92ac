#!/usr/bin/env python3
"""Begins COUNT runs on the agent's control socket and leaves them open (the load itself comes
from socket_clients.c). usage: open_runs.py SOCKET COUNT PREFIX"""
import json, socket, sys

path, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
connection = socket.socket(socket.AF_UNIX)
connection.connect(path)
stream = connection.makefile("rb")
for n in range(count):
    body = json.dumps({"run_id": f"{prefix}-open-{n}"}).encode()
    connection.sendall(b"POST /v1/runs HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    status = int(stream.readline().split(b" ", 2)[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    answer = stream.read(length)
    if status != 201:
        sys.exit(f"begin {prefix}-open-{n}: {status} {answer[:200]!r}")
print(f"{count} runs open")
