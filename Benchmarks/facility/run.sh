#!/usr/bin/env bash
# CSV import of ROWS operator windows (100 meters, 1-minute windows) to JSON Lines, side by side
# with Miller converting the same file without any validation.
# usage: Benchmarks/facility/run.sh [ROWS=1000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
DATA=${BENCH_DATA:-bench-data}
mkdir -p "$DATA"
csv="$DATA/facility-$N.csv"
if [ ! -f "$csv" ]; then
  python3 - "$N" "$csv" <<'PY'
import datetime, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
with open(path, "w") as f:
    f.write("meter_id,valid_from,valid_to,energy_wh,provenance\n")
    for i in range(n):
        meter, minute = i % 100, i // 100
        a = start + datetime.timedelta(minutes=minute)
        b = a + datetime.timedelta(minutes=1)
        f.write(f"pdu-{meter:03d}/inlet-1,{a:%Y-%m-%dT%H:%M:%SZ},{b:%Y-%m-%dT%H:%M:%SZ},{rng.uniform(50, 400):.3f},measured\n")
PY
fi
command -v mlr >/dev/null || apt-get install -y -q miller >/dev/null
swift build -c release --product emit >/dev/null
EMIT=$(swift build -c release --show-bin-path)/emit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $N rows, $(du -h "$csv" | cut -f1); $(mlr --version)"
for round in 1 2; do
  /usr/bin/time -f "miller (mlr --icsv --ojsonl cat):  %e s  peak RSS %M KiB" mlr --icsv --ojsonl cat "$csv" > "$out/mlr.jsonl"
  rm -f "$out/emit.jsonl"
  /usr/bin/time -f "emit facility import (full contract): %e s  peak RSS %M KiB" "$EMIT" facility import --facility-id campus-1 --region eu-central \
    --source pdu --pue-applied false --out "$out/emit.jsonl" "$csv" 2>&1 | grep -v "^emit facility import:"
done
echo "events written: $(wc -l < "$out/emit.jsonl"); miller records: $(wc -l < "$out/mlr.jsonl")"
