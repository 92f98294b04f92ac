#!/usr/bin/env bash
# The node agent (node build, scripts/build-node.sh) on a 2-socket RAPL tree + 8 stand-in GPUs
# drawing 250 W each (FAKE_NVML_WATTS): its CPU and peak RSS sampling at 1 Hz, the latency of
# begin+end over the socket with 100 concurrent clients, and its CPU with 1 and with 1000 runs
# open, side by side. usage: Benchmarks/agent/run.sh [SECONDS=60]   (root: the agent's socket)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-60}
work=$(mktemp -d)
agent_pid=""
trap '[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; sleep 0.2; rmdir "$cgroup" 2>/dev/null; rm -rf "$work"' EXIT
source Benchmarks/lib/node-tree.sh
export FAKE_NVML_WATTS=250 EMIT_HOME=$work/home
node=$(scripts/build-node.sh 2>/dev/null)
socket=$work/agent.sock
# The load comes from C threads: a Python client is slower than the agent and measured itself.
cc -O2 -pthread -o "$work/socket_clients" Benchmarks/agent/socket_clients.c

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU time in nanoseconds from a cpuacct cgroup of the agent's own (every thread, those that
# exited included), not 10 ms ticks: an idle agent uses a few ticks a minute, and a tick more or
# less is a quarter of the figure. Without cgroup v1's cpuacct, ticks it is.
cgroup=/sys/fs/cgroup/cpuacct/emit-agent-bench-$$
cpu_ns() {
  if [ -f "$cgroup/cpuacct.usage" ]; then cat "$cgroup/cpuacct.usage"; else echo $(( $(cpu_ticks "$1") * 10000000 )); fi
}
measure() {  # measure LABEL: CPU share of one core over SECS, then the agent's RSS and its peak
  local t0 t1 c0 c1
  c0=$(cpu_ns "$agent_pid"); t0=$(date +%s.%N)
  sleep "$SECS"
  c1=$(cpu_ns "$agent_pid"); t1=$(date +%s.%N)
  awk -v l="$1" -v c="$((c1 - c0))" -v t0="$t0" -v t1="$t1" \
    -v rss="$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")" -v peak="$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")" \
    'BEGIN { printf "%s: CPU %.1f ms in %.1f s = %.4f%% of one core; RSS %d KiB (peak %d KiB)\n", l, c / 1e6, t1 - t0, c / 1e9 / (t1 - t0) * 100, rss, peak }'
}
start_agent() {
  rm -rf "$work/home"
  "$node" agent --socket "$socket" --interval 1s 2>"$work/agent.log" &
  agent_pid=$!
  mkdir -p "$cgroup" 2>/dev/null && echo "$agent_pid" > "$cgroup/cgroup.procs" 2>/dev/null || true
  for _ in $(seq 100); do [ -S "$socket" ] && "$node" agent status --socket "$socket" >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 5  # past start-up
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
start_agent
"$node" agent status --socket "$socket" | head -1
measure "agent, 12 devices at 1 Hz, no run open"
"$work/socket_clients" "$socket" 100 5 0 warm >/dev/null
c0=$(cpu_ticks "$agent_pid")
for round in 1 2 3; do
  "$work/socket_clients" "$socket" 100 20 0 "r$round"   # closed loop: throughput, and latency at saturation
done
c1=$(cpu_ticks "$agent_pid")
echo "agent CPU per begin+end pair under that load: $(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f us", c / hz / 6000 * 1e6 }')"
"$work/socket_clients" "$socket" 1 50 20 single                     # one job alone
for round in 1 2; do
  "$work/socket_clients" "$socket" 100 10 1000 "paced$round"         # 100 jobs, each a begin+end about every second
done
"$work/socket_clients" "$socket" 100 20 100 burst                    # 100 jobs, each about every 100 ms
python3 Benchmarks/agent/open_runs.py "$socket" 1 one >/dev/null
# Once the load is over the agent gives back the pages its first requests touched (2 s after the
# last one) and reads back those it runs on: about 30 ms once, let pass before measuring.
sleep 5
measure "agent, 1 run open, after serving the load above"
python3 Benchmarks/agent/open_runs.py "$socket" 999 many >/dev/null
# Opening them appended over 10,000 journal records: the writer's rewrite of the journal (once,
# within an interval) is not a cost per sample, so it is let pass before measuring.
sleep 3
measure "agent, 1000 runs open"
stop_agent
