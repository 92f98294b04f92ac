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
cc=$(command -v cc || command -v clang)
root=$work/sys/class/powercap; devs=$work/sys/devices/virtual/powercap/intel-rapl; mkdir -p "$root"
for p in 0 1; do
  mkdir -p "$devs/intel-rapl:$p/intel-rapl:$p:0"
  echo "package-$p" > "$devs/intel-rapl:$p/name"; echo 123456789 > "$devs/intel-rapl:$p/energy_uj"; echo 262143328850 > "$devs/intel-rapl:$p/max_energy_range_uj"
  echo dram > "$devs/intel-rapl:$p/intel-rapl:$p:0/name"; echo 2345678 > "$devs/intel-rapl:$p/intel-rapl:$p:0/energy_uj"; echo 65712999613 > "$devs/intel-rapl:$p/intel-rapl:$p:0/max_energy_range_uj"
  ln -s "../../devices/virtual/powercap/intel-rapl/intel-rapl:$p" "$root/intel-rapl:$p"; ln -s "../../devices/virtual/powercap/intel-rapl/intel-rapl:$p/intel-rapl:$p:0" "$root/intel-rapl:$p:0"
done
nvml=$work/nvml; mkdir -p "$nvml/lib"; "$cc" -shared -fPIC -O2 -o "$nvml/lib/libnvidia-ml.so.1" Tests/EmitMetersTests/Fixtures/fake_nvml.c; echo 8 > "$nvml/count"
for g in 0 1 2 3 4 5 6 7; do mkdir -p "$nvml/gpu$g"; echo "GPU-0000000$g-aaaa-bbbb-cccc-dddddddddddd" > "$nvml/gpu$g/uuid"; echo "Bench GPU" > "$nvml/gpu$g/name"; echo 987654321 > "$nvml/gpu$g/energy_mj"; done
export EMIT_POWERCAP_ROOT=$root EMIT_NVML_LIBRARY=$nvml/lib/libnvidia-ml.so.1 FAKE_NVML_DIR=$nvml EMIT_NODE_ID=bench FAKE_NVML_ADVANCE_MJ=1000
for round in 1 2 3; do
  for build in "$@"; do
    /usr/bin/time -f "$build round $round: user %U s, system %S s, peak RSS %M KiB" "$build" run --run-id bench --interval 100ms --out "$work/e.jsonl" -- sleep "$SECS" 2>&1 | grep "peak RSS"
  done
done
