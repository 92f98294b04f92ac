#!/usr/bin/env bash
# Writes scripts/node-order.txt: the functions of the agent's steady state (sampling, checkpoints,
# begin/end on kept-alive and fresh connections, status, list, show, the outbox, a Prometheus
# scrape), hottest first, as `perf record -g` sees them on any frame of a sampled stack.
# scripts/build-node.sh hands the file to the linker (lld --symbol-ordering-file): those functions
# then lie together at the start of .text, so the pages the agent runs on are few and the
# kernel's fault-around (64 KB around each fault) maps more of the same code rather than
# neighbours it never calls. Names that no longer exist are skipped by the linker, so a stale file
# costs pages, not correctness; run this again after changing what the agent does per request.
# usage: scripts/profile-node-order.sh   (root: perf and the agent's socket; needs perf, cc, curl)
set -euo pipefail
cd "$(dirname "$0")/.."
node=$(scripts/build-node.sh 2>/dev/null)
work=$(mktemp -d)
agent_pid=""
trap '[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; rm -rf "$work"' EXIT
source Benchmarks/lib/node-tree.sh
export FAKE_NVML_WATTS=250 EMIT_HOME=$work/home
socket=$work/agent.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cc -O2 -pthread -o "$work/socket_clients" Benchmarks/agent/socket_clients.c
# A 10 ms interval makes the sampling round and the checkpoint as hot as the requests.
"$node" agent --socket "$socket" --interval 10ms --metrics-listen "127.0.0.1:$port" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$socket" ] && "$node" agent status --socket "$socket" >/dev/null 2>&1 && break; sleep 0.1; done
perf record -e cpu-clock -F 10000 -g -p "$agent_pid" -o "$work/perf.data" -- sleep 40 >/dev/null 2>&1 &
perf_pid=$!
sleep 0.5
for round in $(seq 6); do
  "$work/socket_clients" "$socket" 100 20 0 "r$round" >/dev/null
  "$work/socket_clients" "$socket" 10 20 5 "p$round" >/dev/null
  python3 Benchmarks/agent/fresh_requests.py "$socket" "$port" 150
  "$node" agent status --socket "$socket" >/dev/null
  python3 Benchmarks/agent/open_runs.py "$socket" 20 "o$round" >/dev/null
done
wait "$perf_pid" || true
# Frames in the binary, by how often they were seen; C++ names (the Swift runtime) as perf
# demangles them are mapped back to their symbols.
perf script -i "$work/perf.data" 2>/dev/null | awk -v bin="$(readlink -f "$node")" 'index($0, "(" bin ")") { s = $2; sub(/\+0x[0-9a-f]+$/, "", s); print s }' \
  | sort | uniq -c | sort -rn | awk '{ $1 = ""; sub(/^ /, ""); print }' > "$work/frames.txt"
nm "$node" > "$work/nm.txt"; nm -C "$node" > "$work/nmc.txt"
python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
def names(path):
    return [line.rstrip("\n").split(" ", 2)[2] for line in open(path) if line.count(" ") >= 2]
mangled, demangled = names(f"{work}/nm.txt"), names(f"{work}/nmc.txt")
known, by_demangled = set(mangled), {}
for m, d in zip(mangled, demangled):
    if m != d:
        by_demangled.setdefault(d, m)
        by_demangled.setdefault(d.split("(")[0], m)
order, seen = [], set()
for frame in open(f"{work}/frames.txt"):
    frame = frame.strip()
    symbol = frame if frame in known else by_demangled.get(frame) or by_demangled.get(frame.split("(")[0])
    if symbol and symbol not in seen:
        seen.add(symbol)
        order.append(symbol)
open("scripts/node-order.txt", "w").write("\n".join(order) + "\n")
print(f"scripts/node-order.txt: {len(order)} functions")
PY
