#!/usr/bin/env bash
# What OTLP's flush would cost if its encoding were free, as encoding each event when it enters
# the outbox would make it: records as large as the real ones (the event's text and 390 bytes,
# 1,107 bytes in all for the benchmark's events) written by one copy, producers found by memmem,
# grouped by resource as always. Beside emit's protocol, in one run, twice.
#
# It applies precoded-lower-bound.patch to the working tree (an experiment, never shipped: with
# EMIT_SCRATCH_PRECODED set, OTLPRequestWriter copies instead of transcoding), builds, runs, and
# takes the patch back out on exit. Needs a clean Sources/EmitOTLP and rotel
# (bash Tests/Peers/peers.sh start otlp).
# usage: Benchmarks/otlp/lower-bound.sh [EVENTS=1000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
DATA=${BENCH_DATA:-bench-data}
mkdir -p "$DATA"
file="$DATA/mixed-$N.jsonl"
[ -f "$file" ] || python3 Benchmarks/validate/generate.py "$N" "$file"
patch=Benchmarks/otlp/precoded-lower-bound.patch
git apply --check "$patch"
git apply "$patch"
work=$(mktemp -d "${TMPDIR:-/tmp}/emit-otlp-lower-bound.XXXXXX")
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"; git apply -R "$patch"' EXIT
swift build -c release --product emit >/dev/null
EMIT=$(swift build -c release --show-bin-path)/emit
python=${EMIT_PEERS_STATE:-/tmp/emit-test-peers}/otlp/venv/bin/python3
[ -x "$python" ] || bash Tests/Peers/peers.sh start otlp >/dev/null
ROTEL=$("$python" -c "import rotel, os; print(os.path.dirname(rotel.__file__))")/rotel-agent
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }
EMIT_HOME="$work/template" "$EMIT" outbox add "$file" 2>/dev/null

# flush NAME ENV... COMMAND...: a fresh copy of the outbox, flushed and timed.
flush() {
  local name=$1; shift
  mkdir -p "$work/$name"; cp "$work/template/outbox.sqlite" "$work/$name/"
  local start end rss user sys
  start=$(date +%s.%N)
  /usr/bin/time -f "%M %U %S" -o "$work/$name.rss" env EMIT_HOME="$work/$name" "$@" 2>"$work/$name.log"
  end=$(date +%s.%N)
  read -r rss user sys < "$work/$name.rss"
  printf '%-26s %6.2f s  flush CPU %6.2f s (%.2f us/event)  (%s)\n' "$name" "$(echo "$end - $start" | bc)" "$(echo "$user + $sys" | bc)" \
    "$(echo "($user + $sys) * 1000000 / $N" | bc -l)" "$(tail -1 "$work/$name.log" | sed 's/emit outbox flush: //')"
}

echo bench-token > "$work/token"
http=$(port); grpc=$(port)
"$ROTEL" start --otlp-http-endpoint "127.0.0.1:$http" --otlp-grpc-endpoint "127.0.0.1:$grpc" --exporter blackhole >"$work/rotel.log" 2>&1 & echo $! > "$work/rotel.pid"
wait_port "$http"
for round in 1 2; do
  receive=$(port)
  rm -f "$work/received.sqlite"*
  "$EMIT" receive --listen "127.0.0.1:$receive" --db "$work/received.sqlite" --token-file "$work/token" 2>"$work/recv.log" & echo $! > "$work/recv.pid"
  wait_port "$receive"
  flush "emit -> emit receive ($round)" "$EMIT" outbox flush --to "http://127.0.0.1:$receive" --token-file "$work/token"
  flush "otlp, free encoding ($round)" EMIT_SCRATCH_PRECODED=1 "$EMIT" outbox flush --to "http://127.0.0.1:$http" --protocol otlp
  kill "$(cat "$work/recv.pid")"; rm "$work/recv.pid"
done
