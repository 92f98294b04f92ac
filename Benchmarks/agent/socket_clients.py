#!/usr/bin/env python3
"""Load on the agent's control socket: CLIENTS concurrent clients, each doing PAIRS begin+end
round trips (two HTTP/1.1 requests on one kept-alive connection); prints the latency of a
begin+end pair at p50/p90/p99/max. With --open N it begins N runs and leaves them open.
usage: socket_clients.py SOCKET [--clients 100] [--pairs 20] [--open N] [--prefix P]"""
import argparse, asyncio, json, statistics, time

async def request(reader, writer, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    payload = await reader.readexactly(length) if length else b""
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {payload[:200]!r}")
    return payload

async def client(socket, index, pairs, prefix, latencies):
    reader, writer = await asyncio.open_unix_connection(socket)
    for n in range(pairs):
        run = f"{prefix}-{index}-{n}"
        start = time.perf_counter()
        await request(reader, writer, "POST", "/v1/runs", {"run_id": run, "devices": [str(index % 8)]})
        await request(reader, writer, "POST", "/v1/runs/end", {"run_id": run, "deliver": False})
        latencies.append(time.perf_counter() - start)
    writer.close()

async def leave_open(socket, count, prefix):
    reader, writer = await asyncio.open_unix_connection(socket)
    for n in range(count):
        await request(reader, writer, "POST", "/v1/runs", {"run_id": f"{prefix}-open-{n}"})
    writer.close()

async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--open", type=int, default=0)
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args()
    if args.open:
        await leave_open(args.socket, args.open, args.prefix)
        print(f"{args.open} runs open")
        return
    latencies = []
    start = time.perf_counter()
    await asyncio.gather(*(client(args.socket, i, args.pairs, args.prefix, latencies) for i in range(args.clients)))
    wall = time.perf_counter() - start
    latencies.sort()
    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000
    print(f"{len(latencies)} begin+end pairs from {args.clients} concurrent clients in {wall:.2f} s: "
          f"p50 {pct(50):.2f} ms, p90 {pct(90):.2f} ms, p99 {pct(99):.2f} ms, max {latencies[-1] * 1000:.2f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.2f} ms")

asyncio.run(main())
