#!/usr/bin/env bash
# Validation throughput, side by side in one run: `emit validate` (the full contract: ids,
# brands, cross-field rules) against the JSON Schema alone in python-jsonschema and jsonschema-rs.
# usage: Benchmarks/validate/run.sh [EVENTS=1000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
DATA=${BENCH_DATA:-bench-data}
mkdir -p "$DATA"
python3 -c "import jsonschema, jsonschema_rs" 2>/dev/null || pip install -q jsonschema jsonschema-rs
swift build -c release --product emit >/dev/null
EMIT=$(swift build -c release --show-bin-path)/emit
SCHEMA=schema/emit-energy-event-v1.schema.json
file="$DATA/mixed-$N.jsonl"
small="$DATA/mixed-$((N / 10)).jsonl"
[ -f "$file" ] || python3 Benchmarks/validate/generate.py "$N" "$file"
[ -f "$small" ] || python3 Benchmarks/validate/generate.py "$((N / 10))" "$small"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "file: $file ($N events, $(du -h "$file" | cut -f1))"
measure() { # label, events, command...
  local label=$1 events=$2; shift 2
  local out; out=$( { /usr/bin/time -f '%e %M' "$@" >/tmp/bench-validate.out; } 2>&1 | tail -1)
  local secs=${out% *} kb=${out#* }
  printf '%-28s %10s events  %8.2f s  %12.0f events/s  peak RSS %7.1f MiB  (%s)\n' \
    "$label" "$events" "$secs" "$(echo "$events / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)" "$(tail -1 /tmp/bench-validate.out)"
}
measure "emit validate" "$N" "$EMIT" validate "$file"
measure "emit validate (1/10 file)" "$((N / 10))" "$EMIT" validate "$small"
measure "jsonschema-rs (schema only)" "$N" python3 Benchmarks/validate/schema_validate.py jsonschema-rs "$SCHEMA" "$file"
measure "python jsonschema (schema)" "$N" python3 Benchmarks/validate/schema_validate.py jsonschema "$SCHEMA" "$file"
