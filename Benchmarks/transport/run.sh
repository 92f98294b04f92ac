#!/usr/bin/env bash
# Outbox appends and end-to-end delivery, side by side in one run on this machine.
# usage: [BATCH=N] Benchmarks/transport/run.sh [EVENTS=1000000]   (BATCH: --batch for the flush; default emit's own)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
DATA=${BENCH_DATA:-bench-data}
mkdir -p "$DATA"
file="$DATA/mixed-$N.jsonl"
[ -f "$file" ] || python3 Benchmarks/validate/generate.py "$N" "$file"
swift build -c release --product emit >/dev/null
EMIT=$(swift build -c release --show-bin-path)/emit
work=$(mktemp -d "${TMPDIR:-/tmp}/emit-transport-bench.XXXXXX")
trap 'kill $(cat "$work/recv.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
# "peak RSS, CPU (user + system)" from a /usr/bin/time -f "%M %U %S" file
usage() { read -r rss user sys < "$1" && printf 'peak RSS %.1f MiB, CPU %.2f s' "$(echo "$rss / 1024" | bc -l)" "$(echo "$user + $sys" | bc -l)"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r); $N events, $(du -h "$file" | cut -f1)"

# 1. Durable appends: emit outbox add (validation pass + one-transaction insert pass, WAL, synchronous=FULL).
start=$(date +%s.%N)
/usr/bin/time -f "%M %U %S" -o "$work/add.rss" env EMIT_HOME="$work/node" "$EMIT" outbox add "$file" 2>"$work/add.log"
end=$(date +%s.%N)
printf 'outbox add:        %8.2f s  %10.0f events/s  %s  (%s)\n' "$(echo "$end - $start" | bc)" "$(echo "$N / ($end - $start)" | bc -l)" "$(usage "$work/add.rss")" "$(tail -1 "$work/add.log")"

# 2. End to end: flush the outbox to a receiver on loopback.
echo bench-token > "$work/token"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
( /usr/bin/time -f "%M %U %S" -o "$work/recv.rss" "$EMIT" receive --listen "127.0.0.1:$port" --db "$work/received.sqlite" --token-file "$work/token" 2>"$work/recv.log" & echo $! > "$work/recv.pid"; wait ) &
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
/usr/bin/time -f "%M %U %S" -o "$work/flush.rss" env EMIT_HOME="$work/node" "$EMIT" outbox flush --to "http://127.0.0.1:$port" --token-file "$work/token" ${BATCH:+--batch "$BATCH"} 2>"$work/flush.log"
end=$(date +%s.%N)
kill -INT "$(pgrep -P "$(cat "$work/recv.pid")" -f "emit receive" || cat "$work/recv.pid")" 2>/dev/null || true
sleep 2
stored=$(python3 -c "import sqlite3; c=sqlite3.connect('$work/received.sqlite'); print(c.execute('select count(*), count(distinct event_id) from events').fetchone())")
pending=$(EMIT_HOME="$work/node" "$EMIT" outbox status --json)
printf 'flush -> receive:  %8.2f s  %10.0f events/s  flush: %s; receiver: %s\n' "$(echo "$end - $start" | bc)" "$(echo "$N / ($end - $start)" | bc -l)" "$(usage "$work/flush.rss")" "$(usage "$work/recv.rss")"
echo "receiver store (rows, distinct ids): $stored; outbox: $pending"
tail -1 "$work/flush.log"
