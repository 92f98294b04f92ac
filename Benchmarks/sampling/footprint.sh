#!/usr/bin/env bash
# emit run's footprint, builds side by side: each binary given (node builds from
# scripts/build-node.sh, e.g. of this tree and of a `git worktree` of an earlier commit) runs
# `emit run --interval 100ms -- sleep SECS` on the sampling benchmark's tree (2-socket RAPL + 8
# stand-in GPUs whose counters move at every read), three rounds, the builds alternating.
# usage: SECS=20 Benchmarks/sampling/footprint.sh BINARY...
set -euo pipefail
SECS=${SECS:-20}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$(dirname "$0")/../.."
source Benchmarks/lib/node-tree.sh
export FAKE_NVML_ADVANCE_MJ=1000
for round in 1 2 3; do
  for build in "$@"; do
    /usr/bin/time -f "$build round $round: user %U s, system %S s, peak RSS %M KiB" "$build" run --run-id bench --interval 100ms --out "$work/e.jsonl" -- sleep "$SECS" 2>&1 | grep "peak RSS"
  done
done
