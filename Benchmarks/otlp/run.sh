#!/usr/bin/env bash
# OTLP delivery beside emit's own protocol, in one run: the same outbox (the mixed events of the
# transport benchmark) flushed four times, to `emit receive`, and as OTLP/HTTP logs in protobuf,
# in JSON and in gzipped protobuf to a real collector (rotel, exporting to its blackhole: it
# parses every record). Then the encoding alone (emit-otlp-bench), beside the emit protocol's
# request body, over the first 100,000 events: no network, no outbox, no collector.
# usage: Benchmarks/otlp/run.sh [EVENTS=1000000]   (needs rotel: bash Tests/Peers/peers.sh start otlp)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
DATA=${BENCH_DATA:-bench-data}
mkdir -p "$DATA"
file="$DATA/mixed-$N.jsonl"
[ -f "$file" ] || python3 Benchmarks/validate/generate.py "$N" "$file"
swift build -c release --product emit >/dev/null
swift build -c release --product emit-otlp-bench >/dev/null
EMIT=$(swift build -c release --show-bin-path)/emit
python=${EMIT_PEERS_STATE:-/tmp/emit-test-peers}/otlp/venv/bin/python3
[ -x "$python" ] || bash Tests/Peers/peers.sh start otlp >/dev/null
ROTEL=$("$python" -c "import rotel, os; print(os.path.dirname(rotel.__file__))")/rotel-agent
work=$(mktemp -d "${TMPDIR:-/tmp}/emit-otlp-bench.XXXXXX")
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
usage() { read -r rss user sys < "$1" && printf 'peak RSS %6.1f MiB, CPU %6.2f s (%.2f us/event)' "$(echo "$rss / 1024" | bc -l)" "$(echo "$user + $sys" | bc -l)" "$(echo "($user + $sys) * 1000000 / $N" | bc -l)"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r); $N events, $(du -h "$file" | cut -f1); $("$ROTEL" --version)"
EMIT_HOME="$work/template" "$EMIT" outbox add "$file" 2>/dev/null

# flush NAME DESTINATION-ARGS...: a fresh copy of the outbox, flushed and timed.
flush() {
  local name=$1; shift
  mkdir -p "$work/$name"
  cp "$work/template/outbox.sqlite" "$work/$name/"
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M %U %S" -o "$work/$name.rss" env EMIT_HOME="$work/$name" "$EMIT" outbox flush "$@" 2>"$work/$name.log"
  end=$(date +%s.%N)
  printf '%-26s %7.2f s %9.0f events/s  flush: %s  (%s)\n' "$name" "$(echo "$end - $start" | bc)" "$(echo "$N / ($end - $start)" | bc -l)" \
    "$(usage "$work/$name.rss")" "$(tail -1 "$work/$name.log" | sed 's/emit outbox flush: //')"
}

echo bench-token > "$work/token"
receive=$(port)
"$EMIT" receive --listen "127.0.0.1:$receive" --db "$work/received.sqlite" --token-file "$work/token" 2>"$work/recv.log" & echo $! > "$work/recv.pid"
http=$(port); grpc=$(port)
"$ROTEL" start --otlp-http-endpoint "127.0.0.1:$http" --otlp-grpc-endpoint "127.0.0.1:$grpc" --exporter blackhole >"$work/rotel.log" 2>&1 & echo $! > "$work/rotel.pid"
wait_port "$receive"; wait_port "$http"
flush "emit -> emit receive" --to "http://127.0.0.1:$receive" --token-file "$work/token"
flush "otlp protobuf -> rotel" --to "http://127.0.0.1:$http" --protocol otlp
flush "otlp json -> rotel" --to "http://127.0.0.1:$http" --protocol otlp --otlp-encoding json
flush "otlp protobuf gzip -> rotel" --to "http://127.0.0.1:$http" --protocol otlp --gzip
ps -o rss=,cputime= -p "$(cat "$work/rotel.pid")" | awk '{printf "rotel after all four: RSS %.1f MiB, CPU %s\n", $1/1024, $2}'
head -n 100000 "$file" > "$work/encode.jsonl"
echo "the encoding alone, CPU per event (best of 5 rounds over $(wc -l < "$work/encode.jsonl") events, batches of 5000):"
JSON=1 "$(swift build -c release --show-bin-path)/emit-otlp-bench" "$work/encode.jsonl" 5
