#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for delivery tests, on 127.0.0.1 only.

usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT FAULTS
FAULTS is a comma-separated script applied to successive POST requests, then everything is
forwarded: a status ("503", "429") answers it, with "raN" after it ("503ra1") also a Retry-After
of N seconds; "drop" closes the connection without an answer, "slow" waits 2 s then forwards, "stall" 60 s,
"ok" forwards; "502html" answers 502 with a proxy's multi-line HTML page. Prints "ready" when listening, and "POST N FAULT" as each POST arrives."""
import http.client
import http.server
import sys
import threading
import time

listen, upstream, script = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",") if sys.argv[3] else []
lock = threading.Lock()
count = {"n": 0}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(method, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        self.send_response(response.status)
        for k, v in response.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        with lock:
            n = count["n"]
            count["n"] += 1
            fault = script[n] if n < len(script) else "ok"
            sys.stdout.write("POST %d %s\n" % (n, fault))  # one line each (tests wait on them)
            sys.stdout.flush()
        if fault == "502html":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif fault[:3].isdigit():
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(int(fault[:3]))
            if fault[3:].startswith("ra"):
                self.send_header("Retry-After", fault[5:])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault == "drop":
            self.close_connection = True
            self.connection.close()
        else:
            if fault == "slow":
                time.sleep(2)
            elif fault == "stall":
                time.sleep(60)
            self.forward("POST")

    def do_GET(self):
        self.forward("GET")


server = http.server.ThreadingHTTPServer(("127.0.0.1", listen), Proxy)
print("ready", flush=True)
server.serve_forever()
