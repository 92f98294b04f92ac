#!/usr/bin/env python3
"""Every kind of request the agent serves, each on a connection of its own (as `emit agent
begin`/`end`/`status` and a Prometheus scrape make them), ROUNDS times.
usage: fresh_requests.py SOCKET METRICS_PORT ROUNDS"""
import socket, sys, http.client
path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def request(method, url, body=b""):
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    s.sendall(b"%s %s HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (method, url, len(body)) + body)
    while s.recv(65536): pass
    s.close()
for i in range(n):
    request(b"GET", b"/v1/health")
    request(b"POST", b"/v1/runs", b'{"run_id": "fresh-%d"}' % i)
    request(b"GET", b"/v1/runs")
    request(b"GET", b"/v1/runs/show?run_id=fresh-%d" % i)
    request(b"POST", b"/v1/runs/end", b'{"run_id": "fresh-%d", "deliver": %s}' % (i, b"true" if i % 2 else b"false"))
    c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/metrics"); c.getresponse().read(); c.close()
