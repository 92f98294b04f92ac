#!/usr/bin/env bash
# Sampling cost and emit run's own footprint, on a 2-socket RAPL tree (packages + DRAM) in the
# real powercap layout plus 8 GPUs behind the stand-in libnvidia-ml.so.1 (whose getters read
# files, like sysfs). usage: Benchmarks/sampling/run.sh [ITERATIONS=20000] [RUN_SECONDS=60]
# With BASELINE=/path/to/another/checkout (e.g. a `git worktree` of an earlier commit), that
# checkout's sampling benchmark and node build run beside this one's, round for round.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20000}
SECS=${2:-60}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source Benchmarks/lib/node-tree.sh
# Busy boards: each counter read returns 1 J more than the last, as on a GPU at work. Unset for
# the stale case (a board whose counter holds still), where NVML reads power beside it.
export FAKE_NVML_ADVANCE_MJ=1000

swift build -c release --product emit >/dev/null
swift build -c release --product emit-sample-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
"$cc" -O2 -o "$work/raw_reads" Benchmarks/sampling/raw_reads.c
if [ -n "${BASELINE:-}" ]; then
  (cd "$BASELINE" && swift build -c release --product emit-sample-bench >/dev/null)
  base_bin=$(cd "$BASELINE" && swift build -c release --show-bin-path)
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
for round in 1 2 3; do
  echo "round $round, counters moving:"
  "$work/raw_reads" "$N" "${files[@]}"
  "$bin/emit-sample-bench" "$N"
  [ -n "${BASELINE:-}" ] && echo -n "baseline " && "$base_bin/emit-sample-bench" "$N"
  echo "round $round, GPU counters holding still (NVML reads power beside them):"
  "$work/raw_reads" "$N" "${files[@]}" "${power_files[@]}"
  FAKE_NVML_ADVANCE_MJ= "$bin/emit-sample-bench" "$N"
done

echo "emit run --interval 100ms -- sleep $SECS (4 RAPL zones + 8 GPUs sampled):"
/usr/bin/time -f "  user %U s, system %S s, wall %e s, peak RSS %M KiB" \
  "$bin/emit" run --run-id bench --interval 100ms --out "$work/events.jsonl" -- sleep "$SECS" 2>&1 | grep -E "user|event"

# The deployment build (scripts/build-node.sh): RAPL alone, then RAPL with the 8 GPUs.
node=$(scripts/build-node.sh 2>/dev/null)
[ -n "${BASELINE:-}" ] && base_node=$(cd "$BASELINE" && scripts/build-node.sh 2>/dev/null)
echo "node build (scripts/build-node.sh), emit run --interval 100ms -- sleep $SECS, 4 RAPL zones:"
EMIT_NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1 /usr/bin/time -f "  user %U s, system %S s, wall %e s, peak RSS %M KiB" \
  "$node" run --run-id bench --interval 100ms --out "$work/events-node.jsonl" -- sleep "$SECS" 2>&1 | grep -E "user|event"
echo "node build, the same with 4 RAPL zones + 8 GPUs:"
/usr/bin/time -f "  user %U s, system %S s, wall %e s, peak RSS %M KiB" \
  "$node" run --run-id bench --interval 100ms --out "$work/events-node.jsonl" -- sleep "$SECS" 2>&1 | grep -E "user|event"
if [ -n "${BASELINE:-}" ]; then
  for round in 1 2 3; do
    for build in "$node" "$base_node"; do
      echo "$( [ "$build" = "$node" ] && echo "this node build" || echo "baseline node build"), round $round, 4 RAPL zones + 8 GPUs, sleep $SECS:"
      /usr/bin/time -f "  user %U s, system %S s, wall %e s, peak RSS %M KiB" \
        "$build" run --run-id bench --interval 100ms --out "$work/events-node.jsonl" -- sleep "$SECS" 2>&1 | grep -E "user|event"
    done
  done
fi
